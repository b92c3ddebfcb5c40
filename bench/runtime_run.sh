#!/bin/sh
# `stack-runtime run` of /bin/true on a BusyBox bundle against `crun run` of the same bundle:
# the median wall time of N runs each (default 20). Root. crun runs in a private mount namespace
# with the hybrid layout's cgroup2 tree hidden (crun needs it here; see bench_start.cpp).
# Usage: bench/runtime_run.sh BUILD_DIR [N]
set -eu
build=$(cd "$1" && pwd)
n=${2:-20}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/stack-rt-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$src/scripts/make-busybox-rootfs.sh" "$work/bundle/rootfs" >/dev/null
cd "$work/bundle"
crun spec
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/stack-rt-bench"
json.dump(c, open("config.json", "w"))
PY
# One line per run: milliseconds.
timed() {
  i=0
  while [ $i -lt "$n" ]; do
    t0=$(date +%s%N)
    "$@" "stack-rt-bench-$i" >/dev/null 2>&1 || echo "run $i failed" >&2
    t1=$(date +%s%N)
    echo "$(( (t1 - t0) / 1000 ))"
    i=$((i + 1))
  done
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f ms (n=%d, min %.2f, max %.2f)\n", m/1000, NR, a[1]/1000, a[NR]/1000}'; }
printf 'stack-runtime run /bin/true  median '
timed "$build/stack-runtime" --root "$work/stack-root" run --bundle "$work/bundle" | median
if command -v crun >/dev/null; then
  printf 'crun run /bin/true           median '
  n=$n work=$work unshare -m --propagation private sh -c '
    umount -l /sys/fs/cgroup/unified 2>/dev/null
    mount -t tmpfs -o size=1m stack-rt-hide /sys/fs/cgroup/unified
    i=0
    while [ $i -lt "$n" ]; do
      t0=$(date +%s%N)
      crun --root "$work/crun-root" run --bundle "$work/bundle" "stack-rt-bench-$i" >/dev/null 2>&1 || echo "run $i failed" >&2
      t1=$(date +%s%N)
      echo "$(( (t1 - t0) / 1000 ))"
      i=$((i + 1))
    done' | median
else
  echo 'crun run /bin/true           (crun not installed)'
fi
