# The shim's compiler and linker flags: the one place they are written.  Read by the Makefile
# (include) and by setup.py (NAME = value lines); optimisation and sanitizers are added by each
# build (pip: -O2 -g, plus -Werror when PVDRUN_WERROR=1; make shim-asan: -O1 and sanitizers).
SHIM_CFLAGS = -std=gnu11 -fPIC -Wall -Wextra -fvisibility=hidden -D_GNU_SOURCE -pthread
SHIM_LDFLAGS = -ldl -pthread -Wl,-z,now -Wl,--no-undefined
