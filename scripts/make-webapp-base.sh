#!/usr/bin/env bash
# Makes the Debian base image of examples/webapp: debootstrap minbase of the host's suite with
# PostgreSQL, Python 3 + psycopg2, nginx-light and curl, cached as a tarball (the name carries a
# hash of the package list) and, with --import, imported into stack's store. A RUN apt-get in a
# container may not reach a mirror, so every package comes in here. Concurrent runs wait on a
# lock. Exit 77: no way to build it on this machine (tests skip).
# Usage: make-webapp-base.sh [--import [NAME]]   prints the tarball's path (and the image id)
#   env: STACK_EXAMPLES_CACHE (default /var/cache/stack-examples), STACK_TEST_MIRROR, STACK (the
#        stack binary for --import, default: stack on PATH), STACK_ARGS (e.g. --run-root DIR)
set -euo pipefail
cache=${STACK_EXAMPLES_CACHE:-/var/cache/stack-examples}
image=
if [[ ${1:-} == --import ]]; then image=${2:-stack-examples/debian-webapp:bookworm}; fi

skip() { echo "SKIP: $*" >&2; exit 77; }
die() { echo "make-webapp-base: $*" >&2; exit 1; }

pkgs=(curl nginx-light postgresql python3 python3-psycopg2)

import() {
  [[ -n $image ]] || return 0
  local stack=${STACK:-stack}
  # shellcheck disable=SC2086  # STACK_ARGS is a list of flags
  "$stack" ${STACK_ARGS:-} image import "$image" "$1" >&2 || die "stack image import failed"
}

command -v debootstrap >/dev/null || skip "debootstrap is not installed (scripts/install-deps.sh)"
command -v dpkg >/dev/null || skip "not a Debian host: the base is built from its packages"
# shellcheck disable=SC1091
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n $suite ]] || skip "no VERSION_CODENAME in /etc/os-release"
[[ $(id -u) == 0 ]] || skip "debootstrap needs root"

key=$(printf '%s\n' "$suite" minbase "${pkgs[@]}" | sha256sum | cut -c1-12)
tarball=$cache/webapp-base-$suite-$key.tar.zst
if [[ -s $tarball ]]; then echo "$tarball"; import "$tarball"; exit 0; fi

# apt's own mirror for the suite (deb822 .sources or one-line .list), else Debian's.
mirror() {
  [[ -n ${STACK_TEST_MIRROR:-} ]] && { echo "$STACK_TEST_MIRROR"; return; }
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$suite" '
      /^$/ { if (uri && suite) { print uri; exit } uri=""; suite=0; next }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) suite=1 }
      END { if (uri && suite) print uri }' | head -1)
  [[ -z $m ]] && m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
      if ($2 ~ /^\[/) i++; if ($(i + 1) == s) { print $i; exit } }')
  echo "${m:-http://deb.debian.org/debian}"
}
url=$(mirror)

mkdir -p "$cache"
exec 9>"$cache/.webapp-base.lock"
flock -w 900 9 || die "timed out waiting for another run building the base ($cache/.webapp-base.lock)"
if [[ -s $tarball ]]; then echo "$tarball"; import "$tarball"; exit 0; fi  # built while we waited

wget -q --timeout=15 --tries=2 -O /dev/null "$url/dists/$suite/Release" ||
  skip "the Debian mirror $url does not answer: cannot build the webapp base"
work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
  # The second stage mounts /proc (and sometimes /sys) in the target; never rm across a mount.
  local m
  awk -v r="$work/root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
include=$(IFS=,; echo "${pkgs[*]}")
echo "make-webapp-base: debootstrap $suite from $url with $include (once; cached in $cache)" >&2
start=$SECONDS
# Two stages so that a policy-rc.d is in place before the packages are configured: nginx's and
# postgresql's maintainer scripts would otherwise start their daemons in the chroot, on the
# host's network (invoke-rc.d(8), "POLICY-RC.D").
if ! debootstrap --foreign --variant=minbase --include="$include" "$suite" "$work/root" "$url" \
  >"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  grep -qE "Failed getting release|Couldn't download|Temporary failure resolving" \
    "$work/debootstrap.log" && skip "debootstrap cannot reach $url"
  die "debootstrap (first stage) failed (log above)"
fi
mkdir -p "$work/root/usr/sbin"
printf '#!/bin/sh\nexit 101\n' >"$work/root/usr/sbin/policy-rc.d"
chmod 755 "$work/root/usr/sbin/policy-rc.d"
if ! chroot "$work/root" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  die "debootstrap (second stage) failed (log above)"
fi
rm -f "$work/root/usr/sbin/policy-rc.d"
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
cleanup_mounts=$(awk -v r="$work/root/" 'index($2, r) == 1 { print $2 }' /proc/mounts)
[[ -z $cleanup_mounts ]] || die "mounts left in the target: $cleanup_mounts"
tar -C "$work/root" --zstd -cf "$work/base.tar.zst" .
mv "$work/base.tar.zst" "$tarball"
echo "make-webapp-base: built $tarball in $((SECONDS - start)) s" >&2
echo "$tarball"
import "$tarball"
