"""Strict mode: the kernel holds a program and all its children in one PvD (cgroup BPF).

``asm``/``bpf``: hand-assembled programs and the ``bpf()`` system call; ``programs``: what each
hook does, written from one PvD's policy; ``cgroups``: where the cgroups are; ``holder``:
installing and replacing a cgroup's programs; ``service``: pvdd's side; ``forwarder``: pvdd's
per-PvD DNS forwarder; ``unix``: the program for the host resolvers' sockets.  The launcher's
side and the status ``list`` shows, which ask pvdd, are in pvdrun/commands/ (strict_enter.py,
strict_status.py).  See docs/strict.md.
"""
