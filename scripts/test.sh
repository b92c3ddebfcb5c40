#!/usr/bin/env bash
# The whole test suite on a fresh machine (as root): installs what is missing, builds, and runs
# every CTest test (labels unit, integration, e2e, security, chaos, fuzz, systemd) but the
# benchmarks (label bench: `ctest -L bench` or bench/run.sh). Extra arguments go to ctest, e.g.
# -L unit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
# The Debian base of examples/webapp (its e2e test): debootstrapped once (~5 min), then cached in
# /var/cache/stack-examples, so that no test spends its timeout on it. Exit 77: it cannot be made
# here, and the test says so when it skips.
scripts/make-webapp-base.sh >/dev/null || (($? == 77))
select=(-LE bench)
for a in "$@"; do [[ $a == -L || $a == --label-regex ]] && select=(); done
ctest --test-dir build --output-on-failure --timeout 300 "${select[@]}" "$@"
