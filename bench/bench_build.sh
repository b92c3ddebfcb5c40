#!/usr/bin/env bash
# Building examples/webapp's three images (issue 14), run as root from the repository after a
# build: `stack build --no-cache` (cold: the base is in the store, no step cached) and `stack
# build` again (warm: every step cached), median of RUNS (default 3) each; then the same
# Dockerfiles with `podman build` / `docker build` where they work here, and the ratios.
# Private --root/--run-root and podman storage under a temp dir, all removed at the end; podman
# builds with --network=none (no RUN needs a network; it leaves the host's firewall alone), or
# host with --isolation=chroot where crun cannot run here.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
stack=$repo/build/stack
runs=${RUNS:-3}
base="stack-examples/debian-webapp:bookworm"
work=$(mktemp -d /tmp/stack-bench-build-XXXXXX)
S=("$stack" --root "$work/root" --run-root "$work/run")
P=(podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver overlay)
# crun refuses this cgroup v1 hybrid host ("cgroups in hybrid mode not supported"): runc with
# cgroupfs works here.
if command -v runc >/dev/null; then P+=(--runtime runc --cgroup-manager cgroupfs); fi
trap '"${S[@]}" daemon stop >/dev/null 2>&1 || true
      "${P[@]}" rmi -af >/dev/null 2>&1 || true
      umount -R "$work/podman/overlay" 2>/dev/null || true
      rm -rf --one-file-system "$work"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
services=(db app proxy)
timed() {  # NAME CMD... : prints the median wall time (ms) of RUNS runs of CMD
  local name=$1; shift
  local times=() t0
  for ((i = 0; i < runs; i++)); do
    t0=$(ms)
    if ! "$@" >"$work/$name.log" 2>&1; then
      { echo "$name failed:"; tail -20 "$work/$name.log"; } >&2
      exit 1
    fi
    times+=($(($(ms) - t0)))
  done
  printf '%s\n' "${times[@]}" | median
}

tarball=$(scripts/make-webapp-base.sh) || { echo "the webapp base cannot be made here"; exit 1; }
cp -r examples/webapp "$work/webapp"
"${S[@]}" image import "$base" "$tarball" >/dev/null 2>&1
echo "examples/webapp: ${services[*]} from $base ($(du -h "$tarball" | cut -f1) zstd), median of $runs"

declare -A result
if "${S[@]}" help build >/dev/null 2>&1; then
  result[stack_cold]=$(timed stack-cold "${S[@]}" -f "$work/webapp/stack.yaml" build --no-cache)
  result[stack_warm]=$(timed stack-warm "${S[@]}" -f "$work/webapp/stack.yaml" build)
  echo "stack build   cold ${result[stack_cold]} ms   warm (all cached) ${result[stack_warm]} ms"
else
  echo "stack build: not available in this build of stack"
fi

# The same Dockerfiles with another builder, FROM the same base imported into its own store.
other_build() {  # TOOL... ; builds the three images, cold or warm by the caller's flag
  local flag=$1; shift
  for s in "${services[@]}"; do
    "$@" build --network="$network" --isolation="$isolation" ${flag:+"$flag"} -t "webapp-$s" \
      "$work/webapp/$s" || return 1
  done
}
tried=0
if command -v podman >/dev/null && "${P[@]}" info >/dev/null 2>&1; then
  tried=1
  zstd -dc "$tarball" | "${P[@]}" import - "$base" >/dev/null 2>&1
  # Without a runtime that works here, podman's chroot isolation (no namespaces, no cgroups).
  isolation=oci network=none
  if ! "${P[@]}" run --rm --network=none "$base" true >/dev/null 2>&1; then
    isolation=chroot network=host  # chroot allows no other; these RUNs send nothing
    echo "podman: its runtime cannot run containers here: podman build --isolation=chroot"
  fi
  result[podman_cold]=$(timed podman-cold other_build --no-cache "${P[@]}")
  result[podman_warm]=$(timed podman-warm other_build "" "${P[@]}")
  echo "podman build ($isolation)  cold ${result[podman_cold]} ms   warm (all cached) ${result[podman_warm]} ms"
else
  echo "podman build: podman is not installed or does not work here"
fi
if command -v docker >/dev/null && timeout 5 docker info >/dev/null 2>&1; then
  echo "docker build: a docker daemon answers, but this bench does not use the host's daemon"
else
  echo "docker build: no docker daemon here (not installed by this bench: it changes the firewall)"
fi
if [[ -n ${result[stack_cold]:-} && $tried == 1 ]]; then
  awk -v sc="${result[stack_cold]}" -v sw="${result[stack_warm]}" \
      -v pc="${result[podman_cold]}" -v pw="${result[podman_warm]}" \
      'BEGIN { printf "ratio podman/stack: cold %.2f, warm %.2f\n", pc / sc, pw / sw }'
fi
