#!/usr/bin/env bash
# The CLI's start-up cost (run as root from the repository, after a build): `stack version`,
# and `stack ps` answered by a running daemon for a project with one running container, each
# against /bin/true in the same run. The three commands are interleaved round by round (so a
# busy neighbour slows all three alike) and each one's median of ROUNDS runs is printed, with
# the shared libraries the CLI maps. Everything runs under a private --root/--run-root and is
# removed at the end. Usage: bench/bench_cli.sh [ROUNDS]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-200}
stack=$PWD/build/stack
work=$(mktemp -d /tmp/stack-bench-cli-XXXXXX)
S=("$stack" --root "$work/root" --run-root "$work/run")
trap '(cd "$work/p" 2>/dev/null && "${S[@]}" down -t 0 >/dev/null 2>&1) || true;
      "${S[@]}" daemon stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

scripts/make-busybox-rootfs.sh "$work/rootfs" >/dev/null
"${S[@]}" image import busybox:latest "$work/rootfs" >/dev/null 2>&1
mkdir -p "$work/p"
printf 'name: benchcli\nservices:\n  s:\n    image: busybox\n    command: [sleep, "3600"]\n' \
  >"$work/p/stack.yaml"
(cd "$work/p" && "${S[@]}" up -d >/dev/null 2>&1)

# posix_spawn + waitpid from one process: the harness costs the same for each command, and
# /bin/true shows what it is.
cd "$work/p"
python3 - "$rounds" "${S[@]}" <<'EOF'
import os, sys, time
rounds, stack = int(sys.argv[1]), sys.argv[2:]
cmds = {"/bin/true": ["/bin/true"], "stack version": stack + ["version"],
        "stack ps": stack + ["ps"]}
null = os.open(os.devnull, os.O_WRONLY)
times = {k: [] for k in cmds}
for _ in range(rounds):
    for name, argv in cmds.items():
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
        _, status = os.waitpid(pid, 0)
        times[name].append(time.perf_counter_ns() - t0)
        if status != 0:
            sys.exit(f"{name} failed with status {status}")
for name, t in times.items():
    t.sort()
    print(f"{name:<14} median {t[len(t) // 2] / 1e6:6.2f} ms   (p10 {t[len(t) // 10] / 1e6:.2f}, "
          f"p90 {t[len(t) * 9 // 10] / 1e6:.2f}; {rounds} runs)")
EOF
# The shared objects the dynamic loader maps for it (vdso and the loader included), or none.
echo "ldd build/stack: $(ldd "$stack" | wc -l) line(s), $(ldd "$stack" | grep -c '=>\|^\s*/') shared" \
  "object(s) loaded$(ldd "$stack" | grep -q 'statically linked' && echo ' (statically linked)')"
