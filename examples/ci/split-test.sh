#!/bin/sh
# split-test.sh LAB PROGRAM [ARGS...]
#
# Proves, in a running `pvdrun lab` (scenario 3), that PROGRAM stays in the PvD it is given:
#   1. under `pvdrun verify --pvd ispa` and `--pvd ispb`, PROGRAM succeeds and nothing of it
#      leaves that ISP;
#   2. with ispa broken (`pvdrun lab fault LAB ispa --down`, or $FAULT), PROGRAM in ispa FAILS
#      (or pvdrun refuses to start it: the PvD is gone) instead of switching to ispb, still
#      without leaking, while PROGRAM in ispb still succeeds;
#   3. ispa is healed again (also when a step fails), so the lab is as the script found it.
#
# Run as root, after `pvdrun lab up --scenario 3 --name LAB --wait`:
#   sudo examples/ci/split-test.sh ci curl -sS -m 5 http://svc.example/
# Environment: PVDRUN (the pvdrun command; default: pvdrun on PATH), FAULT (the fault put on
# ispa; default "--down"; e.g. "--loss 100", "--dns-down").
# Exit status: 0 every check passed; 1 a check failed (the message says which); 2 usage, or
# the lab is not up.
set -eu

me=split-test
say() { printf '%s: %s\n' "$me" "$*" >&2; }
die() { code=$1; shift; say "FAIL: $*"; exit "$code"; }

if [ $# -lt 2 ]; then
    echo "usage: $0 LAB PROGRAM [ARGS...]   (as root, with the lab up: see docs/ci.md)" >&2
    exit 2
fi
LAB=$1
shift
PVDRUN=$(command -v "${PVDRUN:-pvdrun}") || die 2 "pvdrun not found (set PVDRUN or PATH)"
FAULT=${FAULT:---down}

"$PVDRUN" lab status --name "$LAB" >/dev/null ||
    die 2 "lab $LAB is not up: run 'pvdrun lab up --scenario 3 --name $LAB --wait' first"

out=$(mktemp "${TMPDIR:-/tmp}/split-test.XXXXXX")
faulted=
cleanup() {
    rm -f "$out"
    if [ -n "$faulted" ]; then
        say "healing ispa"
        "$PVDRUN" lab heal --name "$LAB" --wait ispa >&2 || say "could not heal ispa"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# run_verify ISP: PROGRAM under `pvdrun verify --pvd ISP --json` in the lab's host namespace.
# Sets RC (verify's exit status), VERDICT (stayed, left, or none without a report) and STATUS
# (PROGRAM's exit status, "signal NAME", or "none" when it did not run).
run_verify() {
    isp=$1
    shift
    RC=0
    "$PVDRUN" lab exec --name "$LAB" -- "$PVDRUN" verify --pvd "$isp" --json -- "$@" \
        >"$out" || RC=$?
    set -- $(python3 - "$out" <<'PY'
import json, sys

text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
report, shown = None, []
for line in text.splitlines():
    start = line.find('{"')
    if start >= 0:
        try:
            candidate = json.loads(line[start:])
        except ValueError:
            candidate = None
        if isinstance(candidate, dict) and "verdict" in candidate:
            report = candidate
            line = line[:start]
    if line:
        shown.append(line)
for line in shown:  # what PROGRAM printed
    print(f"    | {line}", file=sys.stderr)
if report is None:
    print("none none")
    sys.exit(0)
command = report.get("command") or {}
for flow in report.get("offending") or []:
    print(f"    offending: {json.dumps(flow, sort_keys=True)}", file=sys.stderr)
if command.get("status") is not None:
    status = str(command["status"])
elif command.get("signal"):
    status = "signal-" + str(command["signal"])
else:
    status = "none"
print(report.get("verdict", "none"), status)
PY
)
    VERDICT=$1
    STATUS=$2
    say "  verify --pvd $isp: exit $RC, verdict $VERDICT, program status $STATUS"
}

say "lab $LAB, program: $*"
for ISP in ispa ispb; do
    say "step 1: $ISP up: the program must succeed and stay in $ISP"
    run_verify "$ISP" "$@"
    [ "$RC" -eq 0 ] || die 1 "verify --pvd $ISP exited $RC: something left $ISP (see offending above)"
    [ "$STATUS" = 0 ] || die 1 "the program failed in $ISP (status $STATUS) although $ISP is up"
done

say "step 2: breaking ispa (pvdrun lab fault --name $LAB ispa $FAULT)"
# shellcheck disable=SC2086 # FAULT is an option and its value
"$PVDRUN" lab fault --name "$LAB" ispa $FAULT || die 1 "could not put the fault on ispa"
faulted=yes

say "step 3: ispa down: the program must FAIL in ispa, not switch to ispb"
run_verify ispa "$@"
case "$RC" in
    0)  [ "$STATUS" != 0 ] ||
            die 1 "the program succeeded with ispa down: it reached its service some other way"
        say "  ok: the program failed in ispa (status $STATUS) and nothing left ispa" ;;
    3)  say "  ok: pvdrun refused to start the program: the PvD ispa is gone (no fallback to ispb)" ;;
    1)  die 1 "with ispa down, something left ispa (see offending above): a fallback to ispb" ;;
    *)  die 1 "verify --pvd ispa exited $RC with ispa down" ;;
esac

say "step 4: ispa down: the program must still succeed in ispb"
run_verify ispb "$@"
[ "$RC" -eq 0 ] || die 1 "verify --pvd ispb exited $RC with ispa down"
[ "$STATUS" = 0 ] || die 1 "the program failed in ispb (status $STATUS) while only ispa is down"

say "step 5: healing ispa"
"$PVDRUN" lab heal --name "$LAB" --wait ispa || die 1 "ispa did not come back (lab heal --wait)"
faulted=

say "PASS: the program stays in the PvD it is given, and fails with it"
