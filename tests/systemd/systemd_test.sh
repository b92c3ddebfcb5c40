#!/usr/bin/env bash
# stack under a real systemd: boots systemd (PID 1 of this machine is not systemd) with
# systemd-nspawn over a cached debootstrapped Debian (rootfs.sh), installs the repo's unit file
# and checks that the unit starts `stack daemon`, becomes ready over sd_notify, shows STATUS=,
# is kept alive by WATCHDOG=1 and restarted when it stops pinging, and that neither
# `systemctl restart stack` nor a watchdog restart touches the containers. nspawn mounts the v1
# controller hierarchies read-only: the daemon must say so in STATUS=; then the test remounts
# the ones stack uses read-write inside the machine. Everything it makes (machine, its cgroups,
# tmpfs, temp dir, containers) is removed by the EXIT trap, pass or fail.
# Usage (as root): systemd_test.sh STACK_BINARY STACKD_BINARY STACK_INIT_BINARY. Exit 77:
# cannot run here.
set -uo pipefail
usage="usage: systemd_test.sh STACK_BINARY STACKD_BINARY STACK_INIT_BINARY"
stack_bin=${1:?$usage}
stackd_bin=${2:?$usage}
init_bin=${3:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
t0=$SECONDS

skip() { echo "SKIP: $*"; exit 77; }
[[ $EUID -eq 0 ]] || skip "needs root (boots a container with systemd-nspawn)"
command -v systemd-nspawn >/dev/null ||
  skip "systemd-nspawn is not installed (package systemd-container, scripts/install-deps.sh)"
for b in "$stack_bin" "$stackd_bin" "$init_bin"; do
  [[ -x $b ]] || { echo "FAIL: $b is not an executable (build first)"; exit 1; }
done
stack_bin=$(readlink -f "$stack_bin")
stackd_bin=$(readlink -f "$stackd_bin")
init_bin=$(readlink -f "$init_bin")

tarball=$("$here/rootfs.sh" "$stack_bin" "$stackd_bin")
case $? in 0) ;; 77) exit 77 ;; *) echo "FAIL: cannot build the systemd rootfs"; exit 1 ;; esac

passed=0 failed=0
pass() { echo "PASS: $* [$((SECONDS - t0)) s]"; passed=$((passed + 1)); }
fail() { echo "FAIL: $* [$((SECONDS - t0)) s]"; failed=$((failed + 1)); }
# check DESCRIPTION COMMAND...: PASS or FAIL by the command's status; output shown on FAIL.
check() {
  local d=$1 output
  shift
  if output=$("$@" 2>&1); then pass "$d"; return 0; fi
  fail "$d"
  [[ -n $output ]] && sed 's/^/      | /' <<<"$output" | head -20
  return 1
}
# require DESCRIPTION COMMAND...: as check, but nothing after it makes sense when it fails.
require() { check "$@" || exit 1; }
# wait_for SECONDS COMMAND...: polls every 0.1 s until the command succeeds.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < end)) || return 1; sleep 0.1; done
}

name=stack-sdtest-$$
tmp=$(mktemp -d /var/tmp/stack-systemd-test.XXXXXX)
root=$tmp/root
nspawn_pid='' pid1=''

# The machine runs in cgroups of its own, below ours in every hierarchy, so that nspawn's
# payload/ and supervisor/ cgroups and stack's cgroups made inside land there, concurrent runs
# do not share them, and cleanup is one tree per hierarchy.
cg_name=$(basename "$tmp")
cg_dirs=()
while IFS=: read -r _ ctrls path; do
  case $ctrls in
    '') [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] && h=/sys/fs/cgroup || h=/sys/fs/cgroup/unified ;;
    name=*) h=/sys/fs/cgroup/${ctrls#name=} ;;
    *) h=/sys/fs/cgroup/$ctrls ;;
  esac
  [[ -d $h ]] && cg_dirs+=("$h${path%/}/$cg_name")
done </proc/self/cgroup

