#!/usr/bin/env bash
# fuzz/run.sh BUILD_DIR SECONDS: runs every fuzz target in BUILD_DIR for SECONDS each, starting
# from fuzz/corpus/<name without fuzz_> (copied, so the committed seeds stay as they are).
# Exits non-zero on the first crash, leak or sanitizer report.
set -euo pipefail
build=$(cd "$1" && pwd); seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob
ran=0
for bin in "$build"/fuzz_*; do
  [[ -x $bin && -f $bin ]] || continue
  name=$(basename "$bin"); seeds="$here/corpus/${name#fuzz_}"
  work=$(mktemp -d); [[ -d $seeds ]] && cp -r "$seeds"/. "$work"/
  echo "fuzz: $name for ${seconds}s ($(ls "$work" | wc -l) seeds)"
  log=$(mktemp)
  set +e
  (cd "$work" && "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
     -print_final_stats=1 "$work" >"$log" 2>&1)
  status=$?
  set -e
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY)" "$log" || true
  if [[ $status -ne 0 ]]; then tail -n 60 "$log"; fi
  rm -f "$log"
  rm -rf "$work"
  if [[ $status -ne 0 ]]; then echo "fuzz: $name FAILED (exit $status)"; exit 1; fi
  ran=$((ran + 1))
done
echo "fuzz: $ran targets ran without findings"
