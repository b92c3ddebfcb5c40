#!/usr/bin/env bash
# The cost of storage per container (issue 13), run as root from the repository after a build:
# `stack up -d` of a 10-service stack where every service mounts a named volume (seeded from
# the image's /etc), an anonymous volume, a tmpfs, one secret and one config, against the same
# stack without them; median of 7 up/down -v cycles each (NO_VOLUMES=1: tmpfs, secret and
# config only). Private --root/--run-root, removed
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=$PWD/build/stack
work=$(mktemp -d /tmp/stack-bench-storage-XXXXXX)
S=("$stack" --root "$work/root" --run-root "$work/run")
trap '"${S[@]}" -p plain down -v -t 0 >/dev/null 2>&1 || true
      "${S[@]}" -p stored down -v -t 0 >/dev/null 2>&1 || true
      "${S[@]}" daemon stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
stack_file() {  # NAME WITH_STORAGE
  echo "name: $1"; echo "services:"
  for i in $(seq 10); do
    printf '  s%d:\n    image: busybox\n    command: [sleep, "3600"]\n' "$i"
    if [[ $2 == yes ]]; then
      [[ ${NO_VOLUMES:-} ]] || printf '    volumes: ["v%d:/etc", /anon]\n' "$i"
      printf '    tmpfs: ["/scratch:size=8m"]\n'
      printf '    secrets: [pw]\n    configs: [{source: conf, target: /app.conf}]\n'
    fi
  done
  if [[ $2 == yes ]]; then
    echo "volumes:"; for i in $(seq 10); do echo "  v$i: {}"; done
    echo "secrets: {pw: {file: ./pw.txt}}"
    echo "configs: {conf: {content: \"level=3\"}}"
  fi
}

scripts/make-busybox-rootfs.sh "$work/rootfs" >/dev/null
"${S[@]}" image import busybox:latest "$work/rootfs" >/dev/null 2>&1
mkdir -p "$work/plain" "$work/stored"
stack_file plain no > "$work/plain/stack.yaml"
stack_file stored yes > "$work/stored/stack.yaml"
echo "s3cr3t" > "$work/stored/pw.txt"
for p in plain stored; do
  times=()
  for run in 1 2 3 4 5 6 7; do
    t0=$(ms); (cd "$work/$p" && "${S[@]}" up -d >/dev/null 2>&1); t1=$(ms)
    times+=($((t1 - t0)))
    running=$("${S[@]}" -p "$p" ps --format json | grep -c '"state": "running"')
    "${S[@]}" -p "$p" down -v -t 0 >/dev/null 2>&1
  done
  echo "stack up -d, 10 services, $p: median $(printf '%s\n' "${times[@]}" | median) ms ($running running)"
done
