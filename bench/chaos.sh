#!/usr/bin/env bash
# The chaos test's long mode (run as root from the repository, after a build): the daemon killed
# with SIGKILL at random points of `up`, `down` and updates of a 20-service stack, N times
# (default 200; CI runs 6), each followed by a check that a new daemon converged with no
# duplicate and nothing leaked. Prints the iterations, the kills, the failures and the seed
# (STACK_CHAOS_SEED=SEED replays the same sequence of operations and kill points).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
log=$(mktemp /tmp/stack-chaos-XXXXXX.log)
start=$(date +%s)
set +e
STACK_CHAOS_ITERATIONS=$n build/tests/chaos_tests --success=false >"$log" 2>&1
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))
grep -o 'chaos: [0-9]* iterations, [0-9]* daemons killed, seed [0-9]*' "$log" | tail -1
failed=$(grep -c 'ERROR:' "$log" || true)
echo "failed checks: $failed; ${elapsed} s in all; exit $rc; log: $log"
grep -A3 'ERROR:' "$log" | head -40 || true
exit $rc
