"""The shim's pure DNS functions (shim/dns/dns_wire.c, dns_scope.c, dns_sort.c),
driven through tests/c/dns_wire_harness.c compiled with ASan/UBSan, so that
an out-of-bounds read on a hostile message fails the test instead of passing
silently.  Responses are built with dnspython; malformed ones by hand."""
from __future__ import annotations

import os
import random
import struct
import subprocess
from pathlib import Path

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from fixtures.shim_source import include_flags, sources

HARNESS_SRC = Path(__file__).resolve().parent / "c" / "dns_wire_harness.c"

# Error codes of shim/dns/dns_wire.h.
DNS_OK, ERR_TRUNCATED, ERR_LOOP, ERR_NAME, ERR_OVERSIZE, ERR_MISMATCH, ERR_FORMAT = (
    0, -2, -3, -4, -5, -6, -7)
TYPE_A, TYPE_CNAME, TYPE_AAAA = 1, 5, 28


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compile the harness with the shim's DNS sources and sanitizers."""
    out = tmp_path_factory.mktemp("dnswire") / "dns_wire_harness"
    cmd = [os.environ.get("CC", "cc"), "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
           "-D_GNU_SOURCE", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           *include_flags(), "-o", str(out), str(HARNESS_SRC),
           *sources("dns_wire.c", "dns_scope.c", "scope_parse.c", "log.c", "dns_sort.c"), "-pthread"]
    subprocess.run(cmd, check=True)
    return out


def run(harness: Path, *args: str, data: bytes = b"") -> str:
    """Run the harness; a sanitizer report or crash fails the test."""
    proc = subprocess.run([str(harness), *args], input=data, capture_output=True, timeout=30)
    assert proc.returncode == 0, f"harness {args[0]} failed ({proc.returncode}): {proc.stderr!r}"
    assert b"runtime error" not in proc.stderr, proc.stderr
    return proc.stdout.decode(errors="replace")


def parse(harness: Path, msg: bytes, qid: int = 0x1234, qname: str = "svc.example",
          qtype: int = TYPE_A) -> tuple[int, int, list[str]]:
    """Parse msg; return (rc, truncated flag, answer lines)."""
    lines = run(harness, "parse", str(qid), qname, str(qtype), data=msg).splitlines()
    head = dict(item.split("=") for item in lines[0].split())
    return int(head["rc"]), int(head["tc"]), lines[1:]


def response(qname: str = "svc.example", qtype: str = "A", qid: int = 0x1234,
             answers: list[tuple[str, int, str, str]] | None = None) -> dns.message.Message:
    """A dnspython response with the given (owner, ttl, type, value) answers."""
    query = dns.message.make_query(qname, qtype)
    query.id = qid
    msg = dns.message.make_response(query)
    for owner, ttl, rtype, value in answers or []:
        msg.answer.append(dns.rrset.from_text(owner, ttl, "IN", rtype, value))
    return msg


