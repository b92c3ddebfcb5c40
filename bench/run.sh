#!/usr/bin/env bash
# The benchmarks in one command (as root, from anywhere): builds stack in Release, prepares the
# same BusyBox root for every tool, runs the cases with the tools interleaved run by run, prints
# medians with their spread (and the ratio against stack where the spread supports one), and
# writes bench/results/<date>-<host>.json, bench/results/latest.json and the plots.
#   bench/run.sh [--quick] [--with-peers] [--cases LIST] [--tools LIST] [--runs N] [--no-build]
#                [--check]
#   --quick        up to 10 services and fewer runs (under 10 minutes with the peers)
#   --with-peers   install crun, runc, podman (with netavark and aardvark-dns), podman-compose,
#                  docker.io and docker-compose from Debian and measure them too (docker on a
#                  dockerd of the bench's own, started with --iptables=false: the host's
#                  firewall is left as it is; podman in a storage and network config of its own)
#   --cases LIST   comma-separated: container-start, container-start-net, up, memory,
#                  restart-reaction, dns, network, overlay, unpack, build, or a case name
#                  (up-10, dns-p99-us, overlay-gbits, ...); up-N alone runs `up` at N
#                  services only. The sizes from 100 run after every other case.
#   --tools LIST   comma-separated: only these tools (stack, unshare, crun, runc, stack-runtime,
#                  podman or podman-compose, docker or docker-compose)
#   --runs N       counted runs per case (default 10, 5 with --quick; fewer for a peer at
#                  50-200 services, where a round takes minutes: the run count is shown)
#   --results DIR  where the results go (default bench/results)
#   --build-dir D  the build directory (default build)
#   --no-build     use the existing build directory as it is
#   --check        fail unless every selected case produced a figure for stack (the CTest)
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
build=1 peers=0 check=0 dir=build pass=()
while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --no-build) build=0 ;;
    --with-peers) peers=1; pass+=("$1") ;;
    --check) check=1; pass+=("$1") ;;
    --quick) pass+=("$1") ;;
    --build-dir) dir=${2:?--build-dir needs a value}; shift ;;
    --cases|--tools|--runs|--results) pass+=("$1" "${2:?$1 needs a value}"); shift ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ $EUID != 0 ]]; then
  echo "SKIPPED: bench/run.sh needs root (containers, namespaces, cgroups)" >&2
  exit $((check ? 77 : 2))  # 77: CTest's skip code for the bench test
fi

need=(iperf3 gnuplot-nox iproute2 util-linux)
# netavark and aardvark-dns: podman's DNS (the CNI backend has none without dnsname).
((peers)) && need+=(crun runc podman netavark aardvark-dns podman-compose docker.io docker-compose)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}" >&2
  # No service may start while the packages install (dockerd would rewrite the firewall).
  blocker=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    blocker=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 || true
  ((blocker)) && rm -f /usr/sbin/policy-rc.d
fi

if ((build)); then
  scripts/install-deps.sh >&2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$dir" >&2
fi
exec python3 bench/harness/harness.py --source "$PWD" --build "$(realpath "$dir")" \
  "${pass[@]}"
