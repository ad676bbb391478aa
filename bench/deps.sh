#!/bin/sh
# Debian packages `make bench` drives as references or tools; apt-get runs only when one is missing.
#   hyperfine (launch timings), proxychains4 + torsocks (other preload tools), iperf3 (bulk TCP),
#   strace (system-call counts), curl, dnsmasq, iproute2, gcc (the C loop program).
set -eu
PACKAGES="hyperfine proxychains4 torsocks iperf3 strace curl dnsmasq-base iproute2 gcc libc6-dev"
COMMANDS="hyperfine proxychains4 torsocks iperf3 strace curl dnsmasq ip cc"
missing=""
for command in $COMMANDS; do
  command -v "$command" >/dev/null 2>&1 || missing="$missing $command"
done
[ -z "$missing" ] && exit 0
echo "bench/deps.sh: missing commands:$missing; installing Debian packages" >&2
if [ "$(id -u)" != 0 ]; then
  echo "bench/deps.sh: run as root to install: $PACKAGES" >&2
  exit 5
fi
apt-get update -qq
# iperf3's debconf question (start a server on the host?) defaults to no when noninteractive
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null
