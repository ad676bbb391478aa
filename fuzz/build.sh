#!/bin/sh
# fuzz/build.sh HARNESS OUTPUT [fuzzer|replay]
#
# Compile one fuzz harness (fuzz/fuzz_HARNESS.c) with the shim sources it drives.
#   fuzzer: a libFuzzer binary (clang, -fsanitize=fuzzer,address,undefined); `make fuzz`.
#   replay: the same harness with fuzz/replay_main.c instead of libFuzzer, under ASan/UBSan,
#           built with $CC (gcc is enough); it runs the files or directories given on its
#           command line once each.  tests/test_fuzz_replay.py replays the seed corpora and
#           the regression inputs with it.
# The shim's own sources stay in shim/ and are compiled from there, never copied.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
name=$1
out=$2
mode=${3:-fuzzer}

# Shim sources per harness, and flags for the shim sources only.
shim_flags=""
case $name in
  scope_parse) sources="scope_parse.c" ;;
  dns_scope)   sources="dns_scope.c scope_parse.c" ;;
  dns_wire)    sources="dns_wire.c" ;;
  # dns_hosts.c reads /etc/hosts and /etc/nsswitch.conf with fopen(): the harness gives it
  # the fuzz input instead (pvd_fuzz_fopen, an fmemopen() of the input).
  dns_hosts)   sources="dns_hosts.c dns_wire.c"; shim_flags="-Dfopen=pvd_fuzz_fopen" ;;
  # options.c (the check) and sockaddr.c, with fuzz/cmsg_stubs.c for the rest of the shim
  cmsg)        sources="options.c sockaddr.c scope_parse.c" ;;
  # the native launcher's parsers: pvdd's reply (pvdd.c) and the ELF reading (program.c)
  launcher)    sources="pvdd.c program.c" ;;
  # pvd_get_attributes' reading of pvdd's reply (json_scan.c, no I/O)
  attributes)  sources="json_scan.c" ;;
  *) echo "fuzz/build.sh: unknown harness '$name'" >&2; exit 2 ;;
esac
# The shim's one logging function (log.c, libc only), for the sources that report something.
case $name in
  dns_scope|cmsg) sources="$sources log.c" ;;
esac

# The shim's header folders, as shim/flags.mk lists them (SHIM_INCLUDE_DIRS).
includes=""
for d in $(sed -n 's/^SHIM_INCLUDE_DIRS *= *//p' "$root/shim/flags.mk"); do includes="$includes -I$root/shim/$d"; done
includes="$includes -I$root/launcher"
common="-std=gnu11 -g -O1 -Wall -Wextra -D_GNU_SOURCE -fno-omit-frame-pointer $includes"
case $mode in
  fuzzer)
    cc=${FUZZ_CC:-clang}
    san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
    # instrumented objects for the shim sources: -fsanitize=fuzzer-no-link, linked below
    obj_san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
    main=""
    ;;
  replay)
    cc=${CC:-cc}
    san="-fsanitize=address,undefined -fno-sanitize-recover=all"
    obj_san=$san
    main="$here/replay_main.c"
    ;;
  *) echo "fuzz/build.sh: mode is fuzzer or replay" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
objs=""
for s in $sources; do
  o="$tmp/${s%.c}.o"
  src=$(find "$root/shim" "$root/launcher" -name "$s" -type f)
  [ -n "$src" ] || { echo "fuzz/build.sh: no source $s in shim/ or launcher/" >&2; exit 2; }
  # shellcheck disable=SC2086
  $cc $common $obj_san $shim_flags -c -o "$o" "$src"
  objs="$objs $o"
done
if [ "$name" = cmsg ]; then
  o="$tmp/cmsg_stubs.o"
  # shellcheck disable=SC2086
  $cc $common $obj_san -Werror -c -o "$o" "$here/cmsg_stubs.c"
  objs="$objs $o"
fi
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086
$cc $common $san -Werror -o "$out" "$here/fuzz_$name.c" $main $objs -pthread
