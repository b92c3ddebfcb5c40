#!/usr/bin/env bash
# The Debian package, the README's way: builds it with `cpack -G DEB` from BUILD_DIR (lintian
# checks it when installed: no error or warning), installs it with dpkg into a Debian booted
# with systemd-nspawn (machine.sh, the systemd test's cached rootfs), and checks that it makes
# the group and enables nothing, that `systemctl enable --now stack` runs a file dropped into
# /etc/stack/stacks.d, that `journalctl -u stack` has the daemon's lines with their PROJECT=
# field, that an upgrade (stop, dpkg -i, start) re-adopts the containers, that `dpkg -r` keeps
# /var/lib/stack and names the containers left running, that purge refuses while they run and
# removes /var/lib/stack once they are down. Cleanup as machine.sh's, pass or fail.
# Usage (as root): package_test.sh BUILD_DIR. Exit 77: cannot run here.
set -uo pipefail
build=${1:?usage: package_test.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "$build" && pwd)
t0=$SECONDS

skip() { echo "SKIP: $*"; exit 77; }
[[ $EUID -eq 0 ]] || skip "needs root (boots a container with systemd-nspawn)"
command -v systemd-nspawn >/dev/null ||
  skip "systemd-nspawn is not installed (package systemd-container, scripts/install-deps.sh)"
command -v dpkg-shlibdeps >/dev/null || skip "dpkg-shlibdeps is not installed (dpkg-dev)"
[[ -x $build/stackd ]] || { echo "FAIL: $build/stackd is not an executable (build first)"; exit 1; }

# The package's libraries are stackd's: the same rootfs as the systemd test's.
tarball=$("$here/rootfs.sh" "$build/stack" "$build/stackd")
case $? in 0) ;; 77) exit 77 ;; *) echo "FAIL: cannot build the systemd rootfs"; exit 1 ;; esac

project=pkgtest
ct_stack=/usr/bin/stack
# shellcheck source=machine.sh disable=SC2034  # t0, ct_stack, repo: used by machine.sh
. "$here/machine.sh"
machine_init stack-pkgtest
machine_unpack "$tarball"

# --- the package -----------------------------------------------------------------------------
mkdir -p "$tmp/pkg"
require "cpack -G DEB builds the package" \
  cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg"
deb=$(ls "$tmp"/pkg/stack_*.deb)
if command -v lintian >/dev/null; then
  # As root, lintian says so on stderr; the hints are on stdout.
  check "lintian: no error and no warning" eval \
    '! lintian "$deb" 2>/dev/null | grep -E "^[EW]: "'
fi
check "its dependencies are the runtime libraries (dpkg-shlibdeps)" eval \
  '[[ $(dpkg-deb -f "$deb" Depends) == *libsystemd0* && $(dpkg-deb -f "$deb" Depends) == *libnftables1* ]]'
cp "$deb" "$root/root/stack.deb"

machine_boot

# --- install: the group, the directories, nothing enabled --------------------------------------
require "dpkg -i stack.deb" in_ct dpkg -i /root/stack.deb
check "the files: /usr/bin/stack, /usr/libexec/stack/{stackd,stack-init}, the unit" \
  in_ct test -x /usr/bin/stack -a -x /usr/libexec/stack/stackd -a -x /usr/libexec/stack/stack-init \
  -a -f /usr/lib/systemd/system/stack.service
check "the unit runs /usr/bin/stack daemon" eval \
  'in_ct systemctl cat stack | grep -qx "ExecStart=/usr/bin/stack daemon"'
check "the group stack exists" in_ct getent group stack
check "/etc/stack/stacks.d exists" in_ct test -d /etc/stack/stacks.d
check "bash and zsh completions are installed" \
  in_ct test -s /usr/share/bash-completion/completions/stack -a -s /usr/share/zsh/vendor-completions/_stack
check "nothing is enabled or started" \
  test "$(in_ct systemctl is-enabled stack)/$(prop ActiveState)" == disabled/inactive

# --- enable --now; a file in stacks.d runs -----------------------------------------------------
# The controllers nspawn leaves read-only would keep every container from starting.
machine_cgroups_rw
require "systemctl enable --now stack" in_ct systemctl enable --now stack
check "MainPID is /usr/libexec/stack/stackd" \
  test "$(in_ct readlink /proc/"$(prop MainPID)"/exe)" == /usr/libexec/stack/stackd
check "the socket belongs to group stack, mode 0660" \
  test "$(in_ct stat -c %G/%a /run/stack/stack.sock)" == stack/660
require "stack image import busybox" in_ct stack image import busybox:latest /opt/busybox
cat >"$root/etc/stack/stacks.d/.$project.tmp" <<EOF
name: $project
services:
  a:
    image: busybox
    command: [sleep, "3000"]
  b:
    image: busybox
    command: [sleep, "3000"]
EOF
mv "$root/etc/stack/stacks.d/.$project.tmp" "$root/etc/stack/stacks.d/$project.yaml"
both_running() {
  [[ $(field "$project-a-1" state) == running && $(field "$project-b-1" state) == running ]]
}
require "the daemon brings up a file dropped into /etc/stack/stacks.d" wait_for 20 both_running
a=$(field "$project-a-1" pid) b=$(field "$project-b-1" pid)

# --- journald ---------------------------------------------------------------------------------
check "journalctl -u stack shows the daemon's lines" eval \
  'in_ct journalctl -b -u stack --no-pager -o cat | grep -q "^ready pid="'
