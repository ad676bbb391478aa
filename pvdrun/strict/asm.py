"""A few eBPF instructions, encoded by hand (``struct bpf_insn``, linux/bpf.h).

Strict mode's programs are a few dozen instructions each (pvdrun/strict/programs.py); they
are written with these functions instead of compiled, so that ``pip install .`` needs no BPF
compiler, and the instructions read as what the kernel's verifier sees (as iproute2's
``ip vrf exec`` does in ``ip/ipvrf.c``).  Only what those programs use is here.

Registers: r0 return value, r1-r5 arguments (clobbered by calls), r6-r9 kept across calls,
r10 the read-only frame pointer.  Jumps are forward by a label: :class:`Program` resolves
them when the program is assembled.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

# instruction classes
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
# sizes
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
# modes
IMM, MEM = 0x00, 0x60
# sources
K, X = 0x00, 0x08
# ALU operations
OP_ADD, OP_AND, OP_MOV = 0x00, 0x50, 0xB0
# jumps
JA, JEQ, JGT, JNE, CALL, EXIT = 0x00, 0x10, 0x20, 0x50, 0x80, 0x90

#: ``src_reg`` of the first half of a 64-bit load that names a map by its descriptor.
PSEUDO_MAP_FD = 1
#: ``src_reg`` of a call to a kernel function (a kfunc) named by its BTF type id.
PSEUDO_KFUNC_CALL = 2

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

_INSN = struct.Struct("<BBhi")


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    if imm >= 1 << 31:
        imm -= 1 << 32  # a 32-bit immediate is signed in the encoding
    return _INSN.pack(code, (src << 4) | dst, off, imm)


@dataclass
class Program:
    """Instructions being written; :meth:`assemble` gives the bytes ``BPF_PROG_LOAD`` takes."""

    insns: list[bytes | tuple[str, int, int, int, int]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)

    # -- moves, arithmetic, memory ---------------------------------------------------
    def mov_imm(self, dst: int, imm: int) -> "Program":
        self.insns.append(_insn(ALU64 | OP_MOV | K, dst, imm=imm))
        return self

    def mov32_imm(self, dst: int, imm: int) -> "Program":
        """A 32-bit move (the upper half zeroed): how a u32 constant above 2**31 is written."""
        self.insns.append(_insn(ALU | OP_MOV | K, dst, imm=imm))
        return self

    def mov(self, dst: int, src: int) -> "Program":
        self.insns.append(_insn(ALU64 | OP_MOV | X, dst, src))
        return self

    def add_imm(self, dst: int, imm: int) -> "Program":
        self.insns.append(_insn(ALU64 | OP_ADD | K, dst, imm=imm))
        return self

    def and_imm(self, dst: int, imm: int) -> "Program":
        self.insns.append(_insn(ALU64 | OP_AND | K, dst, imm=imm))
        return self

    def load(self, size: int, dst: int, src: int, off: int) -> "Program":
        """dst = *(size *)(src + off)"""
        self.insns.append(_insn(LDX | MEM | size, dst, src, off))
        return self

    def store(self, size: int, dst: int, off: int, src: int) -> "Program":
        """*(size *)(dst + off) = src"""
        self.insns.append(_insn(STX | MEM | size, dst, src, off))
        return self

    def store_imm(self, size: int, dst: int, off: int, imm: int) -> "Program":
        """*(size *)(dst + off) = imm (not into the context: the verifier refuses that)"""
        self.insns.append(_insn(ST | MEM | size, dst, off=off, imm=imm))
        return self

    def load_map(self, dst: int, map_fd: int) -> "Program":
        """dst = the map whose descriptor is ``map_fd`` (a two-instruction load)."""
        self.insns.append(_insn(LD | IMM | DW, dst, PSEUDO_MAP_FD, imm=map_fd))
        self.insns.append(_insn(0))
        return self

    # -- control ---------------------------------------------------------------------
    def label(self, name: str) -> "Program":
        if name in self.labels:
            raise ValueError(f"label {name!r} defined twice")
        self.labels[name] = len(self.insns)
        return self

    def used(self, label: str) -> bool:
        """Whether some jump goes to ``label`` (the verifier refuses code nothing reaches)."""
        return any(isinstance(insn, tuple) and insn[0] == label for insn in self.insns)

    def jump(self, label: str) -> "Program":
        self.insns.append((label, JMP | JA | K, 0, 0, 0))
        return self

    def jump_if(self, op: int, reg: int, imm: int, label: str) -> "Program":
        """Go to ``label`` when ``reg OP imm`` (op: JEQ, JNE, JGT; 64-bit compare)."""
        self.insns.append((label, JMP | op | K, reg, 0, imm))
        return self

    def jump32_if(self, op: int, reg: int, imm: int, label: str) -> "Program":
        """Go to ``label`` when the low 32 bits of ``reg`` OP the u32 ``imm``: how a socket
        address field (a u32 in network byte order) is compared."""
        self.insns.append((label, JMP32 | op | K, reg, 0, imm & 0xFFFFFFFF))
        return self

    def jump_if_reg(self, op: int, reg: int, src: int, label: str) -> "Program":
        """Go to ``label`` when ``reg OP src``."""
        self.insns.append((label, JMP | op | X, reg, src, 0))
        return self

    def call(self, helper: int) -> "Program":
        self.insns.append(_insn(JMP | CALL, imm=helper))
        return self

    def call_kfunc(self, btf_id: int) -> "Program":
        """Call the kernel function whose ``FUNC`` is type ``btf_id`` of the kernel's own BTF
        (/sys/kernel/btf/vmlinux; ``off`` 0: not a module's)."""
        self.insns.append(_insn(JMP | CALL, src=PSEUDO_KFUNC_CALL, imm=btf_id))
        return self

    def ret(self, value: int) -> "Program":
        self.mov_imm(R0, value)
        self.insns.append(_insn(JMP | EXIT))
        return self

    # -- output ------------------------------------------------------------------------
    def assemble(self) -> bytes:
        """The instructions, with every jump resolved to its label."""
        out = []
        for index, insn in enumerate(self.insns):
            if isinstance(insn, bytes):
                out.append(insn)
                continue
            label, code, dst, src, imm = insn
            if label not in self.labels:
                raise ValueError(f"jump to undefined label {label!r}")
            offset = self.labels[label] - index - 1
            if offset < 0:
                raise ValueError(f"backward jump to {label!r}: programs here only jump forward")
            out.append(_insn(code, dst, src, offset, imm))
        return b"".join(out)

    def __len__(self) -> int:
        return len(self.insns)
