#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time (CTest label fuzz): BINARY SEEDS WORK SECONDS.
# New inputs it finds go to WORK/corpus (the build tree), seeds are read from SEEDS (the
# repository). A crash leaves WORK/artifacts/crash-* and fails the test: copy that file into
# SEEDS (tests/fuzz/corpus/<target>/), where the unit tests replay it, and fix the bug.
set -euo pipefail
binary=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work/corpus" "$work/artifacts"
set +e
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" 2>&1 |
  grep -v '^#[0-9]*.*\(NEW\|REDUCE\|pulse\)'
rc=${PIPESTATUS[0]}
set -e
if ((rc != 0)); then
  echo "fuzz: $(basename "$binary") failed (exit $rc); reproducer(s):" >&2
  ls -1 "$work/artifacts" >&2 || true
  echo "copy it into $seeds and fix the bug: the unit tests replay that directory" >&2
fi
exit "$rc"
