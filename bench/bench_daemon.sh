#!/usr/bin/env bash
# The daemon's figures (run as root from the repository, after a build):
#   no-op `stack up -d` (median of 20), `stack up -d` of a 10- and a 50-service stack to all
#   running (median of 5), daemon RSS with 0 and with 50 containers, host memory per container.
# Everything runs under a private --root/--run-root and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=$PWD/build/stack
work=$(mktemp -d /tmp/stack-bench-daemon-XXXXXX)
S=("$stack" --root "$work/root" --run-root "$work/run")
trap 'cp "$work/run/daemon.log" /tmp/bench-daemon.log 2>/dev/null; "${S[@]}" -p b10 down -t 0 >/dev/null 2>&1 || true; "${S[@]}" -p b50 down -t 0 >/dev/null 2>&1 || true;
      "${S[@]}" daemon stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
services() {  # N: a stack of N busybox sleep services
  echo "name: b$1"; echo "services:"
  for i in $(seq "$1"); do printf '  s%d:\n    image: busybox\n    command: [sleep, "3600"]\n' "$i"; done
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

scripts/make-busybox-rootfs.sh "$work/rootfs" >/dev/null
"${S[@]}" image import busybox:latest "$work/rootfs" >/dev/null 2>&1
daemon=$(pgrep -f -- "stackd --root .* --run-root $work/run( |\$)")
echo "daemon RSS, no container:        $(rss_kb "$daemon") kB"

mkdir -p "$work/p10" "$work/p50"
services 10 > "$work/p10/stack.yaml"
services 50 > "$work/p50/stack.yaml"
for n in 10 50; do
  times=()
  for run in 1 2 3 4 5; do
    t0=$(ms); (cd "$work/p$n" && "${S[@]}" up -d >/dev/null 2>&1); t1=$(ms)
    times+=($((t1 - t0)))
    [[ $run == 5 ]] || "${S[@]}" -p "b$n" down -t 0 >/dev/null 2>&1
  done
  running=$("${S[@]}" -p "b$n" ps --format json | grep -c '"state": "running"')
  echo "stack up -d, $n services:        median $(printf '%s\n' "${times[@]}" | median) ms ($running running)"
done

noop=()
for run in $(seq 20); do
  t0=$(ms); (cd "$work/p50" && "${S[@]}" up -d >/dev/null 2>&1); t1=$(ms); noop+=($((t1 - t0)))
done
echo "no-op stack up -d (50 services): median $(printf '%s\n' "${noop[@]}" | median) ms"
echo "daemon RSS, 60 containers:       $(rss_kb "$daemon") kB"
inits=$("${S[@]}" -p b50 ps --format json | awk -F': ' '/"pid"/ {gsub(/,/,"",$2); print $2}')
total=0; count=0
for p in $inits; do total=$((total + $(rss_kb "$p"))); count=$((count + 1)); done
echo "host memory per container:       $((total / count)) kB (the init's RSS; no monitor process)"
