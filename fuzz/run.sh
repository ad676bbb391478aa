#!/bin/sh
# fuzz/run.sh SECONDS HARNESS...   (what `make fuzz` runs)
#
# For each harness: build it with libFuzzer (fuzz/build.sh), then fuzz it for SECONDS,
# starting from its committed seeds (fuzz/corpus/NAME) and regression inputs
# (fuzz/regressions/NAME, which therefore run first, every time).  New inputs go to
# build/fuzz/work/NAME, never into the committed corpus; a crash is written to
# build/fuzz/artifacts/NAME-crash-*.  Exits 1 when a harness fails to build or crashes.
# FUZZ_NICE=19 runs the fuzzer at the lowest priority (a shared machine).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=$root/build/fuzz
secs=$1
shift
nice_cmd=""
[ -n "${FUZZ_NICE:-}" ] && nice_cmd="nice -n $FUZZ_NICE"
status=0
for name in "$@"; do
  bin=$out/$name
  log=$out/$name.log
  if ! sh "$here/build.sh" "$name" "$bin" fuzzer; then
    echo "fuzz $name: BUILD FAILED"
    status=1
    continue
  fi
  mkdir -p "$out/work/$name" "$out/artifacts"
  case $name in
    scope_parse|dns_scope) dict="-dict=$here/scope.dict" ;;
    dns_hosts) dict="-dict=$here/dns_hosts.dict" ;;
    *) dict="" ;;
  esac
  regressions=""
  [ -d "$here/regressions/$name" ] && regressions="$here/regressions/$name"
  # shellcheck disable=SC2086
  $nice_cmd "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    $dict -artifact_prefix="$out/artifacts/$name-" \
    "$out/work/$name" "$here/corpus/$name" $regressions >"$log" 2>&1
  rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz $name: FAILED (exit $rc); log $log"
    grep -E 'ERROR: |property violated|SUMMARY|Test unit written' "$log" | head -n 8
    status=1
  else
    echo "fuzz $name: ok, ${secs}s: $done_line"
  fi
done
exit $status