# Runs a command inside the machine: all its namespaces, a clean environment.
in_ct() {
  nsenter -t "$pid1" -a /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
prop() { in_ct systemctl show -p "$1" --value stack; }
project=sdtest
# The system's python3, not a version manager's shim (~0.2 s a call, and the checks poll).
py=$(command -v /usr/bin/python3 || command -v python3)
# Field FIELD of container NAME in `stack ps -a --format json`; empty if none.
field() {
  in_ct stack ps -a -p "$project" --format json 2>/dev/null |
    "$py" -c 'import json,sys
for c in json.load(sys.stdin):
    if c["name"] == sys.argv[1]: print(c[sys.argv[2]])' "$1" "$2"
}

diagnose() {
  [[ -n $pid1 ]] || return 0
  echo "--- systemctl status stack; journal of stack.service ---"
  in_ct systemctl status -n0 --no-pager stack 2>&1 | head -20
  in_ct journalctl -b -u stack --no-pager 2>&1 | tail -40
}

cleanup() {
  local rc=$? left=()
  trap - EXIT INT TERM
  ((failed > 0)) && diagnose
  if [[ -n $pid1 ]] && kill -0 "$pid1" 2>/dev/null; then
    # Containers down through the daemon first, so stack removes what it made; then the
    # machine powers off (SIGTERM to nspawn sends SIGRTMIN+3 to its systemd).
    rm -f "$root/etc/stack/stacks.d/"*.yaml
    if [[ $(prop ActiveState 2>/dev/null) == active ]]; then
      timeout 30 nsenter -t "$pid1" -a /usr/local/bin/stack down -p "$project" -t 0 >/dev/null 2>&1
    fi
    timeout 20 nsenter -t "$pid1" -a systemctl stop stack >/dev/null 2>&1
  fi
  if [[ -n $nspawn_pid ]]; then
    kill -TERM "$nspawn_pid" 2>/dev/null
    wait_for 15 eval '! kill -0 "$nspawn_pid" 2>/dev/null' || {
      left+=("machine did not power off, killed")
      [[ -n $pid1 ]] && kill -KILL "$pid1" 2>/dev/null  # ends its whole PID namespace
      kill -KILL "$nspawn_pid" 2>/dev/null
    }
    wait "$nspawn_pid" 2>/dev/null
  fi
  # Whatever still runs in the machine's cgroups is killed; then the trees go, leaves first.
  for d in "${cg_dirs[@]}"; do
    [[ -d $d ]] || continue
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null |
      while read -r p; do kill -KILL "$p" 2>/dev/null; done
  done
  for d in "${cg_dirs[@]}"; do
    [[ -d $d ]] || continue
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
      [[ -d $d ]] || break
      sleep 0.2
    done
    [[ -d $d ]] && left+=("cgroup $d")
  done
  # The tmpfs of the machine's files goes; nothing else should be mounted under it (the
  # machine had its own mount namespace), but make sure before removing the directory.
  while read -r mp; do umount -l "$mp" 2>/dev/null; done < \
    <(awk -v t="$tmp" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  rm -rf --one-file-system "$tmp" 2>/dev/null
  [[ -e $tmp ]] && left+=("directory $tmp")
  if ((${#left[@]})); then
    printf 'FAIL: cleanup: %s\n' "${left[@]}"
    ((rc == 0)) && rc=1
  else
    echo "cleanup: machine gone, cgroups and $tmp removed"
  fi
  echo "systemd test: $passed passed, $failed failed, $((SECONDS - t0)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the machine ---------------------------------------------------------------------------
# On a tmpfs: unpacking and removing 240 MB on a busy disk takes longer than the whole test.
mount -t tmpfs -o size=2g,mode=0755 stack-systemd-test "$tmp" || { echo "FAIL: mount tmpfs"; exit 1; }
mkdir "$root" && tar -C "$root" --numeric-owner --zstd -xf "$tarball" ||
  { echo "FAIL: unpack $tarball"; exit 1; }
"$repo/scripts/make-busybox-rootfs.sh" "$tmp/busybox" || { echo "FAIL: busybox rootfs"; exit 1; }
# The repo's unit, byte for byte; the test's changes are a drop-in: no start limit (the test
# restarts it often), and a short watchdog so that a missed ping shows within seconds.
install -D -m 0644 "$repo/systemd/stack.service" "$root/etc/systemd/system/stack.service"
mkdir -p "$root/etc/systemd/system/stack.service.d" "$root/etc/stack/stacks.d" \
  "$root/usr/local/libexec/stack" "$root/opt/busybox"
cat >"$root/etc/systemd/system/stack.service.d/50-test.conf" <<'EOF'
[Unit]
StartLimitIntervalSec=0
[Service]
WatchdogSec=2s
TimeoutAbortSec=2s
EOF
touch "$root/usr/local/bin/stack" "$root/usr/local/libexec/stack/stackd" \
  "$root/usr/local/libexec/stack/stack-init"
for d in "${cg_dirs[@]}"; do mkdir -p "$d"; done

(
  for d in "${cg_dirs[@]}"; do
    # A hierarchy that takes no task without setup (cpuset) keeps us in the parent.
    echo "$BASHPID" >"$d/cgroup.procs" 2>/dev/null || rmdir "$d"
  done
  # --register=no --keep-unit: there is no machined and no systemd on the host.
  # --private-network: nothing stack does in there can reach the host's interfaces.
  exec systemd-nspawn -q -D "$root" -M "$name" --register=no --keep-unit --private-network \
    --console=read-only -b \
    --bind-ro="$stack_bin:/usr/local/bin/stack" \
    --bind-ro="$stackd_bin:/usr/local/libexec/stack/stackd" \
    --bind-ro="$init_bin:/usr/local/libexec/stack/stack-init" \
    --bind-ro="$tmp/busybox:/opt/busybox"
) </dev/null >"$tmp/console.log" 2>&1 &
nspawn_pid=$!

booted() {
  [[ -z $pid1 ]] && pid1=$(pgrep -P "$nspawn_pid" | head -1)
  [[ -n $pid1 && $(cat "/proc/$pid1/comm" 2>/dev/null) == systemd ]] || return 1
  local s
  s=$(in_ct timeout 20 systemctl is-system-running --wait 2>/dev/null)
  [[ $s == running || $s == degraded ]]
}
boot_start=$SECONDS
if ! wait_for 30 booted; then
  kill -0 "$nspawn_pid" 2>/dev/null || cat "$tmp/console.log"
  require "systemd boots in the machine" false
fi
pass "systemd boots in the machine ($(in_ct systemctl is-system-running), $((SECONDS - boot_start)) s)"

# --- the unit starts and becomes ready -----------------------------------------------------
check "the unit is the repo's: Type=notify, KillMode=process, Delegate=yes" \
  test "$(prop Type),$(prop KillMode),$(prop Delegate)" == "notify,process,yes"
check "the repo's unit sets WatchdogSec" grep -q '^WatchdogSec=' "$repo/systemd/stack.service"
start=$SECONDS
# Type=notify: `systemctl start` returns only once the daemon sent READY=1.
require "systemctl enable --now stack (README's install step) returns once ready" \
  in_ct sh -c 'systemctl daemon-reload && systemctl enable --now stack 2>/dev/null'
echo "      ready in $((SECONDS - start)) s"
check "the unit is enabled" test "$(in_ct systemctl is-enabled stack)" == enabled
check "ActiveState=active SubState=running after READY=1" \
  test "$(prop ActiveState)/$(prop SubState)" == active/running
# nspawn mounts the v1 controller hierarchies read-only (it delegates only name=systemd and
# the unified tree), so stack cannot create container cgroups: the daemon must say so.
ro_mounts=$(awk '{ split($0, a, " - "); split(a[2], b, " ") }
  b[1] == "cgroup" && $6 ~ /(^|,)ro(,|$)/ { print $5 }' "/proc/$pid1/mountinfo")
if [[ -n $ro_mounts ]]; then
  check "read-only cgroups: STATUS= says containers cannot start, and why" eval \
    '[[ $(prop StatusText) == "running, 0 container(s) adopted; containers cannot start: cgroup v1: cannot create cgroups in /sys/fs/cgroup/"*": Read-only file system" ]]'
  # Make the hierarchies stack uses writable in the machine's mount namespace. The machine
  # keeps its cgroup namespace, so stack's cgroups land below this test's own cgroup on the
  # host, where cleanup removes them.
  for mp in $ro_mounts; do
    case ${mp##*/} in memory | cpu | cpuacct | pids | freezer | devices) ;; *) continue ;; esac
    nsenter -t "$pid1" -m mount -o remount,bind,rw "$mp" || fail "remount $mp read-write"
  done
  require "systemctl restart stack (cgroups now writable)" in_ct systemctl restart stack
fi
main=$(prop MainPID) main_start=$SECONDS
# ExecStart=stack daemon execs stackd in the same process: systemd's main PID is the daemon.
check "MainPID is stackd, exec'd by /usr/local/bin/stack daemon" \
  test "$(in_ct readlink /proc/"$main"/exe),$(in_ct cat /proc/"$main"/cmdline | tr '\0' ' ')" == \
  "/usr/local/libexec/stack/stackd,/usr/local/libexec/stack/stackd --root /var/lib/stack --run-root /run/stack "
check "STATUS= is the unit's StatusText" \
  test "$(prop StatusText)" == "running, 0 container(s) adopted"
check "systemctl status shows the Status: line" eval \
  'in_ct systemctl status --no-pager stack | grep -qF "Status: \"running, 0 container(s) adopted\""'
served_by_unit() {
  local out
  out=$(in_ct stack ps -a -p "$project" 2>&1) || { echo "$out"; return 1; }
  [[ $out != *"started the stack daemon"* ]] && ! in_ct test -e /run/stack/daemon.log
}
require "the CLI is served by the unit's daemon (no daemon of its own)" served_by_unit

# --- a stack from /etc/stack/stacks.d -------------------------------------------------------
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
# systemd tracks units in name=systemd and, in hybrid mode, in the unified tree (0::).
ct_cgroup=$(in_ct cat "/proc/$a/cgroup" | grep -E '^[0-9]+:(name=systemd)?:' | paste -sd' ')
check "containers live outside the unit's cgroups ($ct_cgroup)" \
  eval '[[ $ct_cgroup == *stack/$project/$project-a-1*stack/$project/$project-a-1* &&
           $ct_cgroup != *stack.service* ]]'

# --- drift: a container's init killed from outside -------------------------------------------
in_ct sh -c "kill -KILL $a"
restarted() { [[ $(field "$project-a-1" state) == running && $(field "$project-a-1" pid) != "$a" ]]; }
check "a container whose init is killed from outside is started again" wait_for 15 restarted
a=$(field "$project-a-1" pid)
check "... counted as a restart, its neighbour untouched" \
  test "$(field "$project-a-1" restarts)/$(field "$project-b-1" pid)" == "1/$b"
check "... and it works (stack exec)" in_ct stack exec -p "$project" a true

# --- watchdog pings ---------------------------------------------------------------------------
check "WatchdogUSec=2s reaches the daemon" test "$(prop WatchdogUSec)" == 2s
w1=$(prop WatchdogTimestampMonotonic)
pinged() { [[ $(prop WatchdogTimestampMonotonic) != "$w1" ]]; }
check "the daemon pings WATCHDOG=1 from its loop (WatchdogTimestamp moves)" wait_for 3 pinged
((SECONDS - main_start < 5)) && sleep $((5 - (SECONDS - main_start)))
check "alive after more than two watchdog periods (same MainPID, NRestarts=0)" \
  test "$(prop MainPID)/$(prop NRestarts)" == "$main/0"

# --- systemctl restart: containers untouched -----------------------------------------------
require "systemctl restart stack" in_ct systemctl restart stack
new_main=$(prop MainPID)
check "a new daemon (MainPID $main -> $new_main)" test "$new_main" != "$main"
check "containers untouched: same PIDs, same restart counts" \
  test "$(field "$project-a-1" pid)/$(field "$project-b-1" pid)/$(field "$project-a-1" restarts)/$(field "$project-b-1" restarts)" \
  == "$a/$b/1/0"
check "STATUS= says both were re-adopted" \
  test "$(prop StatusText)" == "running, 2 container(s) adopted"
check "systemctl status shows it" eval \
  'in_ct systemctl status --no-pager stack | grep -qF "Status: \"running, 2 container(s) adopted\""'
check "systemd counts no container as the unit's (no left-over process)" eval \
  '! in_ct journalctl -b -u stack --no-pager | grep -E "left-over process|remains running|compat systemd cgroup"'

# --- watchdog timeout: a stuck loop is killed and restarted --------------------------------------
main=$new_main
in_ct sh -c "kill -STOP $main"
replaced() { [[ $(prop MainPID) != "$main" && $(prop MainPID) != 0 && $(prop ActiveState) == active ]]; }
# WatchdogSec 2 s + TimeoutAbortSec 2 s + RestartSec 1 s, and margin.
check "a daemon that stops pinging is killed and restarted by systemd" wait_for 15 replaced
# journald may write the line a moment after systemd acted on it.
check "... for a watchdog timeout (journal)" wait_for 5 eval \
  'in_ct journalctl -b -u stack --no-pager | grep -q "Watchdog timeout"'
check "... and the containers are still the same" \
  test "$(field "$project-a-1" pid)/$(field "$project-b-1" pid)" == "$a/$b"

# --- systemctl stop: containers keep running --------------------------------------------------
require "systemctl stop stack" in_ct systemctl stop stack
check "stopping the daemon leaves the containers running" \
  in_ct sh -c "test \"\$(cat /proc/$a/comm)\" = stack-init && test \"\$(cat /proc/$b/comm)\" = stack-init"
require "systemctl start stack" in_ct systemctl start stack
check "... and the next daemon re-adopts them" \
  test "$(prop StatusText)" == "running, 2 container(s) adopted"

# --- removing the file takes the project down, and nothing of it stays -------------------------
rm "$root/etc/stack/stacks.d/$project.yaml"
gone() { [[ $(in_ct stack ps -a -p "$project" --format json 2>/dev/null) == "[]" ]]; }
check "removing the file from stacks.d takes the project down" wait_for 20 gone
check "... and its cgroups are removed" \
  in_ct sh -c "! ls -d /sys/fs/cgroup/*/stack/$project 2>/dev/null | grep -q ."

((failed == 0))