def header(qid: int, flags: int, qd: int, an: int, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


QUESTION = b"\x03svc\x07example\x00" + struct.pack("!HH", TYPE_A, 1)


def test_query_is_a_valid_recursive_question(harness: Path) -> None:
    wire = bytes.fromhex(run(harness, "query", "4660", "Svc.Example.", "28").strip())
    msg = dns.message.from_wire(wire)
    assert msg.id == 4660
    assert msg.flags & dns.flags.RD and not msg.flags & dns.flags.QR
    assert [(str(q.name), q.rdtype) for q in msg.question] == [("Svc.Example.", dns.rdatatype.AAAA)]


@pytest.mark.parametrize("bad", ["a..b", "." * 2, "x" * 64 + ".example", ("a" * 60 + ".") * 5])
def test_query_refuses_names_that_cannot_be_encoded(harness: Path, bad: str) -> None:
    proc = subprocess.run([str(harness), "query", "1", bad, "1"], capture_output=True)
    assert proc.returncode == 1 and b"rc=-" in proc.stdout


def test_parse_cname_chain_a_and_aaaa(harness: Path) -> None:
    msg = response(answers=[("svc.example.", 60, "CNAME", "web.isp-a.example."),
                            ("web.isp-a.example.", 30, "A", "10.1.0.80"),
                            ("web.isp-a.example.", 30, "A", "10.1.0.81")])
    rc, tc, lines = parse(harness, msg.to_wire())
    assert (rc, tc) == (DNS_OK, 0)
    assert lines == ["5 60 svc.example web.isp-a.example", "1 30 web.isp-a.example 10.1.0.80",
                     "1 30 web.isp-a.example 10.1.0.81"]
    msg6 = response(qtype="AAAA", answers=[("svc.example.", 5, "AAAA", "2001:db8:a::80")])
    rc, _, lines = parse(harness, msg6.to_wire(), qtype=TYPE_AAAA)
    assert rc == DNS_OK and lines == ["28 5 svc.example 2001:db8:a::80"]


def test_parse_rejects_wrong_id_question_and_non_responses(harness: Path) -> None:
    wire = response(answers=[("svc.example.", 60, "A", "10.1.0.80")]).to_wire()
    assert parse(harness, wire, qid=0x4321)[0] == ERR_MISMATCH
    assert parse(harness, wire, qname="other.example")[0] == ERR_MISMATCH
    assert parse(harness, wire, qtype=TYPE_AAAA)[0] == ERR_MISMATCH
    as_query = wire[:2] + bytes([wire[2] & 0x7F]) + wire[3:]
    assert parse(harness, as_query)[0] == ERR_MISMATCH


def test_every_truncation_of_a_response_fails_cleanly(harness: Path) -> None:
    wire = response(answers=[("svc.example.", 60, "CNAME", "web.isp-a.example."),
                             ("web.isp-a.example.", 30, "A", "10.1.0.80")]).to_wire()
    assert parse(harness, wire)[0] == DNS_OK
    for cut in range(len(wire)):
        rc = parse(harness, wire[:cut])[0]
        assert rc in (ERR_TRUNCATED, ERR_MISMATCH), (cut, rc)


def test_tc_bit_is_reported_without_answers(harness: Path) -> None:
    msg = response(answers=[("svc.example.", 60, "A", "10.1.0.80")])
    msg.flags |= dns.flags.TC
    rc, tc, lines = parse(harness, msg.to_wire()[:len(QUESTION) + 12 + 3])
    assert (rc, tc, lines) == (DNS_OK, 1, [])


def test_compression_pointer_to_itself_is_a_loop(harness: Path) -> None:
    # Answer owner at offset 12+len(QUESTION) points at itself.
    here = 12 + len(QUESTION)
    record = struct.pack("!H", 0xC000 | here) + struct.pack("!HHIH", TYPE_A, 1, 60, 4) + b"\x0a\x01\x00\x50"
    assert parse(harness, header(0x1234, 0x8180, 1, 1) + QUESTION + record)[0] == ERR_LOOP


def test_mutual_and_forward_compression_pointers_are_loops(harness: Path) -> None:
    here = 12 + len(QUESTION)
    # label "a" then a pointer back to the label: a -> a -> a ...
    owner = b"\x01a" + struct.pack("!H", 0xC000 | here)
    record = owner + struct.pack("!HHIH", TYPE_A, 1, 60, 4) + b"\x0a\x01\x00\x50"
    assert parse(harness, header(0x1234, 0x8180, 1, 1) + QUESTION + record)[0] == ERR_LOOP
    forward = struct.pack("!H", 0xC000 | (here + 2 + 10 + 4)) + struct.pack("!HHIH", TYPE_A, 1, 60, 4)
    forward += b"\x0a\x01\x00\x50" + b"\x00"
    assert parse(harness, header(0x1234, 0x8180, 1, 1) + QUESTION + forward)[0] == ERR_LOOP


def test_name_longer_than_255_octets_via_pointers_fails(harness: Path) -> None:
    # First answer: a TXT-typed record (skipped by the parser) whose rdata
    # holds 5 chunks "60-octet label + pointer to the previous chunk".  The
    # second answer's owner points at the last chunk: 5 * 61 + 1 > 255 octets.
    body = header(0x1234, 0x8180, 1, 2) + QUESTION
    rdata_at = len(body) + 2 + 10
    chunks = b""
    prev = None
    for _ in range(5):
        start = rdata_at + len(chunks)
        chunks += b"\x3c" + b"x" * 60 + (struct.pack("!H", 0xC000 | prev) if prev else b"\x00")
        prev = start
    body += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(chunks)) + chunks
    body += struct.pack("!H", 0xC000 | prev) + struct.pack("!HHIH", TYPE_A, 1, 60, 4) + b"\x0a\x01\x00\x50"
    assert parse(harness, body)[0] == ERR_NAME


def test_long_name_chain_is_rejected_as_a_name_error(harness: Path) -> None:
    # Question, then one answer whose owner is 5 labels of 60 octets, written
    # directly (uncompressed): 5 * 61 + 1 = 306 > 255.
    owner = (b"\x3c" + b"z" * 60) * 5 + b"\x00"
    record = owner + struct.pack("!HHIH", TYPE_A, 1, 60, 4) + b"\x0a\x01\x00\x50"
    assert parse(harness, header(0x1234, 0x8180, 1, 1) + QUESTION + record)[0] == ERR_NAME


def test_too_many_answers_is_oversize(harness: Path) -> None:
    answers = [("svc.example.", 60, "A", f"10.1.{i // 250}.{i % 250 + 1}") for i in range(49)]
    assert parse(harness, response(answers=answers).to_wire())[0] == ERR_OVERSIZE
    rc, _, lines = parse(harness, response(answers=answers[:48]).to_wire())
    assert rc == DNS_OK and len(lines) == 48


def test_message_beyond_65535_octets_is_oversize(harness: Path) -> None:
    wire = response(answers=[("svc.example.", 60, "A", "10.1.0.80")]).to_wire()
    assert parse(harness, wire + b"\x00" * 65536)[0] == ERR_OVERSIZE


