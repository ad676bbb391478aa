# The shim's compiler and linker flags: the one place they are written.  Read by the Makefile
# (include) and by setup.py (NAME = value lines); optimisation and sanitizers are added by each
# build (pip: -O2 -g, plus -Werror when PVDRUN_WERROR=1; make shim-asan: -O1 and sanitizers).
SHIM_CFLAGS = -std=gnu11 -fPIC -Wall -Wextra -fvisibility=hidden -D_GNU_SOURCE -pthread
SHIM_LDFLAGS = -ldl -pthread -Wl,-z,now -Wl,--no-undefined -Wl,-soname,libpvdshim.so
# The folders below shim/ whose headers every source may include (-I), and those holding the
# library's sources: include/ (the public pvd.h), core/, hooks/ (one file per call), dns/.
SHIM_INCLUDE_DIRS = include core dns
SHIM_SOURCE_DIRS = core hooks dns
# The native launcher (launcher/, the `pvdrun` command): a program, linked against libc only.
LAUNCHER_CFLAGS = -std=gnu11 -Wall -Wextra -D_GNU_SOURCE
# What an installed build adds at link time (setup.py, for the shim and the launcher): no symbol
# table or debug information beyond what the dynamic loader needs.  `make shim` and
# `make launcher` keep theirs, for a debugger.
RELEASE_LDFLAGS = -s
