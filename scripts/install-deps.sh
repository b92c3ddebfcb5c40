#!/usr/bin/env bash
# Installs every build and test dependency of stack from Debian packages. Idempotent: packages
# already present are left alone and apt is not asked again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config musl-tools
  libyaml-dev libboost1.81-dev libspdlog-dev nlohmann-json3-dev libexpected-dev libcli11-dev
  libnl-3-dev libnl-route-3-dev libnftables-dev libldns-dev libarchive-dev libssl-dev libzstd-dev
  libcurl4-openssl-dev zlib1g-dev libseccomp-dev libcap-dev libsqlite3-dev libsystemd-dev doctest-dev
  iproute2 nftables zstd crun python3-jsonschema python3-yaml procps file iperf3
  debootstrap systemd-container  # tests/systemd: a Debian rootfs booted with systemd-nspawn
  dpkg-dev lintian               # packaging: cpack's dpkg-shlibdeps; the package test's lintian
  clang-14 libclang-rt-14-dev    # tests/fuzz: libFuzzer targets (clang's), with ASan and UBSan
  # tests of registry pulls and image archives: a registry on loopback, images built and pushed
  # from an OCI layout, and the readers `image save` must satisfy (podman for the test only)
  docker-registry skopeo umoci podman
  curl wget                      # e2e tests speak HTTP to published ports; mirror checks
  etcd-server etcd-client        # the cluster store's tests: EtcdStore against real members
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A static busybox builds the base image; busybox-static conflicts with the dynamic busybox
# package, so where that one is installed the static binary is only downloaded and unpacked.
if ! dpkg-query -W -f='${Status}' busybox 2>/dev/null | grep -q 'install ok installed'; then
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
    missing+=(busybox-static)
fi

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "dependencies: ok"
