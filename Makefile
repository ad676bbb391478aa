# pvdrun developer targets.  `make test` is the command README.md and .ci/run use.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=
# Debian packages the tests drive for real (see docs/testing.md).
DEB_PACKAGES := iproute2 dnsmasq-base tcpdump curl wget socat netcat-openbsd dnsutils procps gcc libc6-dev nftables iputils-ping nscd nodejs libnet-dns-perl golang-go busybox-static libseccomp-dev tinyproxy openssl
DEB_COMMANDS := ip dnsmasq tcpdump curl wget socat nc dig pkill cc nft ping nscd node perl go busybox tinyproxy openssl
# Perl modules the tests use (a package above provides each; checked like the commands).
DEB_PERL_MODULES := Net::DNS
# Headers the tests compile against (libseccomp-dev: pvdd under its unit's system call filter).
DEB_HEADERS := /usr/include/seccomp.h

.PHONY: all install deps test test-asan bench shim launcher shim-asan dist man clean

all: install

install:
	$(PIP) install .

# Install what the tests need when it is missing (root only; prints what is missing otherwise).
deps:
	@missing=""; for c in $(DEB_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	for m in $(DEB_PERL_MODULES); do perl -M$$m -e 1 >/dev/null 2>&1 || missing="$$missing perl:$$m"; done; \
	for h in $(DEB_HEADERS); do [ -e $$h ] || missing="$$missing $$h"; done; \
	if [ -n "$$missing" ]; then \
	  echo "missing:$$missing; installing Debian packages"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install:$(DEB_PACKAGES)" >&2; exit 5; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES) >/dev/null; \
	fi

# The test suite: real namespaces, dnsmasq, curl and captures, so it runs as root.
test: deps
	$(PIP) install -q '.[test]'
	cd tests && $(PYTHON) -m pytest $(PYTEST_ARGS)

include shim/flags.mk
SHIM_SOURCES := $(foreach d,$(SHIM_SOURCE_DIRS),$(wildcard shim/$(d)/*.c))
SHIM_INCLUDES := $(foreach d,$(SHIM_INCLUDE_DIRS),-I$(CURDIR)/shim/$(d))

# Compile the shim alone with -Werror, outside pip, for a quick C edit loop.
shim:
	mkdir -p build
	$(CC) -O2 -g $(SHIM_CFLAGS) $(SHIM_INCLUDES) -Werror -shared -o build/libpvdshim.so $(SHIM_SOURCES) $(SHIM_LDFLAGS)

# The source distribution, and a wheel built from it (py3-none-linux_*: CHANGELOG.md), in dist/.
dist:
	$(PIP) install -q build
	rm -rf dist && $(PYTHON) -m build --outdir dist .

# The man pages (man/*.1) from the click definitions: run after changing a command's help.
man:
	$(PIP) install -q click-man
	$(PYTHON) man/generate.py

# The native launcher (the installed `pvdrun`) alone, with -Werror, for the same loop.
launcher:
	mkdir -p build
	$(CC) -O2 -g $(LAUNCHER_CFLAGS) -Werror -o build/pvdrun $(wildcard launcher/*.c)

# The shim built with AddressSanitizer and UBSan, in build/asan/ (docs/testing.md).  It carries
# its sanitizer runtime (libasan.a whole, and UBSan's handlers from libubsan.a, sharing ASan's
# common part): the shim is preloaded into uninstrumented programs, and ASan's malloc must come
# before libc's in the symbol search order, which is exactly where the shim is, also when a
# test sets LD_PRELOAD to it alone or links a program against it.  Its dependency
# libpvdasan-start.so (-z initfirst) starts that runtime before any library's constructor.
# Default options (log files under build/asan/logs) are compiled in, so that programs run with
# a scrubbed environment keep them.
ASAN_DIR := $(CURDIR)/build/asan
ASAN_LIB := $(ASAN_DIR)/libpvdshim.so
ASAN_START := $(ASAN_DIR)/libpvdasan-start.so
ASAN_LOGS := $(ASAN_DIR)/logs
ASAN_CFLAGS := -O1 -g $(SHIM_CFLAGS) $(SHIM_INCLUDES) -fsanitize=address,undefined -fno-omit-frame-pointer \
  -fno-sanitize-recover=undefined
UBSAN_OBJS := ubsan_diag.o ubsan_flags.o ubsan_handlers.o ubsan_init.o ubsan_monitor.o ubsan_value.o

shim-asan:
	@for a in libasan.a libubsan.a; do case "$$($(CC) -print-file-name=$$a)" in /*) ;; \
	  *) echo "make shim-asan: $(CC) has no $$a (Debian: libgcc-N-dev)" >&2; exit 5;; esac; done
	rm -rf $(ASAN_DIR)/obj && mkdir -p $(ASAN_DIR)/obj/ubsan $(ASAN_LOGS) && chmod 1777 $(ASAN_LOGS)
	cd $(ASAN_DIR)/obj && $(CC) $(ASAN_CFLAGS) '-DPVDRUN_SANITIZER_LOG_DIR="$(ASAN_LOGS)"' \
	  -c $(abspath $(SHIM_SOURCES)) $(CURDIR)/tests/asan/sanitizer_defaults.c
	cd $(ASAN_DIR)/obj/ubsan && ar x "$$($(CC) -print-file-name=libubsan.a)" $(UBSAN_OBJS)
	$(CC) -O1 -g -fPIC -Wall -Wextra -shared -o $(ASAN_START) tests/asan/asan_start.c -Wl,-z,initfirst
	$(CC) -shared -o $(ASAN_LIB) $(ASAN_DIR)/obj/*.o $(addprefix $(ASAN_DIR)/obj/ubsan/,$(UBSAN_OBJS)) \
	  -Wl,--whole-archive "$$($(CC) -print-file-name=libasan.a)" -Wl,--no-whole-archive \
	  -Wl,--no-as-needed $(ASAN_START) -Wl,--as-needed \
	  -ldl -lm -lrt -pthread -Wl,-z,now -Wl,--no-undefined
	cp shim/include/pvd.h $(ASAN_DIR)/

# The whole suite with every load of the shim going to that build (PVDRUN_SHIM_LIBRARY, which
# pvdrun.shim.library_path() honours); fails on a failed test or on any sanitizer report found
# in build/asan/logs afterwards, and prints the reports.
test-asan: deps shim-asan
	$(PIP) install -q '.[test]'
	rm -f $(ASAN_LOGS)/*
	cd tests && PVDRUN_SHIM_LIBRARY=$(ASAN_LIB) $(PYTHON) -m pytest $(PYTEST_ARGS); tests=$$?; \
	cd $(CURDIR) && $(PYTHON) tests/asan/scan_logs.py $(ASAN_LOGS); reports=$$?; \
	[ $$tests = 0 ] || exit $$tests; exit $$reports

bench: deps
	sh bench/deps.sh
	$(PIP) install -q .
	$(PYTHON) bench/run.py

# Coverage-guided fuzzing of the shim's and the native launcher's C parsers (docs/testing.md, "Fuzzing"): each libFuzzer
# harness of fuzz/ runs FUZZ_SECONDS from its seeds; a crash fails.  Needs clang, installed
# when missing (root only, like `deps`).
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?= scope_parse dns_scope dns_wire dns_hosts cmsg launcher attributes
.PHONY: fuzz fuzz-deps

fuzz: fuzz-deps
	sh fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

fuzz-deps:
	@if ! command -v clang >/dev/null 2>&1; then \
	  echo "missing command: clang; installing the Debian package"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make fuzz-deps: run as root to install: clang" >&2; exit 5; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null; \
	fi

clean:
	rm -rf build dist *.egg-info pvdrun/shim/libpvdshim.so pvdrun/shim/pvd.h
