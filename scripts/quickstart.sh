#!/usr/bin/env bash
# Quick start on a fresh machine (as root): installs dependencies, builds stack, imports a
# BusyBox base image, brings up examples/demo, and says what to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "building (a clean build takes a few minutes on 2 cores)..."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
stack=$PWD/build/stack
if ! "$stack" image ls --format json | grep -q '"busybox:latest"'; then
  rootfs=$(mktemp -d /tmp/stack-busybox-XXXXXX)
  scripts/make-busybox-rootfs.sh "$rootfs"
  "$stack" image import busybox:latest "$rootfs"
  rm -rf "$rootfs"
fi
"$stack" -f examples/demo/stack.yaml up -d
"$stack" -f examples/demo/stack.yaml ps
cat <<TXT

The demo stack is up. Things to look at (stack is $stack):
  $stack -f examples/demo/stack.yaml ps --format json     # state, pid, exit codes
  $stack -f examples/demo/stack.yaml logs -f worker       # timestamped, rotated logs
  $stack -f examples/demo/stack.yaml exec web ps           # the container sees only its processes
  $stack -f examples/demo/stack.yaml exec web wget -qO- http://127.0.0.1:8080/
  $stack -f examples/demo/stack.yaml up --dry-run          # the plan: nothing to do
  $stack -f examples/demo/stack.yaml down                  # removes everything it made
TXT
