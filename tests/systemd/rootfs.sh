#!/usr/bin/env bash
# Prints the path of a cached tarball of a Debian rootfs that boots systemd and runs BINARY...:
# debootstrap minbase + systemd, systemd-sysv, dbus and the Debian packages of the binaries'
# shared libraries. Built once from apt's own mirror, then reused; the name carries a hash of
# the package list, so a binary that links a new library gets a new rootfs. Concurrent runs
# wait on a lock instead of building twice. Exit 77: no way to build it here (skip).
# Usage: rootfs.sh BINARY...   (env: STACK_TEST_CACHE, default /var/cache/stack-test;
#                                   STACK_TEST_MIRROR, default: apt's mirror for the suite)
set -euo pipefail
(($# > 0)) || { echo "usage: rootfs.sh BINARY..." >&2; exit 2; }
cache=${STACK_TEST_CACHE:-/var/cache/stack-test}

skip() { echo "SKIP: $*" >&2; exit 77; }
die() { echo "rootfs: $*" >&2; exit 1; }

command -v debootstrap >/dev/null || skip "debootstrap is not installed (scripts/install-deps.sh)"
command -v dpkg >/dev/null || skip "not a Debian host: the rootfs is built from its packages"
# shellcheck disable=SC1091
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n $suite ]] || skip "no VERSION_CODENAME in /etc/os-release"

# The Debian packages of each binary's own (NEEDED) libraries; apt brings their dependencies.
# ldd gives each one's path, dpkg its owner - on either side of the /usr merge.
pkgs=(systemd systemd-sysv dbus)
for binary in "$@"; do
  needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p') ||
    die "readelf $binary failed"
  paths=$(ldd "$binary" | awk -v n=" $(echo $needed) " 'index(n, " " $1 " ") && $3 ~ /^\// {print $3}')
  owners=$(for p in $paths; do echo "$p"; case $p in /usr/*) echo "${p#/usr}" ;; *) echo "/usr$p" ;; esac
    done | xargs dpkg -S 2>/dev/null || true)
  for lib in $needed; do
    p=$(awk -v l="/$lib" 'substr($2, length($2) - length(l) + 1) == l { sub(/:.*/, "", $1); print $1; exit }' \
      <<<"$owners")
    [[ -n $p ]] || die "no Debian package owns $lib (needed by $binary)"
    pkgs+=("$p")
  done
done
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
key=$(printf '%s\n' "$suite" minbase "${pkgs[@]}" | sha256sum | cut -c1-12)
tarball=$cache/systemd-rootfs-$suite-$key.tar.zst
if [[ -s $tarball ]]; then echo "$tarball"; exit 0; fi

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
exec 9>"$cache/.lock"
flock -w 900 9 || die "timed out waiting for another run building the rootfs ($cache/.lock)"
if [[ -s $tarball ]]; then echo "$tarball"; exit 0; fi  # built while we waited

wget -q --timeout=15 --tries=2 -O /dev/null "$url/dists/$suite/Release" ||
  skip "the Debian mirror $url does not answer: cannot build the systemd rootfs"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
include=$(IFS=,; echo "${pkgs[*]}")
echo "rootfs: debootstrap $suite from $url with $include (once; cached in $cache)" >&2
start=$SECONDS
if ! debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$url" \
  >"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  grep -qE "Failed getting release|Couldn't download|Temporary failure resolving" \
    "$work/debootstrap.log" && skip "debootstrap cannot reach $url"
  die "debootstrap failed (log above)"
fi
# No first-boot questions and no getty on the console: the test enters with nsenter.
echo stack-systemd-test >"$work/root/etc/hostname"
ln -sf /dev/null "$work/root/etc/systemd/system/console-getty.service"
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
tar -C "$work/root" --zstd -cf "$work/rootfs.tar.zst" .
mv "$work/rootfs.tar.zst" "$tarball"
echo "rootfs: built $tarball in $((SECONDS - start)) s" >&2
echo "$tarball"
