# The tools the harness compares and the fixtures they share: one BusyBox root filesystem (the
# same bytes for every tool: an image in stack's store, an OCI bundle for crun and runc, an
# imported image for podman and docker), a runner per mount-namespace flavour, and for each
# tool how to run a one-off container, bring a project up and down, and find the processes
# it adds on the host. A tool that cannot run here says why (Unavailable), once, and is then
# left out of every case with that reason printed: never dropped silently.

import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = "localhost/stack-bench-busybox:latest"


class Unavailable(Exception):
    """The tool cannot run this case here; the message says why."""


class Failed(Exception):
    """A counted run failed: the case stops for this tool with the message."""


def sh(argv, check=True, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and p.returncode != 0:
        tail = " / ".join(p.stderr.strip().splitlines()[-3:])
        raise Failed(f"{' '.join(argv[:4])}: exit {p.returncode}: {tail}")
    return p


class Runner:
    """A runner.py process; `private_cgroup2` starts it in a mount namespace where the hybrid
    layout's cgroup2 tree is hidden under a tmpfs: crun and runc refuse this host's hybrid
    layout otherwise (the engine uses the v1 hierarchies, as stack does); nothing they make
    under that tmpfs reaches the host.
    crun still makes a directory per container there and writes its pid to cgroup.procs: on a
    tmpfs that is a regular file of one page, so the directory cannot be removed (rmdir:
    ENOTEMPTY) and every container podman ever ran keeps 4 KiB. A 1 MiB tmpfs was full after
    256 containers (in the middle of up-100) and every later crun failed with "writing
    cgroup.procs: No space left on device": hence room for 16384, and clear_cgroup2()."""

    HIDDEN = "/sys/fs/cgroup/unified"

    def __init__(self, private_cgroup2=False):
        argv = [sys.executable, os.path.join(HERE, "runner.py")]
        if private_cgroup2:
            hide = (f"if mountpoint -q {self.HIDDEN}; then umount -l {self.HIDDEN}"
                    f" && mount -t tmpfs -o size=64m stack-bench {self.HIDDEN}; fi; "
                    'exec "$@"')
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "-"] + argv
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, argv, cwd, env, timeout, capture):
        self.p.stdin.write(json.dumps({"argv": argv, "cwd": cwd, "env": env,
                                       "timeout": timeout, "capture": capture}) + "\n")
        self.p.stdin.flush()
        answer = json.loads(self.p.stdout.readline())
        if answer["rc"] != 0:
            raise Failed(f"{' '.join(argv[:3])}: exit {answer['rc']}: {answer['err']}")
        return answer

    def time_ms(self, argv, cwd=None, env=None, timeout=600):
        return self._ask(argv, cwd, env, timeout, False)["ns"] / 1e6

    def output(self, argv, cwd=None, env=None, timeout=600):
        """ARGV's standard output (not a timed run)."""
        return self._ask(argv, cwd, env, timeout, True)["out"]

    def clear_cgroup2(self):
        """Empty the tmpfs that hides cgroup2 in this runner's namespace (only if it is that
        tmpfs: never the host's cgroup2), when no container of a tool of this runner runs."""
        script = (f'[ "$(stat -f -c %T {self.HIDDEN})" = tmpfs ] || exit 0; '
                  f"find {self.HIDDEN} -mindepth 1 -delete")
        self.output(["sh", "-c", script])

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class Fixtures:
    def __init__(self, source, build, work):
        self.source, self.build, self.work = source, build, work
        self.rootfs = os.path.join(work, "bundle", "rootfs")
        self.tar = os.path.join(work, "rootfs.tar")
        sh([os.path.join(source, "scripts/make-busybox-rootfs.sh"), self.rootfs])
        sh(["tar", "-C", self.rootfs, "-cf", self.tar, "."])
        self.host = Runner()
        self._private = None

    @property
    def private(self):
        if self._private is None:
            self._private = Runner(private_cgroup2=True)
        return self._private

    def close(self):
        self.host.close()
        if self._private:
            self._private.close()


