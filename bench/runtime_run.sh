#!/bin/sh
# `stack-runtime run` of /bin/true on a BusyBox bundle against `crun run` and `runc run` of the
# same bundle (those installed): the median wall time of N runs each (default 20), and each
# one's median over stack-runtime's. Root.
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
# Round by round, each runtime in turn (so a machine's load weighs on all alike), all in one
# private mount namespace with the hybrid layout's cgroup2 tree hidden, as crun needs here
# (stack-runtime and runc run the same without it). One line per successful run: "NAME
# MICROSECONDS"; a failed run is said on stderr and left out (n counts the runs timed).
export n work
runtimes="stack-runtime=$build/stack-runtime"
for peer in crun runc; do
  if command -v "$peer" >/dev/null; then
    runtimes="$runtimes $peer=$(command -v "$peer")"
  else
    echo "$peer run /bin/true: $peer is not installed (apt-get install $peer)" >&2
  fi
done
export runtimes
unshare -m --propagation private sh -c '
  umount -l /sys/fs/cgroup/unified 2>/dev/null
  mount -t tmpfs -o size=1m stack-rt-hide /sys/fs/cgroup/unified || exit 1
  i=0
  while [ $i -lt "$n" ]; do
    for rt in $runtimes; do
      name=${rt%%=*} bin=${rt#*=}
      t0=$(date +%s%N)
      if "$bin" --root "$work/$name-root" run --bundle "$work/bundle" "stack-rt-bench-$i" \
          >/dev/null 2>"$work/err"; then
        t1=$(date +%s%N)
        echo "$name $(( (t1 - t0) / 1000 ))"
      else
        echo "$name: run $i failed: $(head -c 300 "$work/err")" >&2
      fi
    done
    i=$((i + 1))
  done' >"$work/times"
# Each runtime's median, spread and ratio to stack-runtime's median.
for rt in $runtimes; do
  name=${rt%%=*}
  awk -v name="$name" '$1 == name {print $2}' "$work/times" | sort -n | awk -v name="$name" '
    {a[NR] = $1}
    END {
      if (NR == 0) { printf "%s run /bin/true: no run succeeded\n", name; exit }
      m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      printf "%s %.2f %d %.2f %.2f\n", name, m / 1000, NR, a[1] / 1000, a[NR] / 1000
    }'
done | awk '
  NF == 5 {
    if ($1 == "stack-runtime") base = $2
    printf "%-14s run /bin/true  median %7.2f ms (n=%d, min %.2f, max %.2f)", $1, $2, $3, $4, $5
    if (base > 0) printf "  %.2fx stack-runtime", $2 / base
    printf "\n"
    next
  }
  {print}'
