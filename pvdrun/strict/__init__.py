"""Strict mode: the kernel holds a program and all its children in one PvD (cgroup BPF).

``asm``/``bpf``: hand-assembled programs and the ``bpf()`` system call; ``programs``: what each
hook does, written from one PvD's policy; ``cgroups``: where the cgroups are; ``holder``:
installing and replacing a cgroup's programs; ``service``: pvdd's side; ``forwarder``: pvdd's
per-PvD DNS forwarder; ``enter``: the launcher's side.  See docs/strict.md.
"""
