# shellcheck shell=bash disable=SC2154  # project, ct_stack, repo: set by the sourcing script
# Sourced by the systemd tests: a Debian machine booted with systemd-nspawn over the cached
# rootfs (rootfs.sh), on a tmpfs, in cgroups of its own; the PASS/FAIL helpers; and the EXIT
# trap that takes its containers down through stack, powers it off and removes everything it
# made (machine, cgroups, tmpfs, temp dir), pass or fail.
# The sourcing script sets: project (the stack project it runs), ct_stack (path of `stack` in
# the machine); then calls machine_init NAME, machine_unpack TARBALL, machine_boot NSPAWN_ARGS.

t0=${t0:-$SECONDS}
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

nspawn_pid='' pid1='' tmp='' root='' name=''
cg_dirs=()

# machine_init NAME: the machine's name, temp dir and cgroup paths; installs the EXIT trap.
machine_init() {
  name=$1-$$
  tmp=$(mktemp -d "/var/tmp/$1.XXXXXX")
  root=$tmp/root
  # The machine runs in cgroups of its own, below ours in every hierarchy, so that nspawn's
  # payload/ and supervisor/ cgroups and stack's cgroups made inside land there, concurrent
  # runs do not share them, and cleanup is one tree per hierarchy.
  local cg_name h _ ctrls path
  cg_name=$(basename "$tmp")
  while IFS=: read -r _ ctrls path; do
    case $ctrls in
      '') [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] && h=/sys/fs/cgroup || h=/sys/fs/cgroup/unified ;;
      name=*) h=/sys/fs/cgroup/${ctrls#name=} ;;
      *) h=/sys/fs/cgroup/$ctrls ;;
    esac
    [[ -d $h ]] && cg_dirs+=("$h${path%/}/$cg_name")
  done </proc/self/cgroup
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

# Runs a command inside the machine: all its namespaces, a clean environment.
in_ct() {
  nsenter -t "$pid1" -a /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
prop() { in_ct systemctl show -p "$1" --value stack; }
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
      timeout 30 nsenter -t "$pid1" -a "$ct_stack" down -p "$project" -t 0 >/dev/null 2>&1
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
  if [[ -n $tmp ]]; then
    while read -r mp; do umount -l "$mp" 2>/dev/null; done < \
      <(awk -v t="$tmp" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    rm -rf --one-file-system "$tmp" 2>/dev/null
    [[ -e $tmp ]] && left+=("directory $tmp")
  fi
  if ((${#left[@]})); then
    printf 'FAIL: cleanup: %s\n' "${left[@]}"
    ((rc == 0)) && rc=1
  else
    echo "cleanup: machine gone, cgroups and $tmp removed"
  fi
  echo "$(basename "$0" .sh): $passed passed, $failed failed, $((SECONDS - t0)) s"
  exit "$rc"
}

# machine_unpack TARBALL: the rootfs on a tmpfs (unpacking and removing 240 MB on a busy disk
# takes longer than a whole test), and a busybox image tree at $tmp/busybox.
machine_unpack() {
  mount -t tmpfs -o size=2g,mode=0755 stack-systemd-test "$tmp" || { echo "FAIL: mount tmpfs"; exit 1; }
  mkdir "$root" && tar -C "$root" --numeric-owner --zstd -xf "$1" ||
    { echo "FAIL: unpack $1"; exit 1; }
  "$repo/scripts/make-busybox-rootfs.sh" "$tmp/busybox" || { echo "FAIL: busybox rootfs"; exit 1; }
  mkdir -p "$root/opt/busybox"
}

booted() {
  [[ -z $pid1 ]] && pid1=$(pgrep -P "$nspawn_pid" | head -1)
  [[ -n $pid1 && $(cat "/proc/$pid1/comm" 2>/dev/null) == systemd ]] || return 1
  local s
  s=$(in_ct timeout 20 systemctl is-system-running --wait 2>/dev/null)
  [[ $s == running || $s == degraded ]]
}

# machine_boot NSPAWN_ARGS...: boots it (busybox at /opt/busybox) and waits for systemd.
machine_boot() {
  local d
  for d in "${cg_dirs[@]}"; do mkdir -p "$d"; done
  (
    for d in "${cg_dirs[@]}"; do
      # A hierarchy that takes no task without setup (cpuset) keeps us in the parent.
      echo "$BASHPID" >"$d/cgroup.procs" 2>/dev/null || rmdir "$d"
    done
    # --register=no --keep-unit: there is no machined and no systemd on the host.
    # --private-network: nothing stack does in there can reach the host's interfaces.
    exec systemd-nspawn -q -D "$root" -M "$name" --register=no --keep-unit --private-network \
      --console=read-only -b --bind-ro="$tmp/busybox:/opt/busybox" "$@"
  ) </dev/null >"$tmp/console.log" 2>&1 &
  nspawn_pid=$!
  local boot_start=$SECONDS
  if ! wait_for 30 booted; then
    kill -0 "$nspawn_pid" 2>/dev/null || cat "$tmp/console.log"
    require "systemd boots in the machine" false
  fi
  pass "systemd boots in the machine ($(in_ct systemctl is-system-running), $((SECONDS - boot_start)) s)"
}

# The v1 controller hierarchies nspawn mounted read-only (it delegates only name=systemd and
# the unified tree), one per line; empty when none.
ro_cgroup_mounts() {
  awk '{ split($0, a, " - "); split(a[2], b, " ") }
    b[1] == "cgroup" && $6 ~ /(^|,)ro(,|$)/ { print $5 }' "/proc/$pid1/mountinfo"
}
# Makes the hierarchies stack uses writable in the machine's mount namespace. The machine keeps
# its cgroup namespace, so stack's cgroups land below this test's own cgroup on the host,
# where cleanup removes them.
machine_cgroups_rw() {
  local mp
  for mp in $(ro_cgroup_mounts); do
    case ${mp##*/} in memory | cpu | cpuacct | pids | freezer | devices) ;; *) continue ;; esac
    nsenter -t "$pid1" -m mount -o remount,bind,rw "$mp" || fail "remount $mp read-write"
  done
}