def test_lying_counts_and_bad_rdata_fail(harness: Path) -> None:
    wire = bytearray(response(answers=[("svc.example.", 60, "A", "10.1.0.80")]).to_wire())
    lying = bytes(wire[:6]) + struct.pack("!H", 2000) + bytes(wire[8:])
    assert parse(harness, lying)[0] == ERR_TRUNCATED
    bad_len = header(0x1234, 0x8180, 1, 1) + QUESTION + b"\xc0\x0c" + struct.pack("!HHIH", TYPE_A, 1, 60, 5) + b"\x0a\x01\x00\x50\x00"
    assert parse(harness, bad_len)[0] == ERR_FORMAT
    trailing = bytes(wire) + b"junk"
    assert parse(harness, trailing)[0] == ERR_FORMAT


def test_random_mutations_never_crash(harness: Path) -> None:
    """A small in-test fuzz: every mutated message parses or fails cleanly."""
    rng = random.Random(6724)
    wire = response(answers=[("svc.example.", 60, "CNAME", "web.isp-a.example."),
                             ("web.isp-a.example.", 30, "A", "10.1.0.80"),
                             ("web.isp-a.example.", 30, "A", "10.1.0.81")]).to_wire()
    outcomes: set[int] = set()
    for _ in range(200):
        data = bytearray(wire)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        outcomes.add(parse(harness, bytes(data))[0])
    assert outcomes <= {DNS_OK, ERR_TRUNCATED, ERR_LOOP, ERR_NAME, ERR_OVERSIZE, ERR_MISMATCH,
                        ERR_FORMAT}
    assert len(outcomes) > 1


@pytest.mark.parametrize("seed", [1, 7, 6724])
def test_mutation_fuzz_under_sanitizers(harness: Path, seed: int) -> None:
    """100 000 mutated replies (flips, cuts, planted pointers) per seed, each in a heap buffer
    of its exact length: ASan/UBSan abort the harness on any out-of-bounds access."""
    wire = response(answers=[("svc.example.", 60, "CNAME", "web.isp-a.example."),
                             ("web.isp-a.example.", 30, "A", "10.1.0.80"),
                             ("web.isp-a.example.", 30, "A", "10.1.0.81")]).to_wire()
    out = run(harness, "fuzz", str(seed), "100000", "svc.example", str(TYPE_A), data=wire)
    counts = {int(k): int(v) for k, v in (line.split("=") for line in out.split())}
    assert sum(counts.values()) == 100000
    assert counts[-8] == 0  # only the documented return codes
    assert sum(1 for v in counts.values() if v) >= 4  # the mutations reach several error paths


def test_scope_line_parsing(harness: Path) -> None:
    out = run(harness, "scope", "v=1 id=ispa.example handle=7 if=veth0:3 addr=10.1.0.2 "
              "addr=fe80::2%3 dns=10.1.0.1 dns=2001:db8:a::1 search=isp-a.example. mark=0x10 "
              "srcbind=1 future=ignored")
    assert out.splitlines() == ["rc=1", "id=ispa.example handle=7 null=0 mark=16", "if=veth0:3",
                                "addr=10.1.0.2", "addr=fe80::2", "dns=10.1.0.1",
                                "dns=2001:db8:a::1", "search=isp-a.example"]
    assert run(harness, "scope", "v=1 id=null handle=4294967295").splitlines()[1] \
        == "id=null handle=4294967295 null=1 mark=0"
    for bad in ["v=2 id=x", "id=x handle=1", "v=1 dns=not-an-address", "v=1 junk",
                "v=1 if=eth0", "v=1 handle=-1", "v=1 id="]:
        assert run(harness, "scope", bad).strip() == "rc=-1", bad


def test_rfc6724_order_follows_the_pvd_sources(harness: Path) -> None:
    dual = "v=1 id=a handle=1 if=a0:2 addr=10.1.0.2 addr=2001:db8:a::2"
    v4only = "v=1 id=b handle=2 if=b0:3 addr=10.2.0.2"
    v6only = "v=1 id=c handle=3 if=c0:4 addr=2001:db8:b::2"
    dests = ["10.1.0.80", "2001:db8:a::80"]
    assert run(harness, "sort", dual, *dests).split() == ["2001:db8:a::80", "10.1.0.80"]
    assert run(harness, "sort", v4only, *reversed(dests)).split() == ["10.1.0.80", "2001:db8:a::80"]
    assert run(harness, "sort", v6only, *dests).split() == ["2001:db8:a::80", "10.1.0.80"]
    # rule 9: longest matching prefix with the PvD's source wins.
    assert run(harness, "sort", v6only, "2001:db8:a::80", "2001:db8:b::80").split() \
        == ["2001:db8:b::80", "2001:db8:a::80"]


def test_reverse_names(harness: Path) -> None:
    assert run(harness, "reverse", "10.1.0.80").strip() == "80.0.1.10.in-addr.arpa"
    assert run(harness, "reverse", "2001:db8::1").strip() == \
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
