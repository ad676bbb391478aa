# pvdrun developer targets.  `make test` is the command README.md and .ci/run use.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=
# Debian packages the tests drive for real (see docs/testing.md).
DEB_PACKAGES := iproute2 dnsmasq-base tcpdump curl wget socat netcat-openbsd dnsutils procps gcc libc6-dev nftables
DEB_COMMANDS := ip dnsmasq tcpdump curl wget socat nc dig pkill cc nft

.PHONY: all install deps test bench shim clean

all: install

install:
	$(PIP) install .

# Install what the tests need when it is missing (root only; prints what is missing otherwise).
deps:
	@missing=""; for c in $(DEB_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "missing commands:$$missing; installing Debian packages"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install:$(DEB_PACKAGES)" >&2; exit 5; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES) >/dev/null; \
	fi

# The test suite: real namespaces, dnsmasq, curl and captures, so it runs as root.
test: deps
	$(PIP) install -q '.[test]'
	cd tests && $(PYTHON) -m pytest $(PYTEST_ARGS)

# Compile the shim alone with -Werror, outside pip, for a quick C edit loop.
shim:
	$(CC) -std=gnu11 -O2 -g -fPIC -Wall -Wextra -Werror -fvisibility=hidden -D_GNU_SOURCE -pthread \
	  -shared -o build/libpvdshim.so shim/*.c -ldl -Wl,-z,now -Wl,--no-undefined

bench: deps
	sh bench/deps.sh
	$(PIP) install -q .
	$(PYTHON) bench/run.py

# Coverage-guided fuzzing of the shim's C parsers (docs/testing.md, "Fuzzing"): each libFuzzer
# harness of fuzz/ runs FUZZ_SECONDS from its seeds; a crash fails.  Needs clang, installed
# when missing (root only, like `deps`).
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?= scope_parse dns_scope dns_wire dns_hosts cmsg
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
	rm -rf build dist *.egg-info