check "... with the fields PROJECT= and PASS= (journalctl -u stack PROJECT=$project)" eval \
  'in_ct journalctl -b -u stack --no-pager -o json PROJECT=$project |
     "$py" -c "import json,sys
lines = [json.loads(l) for l in sys.stdin]
assert lines and all(l[\"SYSLOG_IDENTIFIER\"] == \"stackd\" for l in lines), lines
assert any(l.get(\"PASS\") == \"p1\" and l[\"MESSAGE\"].startswith(\"pass=p1 \") for l in lines), lines"'
check "... and CONTAINER= (journalctl -u stack CONTAINER=$project-a-1)" eval \
  'in_ct journalctl -b -u stack --no-pager -o cat CONTAINER=$project-a-1 |
     grep -q "^started container name=$project-a-1 "'

# --- /etc/stack/daemon.json: a mistake is named; the options reach the daemon ------------------
echo '{"log-level": "debug", "rot": "/srv"}' >"$root/etc/stack/daemon.json"
out=$(in_ct stack ps -p "$project" 2>&1)
check "a typo in daemon.json: the CLI names the file and the key" \
  test "$out" == 'stack: /etc/stack/daemon.json: unknown key "rot" (keys: root, run-root, stacks-dir, resync, log-level, userns-remap, userns-layers, log-max-size, log-max-file, registries-config, cluster, node-name, advertise, cluster-ca, cluster-cert, cluster-key, ingress-subnet)'
check "... and the daemon does not start" eval '! in_ct systemctl restart stack'
check "... saying why in its journal" wait_for 5 eval \
  'in_ct journalctl -b -u stack --no-pager -o cat | grep -qF "/etc/stack/daemon.json: unknown key \"rot\""'
check "... once: exit status 2 is not restarted" \
  test "$(prop Result)/$(prop NRestarts)" == exit-code/0
echo '{"log-level": "debug"}' >"$root/etc/stack/daemon.json"
require "fixed, the daemon starts" in_ct systemctl restart stack
check "... and re-adopts the containers" \
  test "$(prop StatusText)/$(field "$project-a-1" pid)/$(field "$project-b-1" pid)" == \
  "running, 2 container(s) adopted/$a/$b"
check "... at the file's log level (debug lines of API requests)" eval \
  'in_ct journalctl -b -u stack --no-pager -o cat _PID=$(prop MainPID) | grep -q "^request GET"'
rm "$root/etc/stack/daemon.json"

# --- upgrade: stop, install, start; the containers are re-adopted --------------------------------
require "systemctl stop stack" in_ct systemctl stop stack
require "dpkg -i stack.deb again (upgrade in place)" in_ct dpkg -i /root/stack.deb
check "... starts nothing" test "$(prop ActiveState)" == inactive
require "systemctl start stack" in_ct systemctl start stack
check "the new daemon re-adopts both containers" \
  test "$(prop StatusText)" == "running, 2 container(s) adopted"
check "... the same processes" test "$(field "$project-a-1" pid)/$(field "$project-b-1" pid)" == "$a/$b"

# --- remove: state kept, containers left running and named ---------------------------------------
out=$(in_ct dpkg -r stack 2>&1)
check "dpkg -r stack" test $? -eq 0
check "... names the containers it leaves running" eval \
  '[[ $out == *"keep running, unsupervised: $project-a-1 $project-b-1"* ]]'
check "... the daemon is stopped and the programs are gone" \
  test "$(prop ActiveState)/$(in_ct sh -c 'test -e /usr/bin/stack && echo present')" == inactive/
check "... /var/lib/stack is kept" in_ct test -d /var/lib/stack/containers
check "... the containers still run" \
  in_ct sh -c "test \"\$(cat /proc/$a/comm)\" = stack-init && test \"\$(cat /proc/$b/comm)\" = stack-init"

# --- purge while they run: refused, named, nothing removed -----------------------------------------
out=$(in_ct dpkg --purge stack 2>&1)
check "dpkg --purge refuses while containers run" test $? -ne 0
check "... and names them" eval '[[ $out == *"purge refused"*"$project-a-1 $project-b-1"* ]]'
check "... /var/lib/stack is still there" in_ct test -d /var/lib/stack/containers

# --- reinstall re-adopts them; down; purge removes the state -----------------------------------
require "dpkg -i stack.deb after remove" in_ct dpkg -i /root/stack.deb
require "systemctl start stack" in_ct systemctl start stack
check "the containers left running are re-adopted, same processes" \
  test "$(prop StatusText)/$(field "$project-a-1" pid)/$(field "$project-b-1" pid)" == \
  "running, 2 container(s) adopted/$a/$b"
rm "$root/etc/stack/stacks.d/$project.yaml"
require "stack down -p $project" in_ct stack down -p "$project" -t 0
out=$(in_ct dpkg --purge stack 2>&1)
check "dpkg --purge stack" test $? -eq 0 || sed 's/^/      | /' <<<"$out"
check "... removes /var/lib/stack, /run/stack and /etc/stack" \
  in_ct sh -c '! test -e /var/lib/stack && ! test -e /run/stack && ! test -e /etc/stack'
check "... and the unit's enablement" \
  in_ct sh -c '! test -e /etc/systemd/system/multi-user.target.wants/stack.service'
check "... dpkg knows the package no more" eval '! in_ct dpkg -s stack >/dev/null 2>&1'

((failed == 0))
