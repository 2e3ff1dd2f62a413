#!/usr/bin/env bash
# expect.sh ok|fail REGEX CMD [ARGS...]
# Runs CMD, prints its output, and passes when the exit status is as wanted (ok: 0; fail: 1..125,
# so a crash by signal or an abort is never taken for a clean error) and the output matches REGEX
# (extended regular expression; empty matches anything).
set -u
want=$1; regex=$2; shift 2
out=$("$@" 2>&1); rc=$?
printf '%s\n' "$out"
echo "[expect.sh] exit status $rc"
if [[ $want == ok && $rc -ne 0 ]]; then echo "[expect.sh] FAIL: expected exit 0"; exit 1; fi
if [[ $want == fail && ( $rc -eq 0 || $rc -gt 125 ) ]]; then
  echo "[expect.sh] FAIL: expected a clean non-zero exit (1..125), got $rc"; exit 1
fi
if [[ -n $regex ]] && ! grep -Eq -- "$regex" <<<"$out"; then
  echo "[expect.sh] FAIL: output does not match /$regex/"; exit 1
fi
exit 0