def sleepers(n, image, marker="3600", network=None):
    """A compose file of N BusyBox sleepers; MARKER is the sleep's argument, so that the
    service's process can be found on the host by its command line."""
    lines = ["services:"]
    for i in range(1, n + 1):
        lines += [f"  s{i}:", f"    image: {image}", f'    command: ["sleep", "{marker}"]']
        if network:
            lines.append(f"    network_mode: {network}")
    return "\n".join(lines) + "\n"


def pids_by_cmdline(argv_prefix):
    """Host PIDs whose command line starts with ARGV_PREFIX (a list of strings)."""
    want = "\0".join(argv_prefix)
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith(want):
            out.append(int(d))
    return out


def memory_kib(pid):
    """(RSS, PSS) of PID in KiB from smaps_rollup."""
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.002)
    raise Failed(f"timed out waiting for {what}")


class Stack:
    name = "stack"
    compose = True

    def __init__(self, fx):
        self.fx = fx
        self.argv = [os.path.join(fx.build, "stack"), "--root", os.path.join(fx.work, "stack-root"),
                     "--run-root", os.path.join(fx.work, "stack-run")]
        sh(self.argv + ["image", "import", "busybox:latest", fx.rootfs])
        self.image = "busybox:latest"
        verbs = sh(self.argv + ["--help"]).stdout
        self.run_verb = "\n  run " in verbs

    def cmd(self, *args):
        return self.argv + list(args)

    def up(self, project, directory):
        return self.cmd("-p", project, "up", "-d")

    def down(self, project, directory):
        return self.cmd("-p", project, "down", "-t", "0", "-v")

    def container_pids(self, project, directory):
        """The pid of each container's first process as the host sees it (the init)."""
        out = sh(self.cmd("-p", project, "ps", "--format", "json"), cwd=directory).stdout
        return [c["pid"] for c in json.loads(out) if c.get("pid")]

    def overhead_pids(self, project, directory):
        # Every host process stack adds per container is the container's init: no monitor.
        return self.container_pids(project, directory)

    def daemon_pids(self):
        run_root = self.argv[self.argv.index("--run-root") + 1]
        return [p for p in _pids_with_arg(run_root) if _comm(p) == "stackd"]

    def close(self):
        sh(self.cmd("daemon", "stop"), check=False)


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _pids_with_arg(arg):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if arg.encode() in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
    return out


class Oci:
    """crun, runc or stack-runtime (BINARY: the build's) on an OCI bundle of the same root
    filesystem."""
    compose = False
    private = True  # in the runner that hides the hybrid layout's cgroup2 tree

    def __init__(self, fx, name, binary=None):
        self.binary = binary or name
        if not shutil.which(self.binary):
            raise Unavailable(f"{name} is not installed")
        self.fx, self.name = fx, name
        self.bundle = os.path.dirname(fx.rootfs)
        cfg = os.path.join(self.bundle, "config.json")
        if not os.path.exists(cfg):
            # crun's default spec when crun is here (runc's otherwise): the same for both tools.
            spec = shutil.which("crun") or shutil.which("runc")
            if not spec:
                raise Unavailable("no crun or runc to write the bundle's config.json")
            sh([spec, "spec"], cwd=self.bundle)
            with open(cfg) as f:
                c = json.load(f)
            c["process"]["terminal"] = False
            c["process"]["args"] = ["/bin/true"]
            c["root"]["readonly"] = False
            with open(cfg, "w") as f:
                json.dump(c, f, indent=2)
        self.seq = 0
        self.root = os.path.join(fx.work, f"{name}-state")

    def one_shot(self):
        self.seq += 1
        return [self.binary, "--root", self.root, "run", "--bundle", self.bundle,
                f"stack-bench-{os.getpid()}-{self.seq}"]

    def close(self):
        pass


class Unshare:
    """The floor: the same namespaces made by unshare(1), chroot into the root, /bin/true."""
    name = "unshare"
    compose = False

    def __init__(self, fx):
        self.fx = fx

    def one_shot(self):
        return ["unshare", "--mount", "--uts", "--ipc", "--pid", "--net", "--fork",
                "chroot", self.fx.rootfs, "/bin/true"]

    def close(self):
        pass
