# The peers stack is measured against: podman and docker (one-off containers, projects through
# podman-compose and docker-compose, the processes they add per container). Docker runs on a
# dockerd the harness starts under the bench's work directory with --iptables=false, so it never
# rewrites the host's forwarding rules, and stops (with its bridge) when the harness ends. Each
# peer checks that it can run a container here before any case, and says why not otherwise.

import os
import shutil
import signal
import subprocess
import time

from tools import IMAGE, Failed, Unavailable, pids_by_cmdline, sh, _comm


NETAVARK = "/usr/lib/podman/netavark"
AARDVARK = "/usr/lib/podman/aardvark-dns"


def _first_line(err):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "no message"


class Podman:
    name = "podman"
    compose_tool = "podman-compose"
    settings = {"storage": "its own graph root and run root under the bench's work directory",
                "default_ulimits": "[] (the caller's limits, as stack's containers keep)",
                "cgroup2": "hidden under a 64 MiB tmpfs in a private mount namespace (crun "
                           "refuses the hybrid layout), emptied after each size from 100"}
    # crun (podman's runtime) refuses the hybrid cgroup layout while cgroup2 is mounted: podman
    # runs in the runner that hides it, as crun does.
    private = True

    def __init__(self, fx):
        if not shutil.which("podman"):
            raise Unavailable("podman is not installed")
        self.fx = fx
        # Podman's default ulimits raise RLIMIT_NOFILE and RLIMIT_NPROC, which needs
        # CAP_SYS_RESOURCE: where the machine's bounding set lacks it, crun fails with EPERM.
        # The containers keep the caller's limits instead, as stack's do.
        # Its own storage, run root and network configurations under the bench's work
        # directory (nothing of the host's podman is used or left), and netavark with
        # aardvark-dns, podman's own DNS (CNI, the host's default here, has none: the
        # containers would get the host's resolver).
        self.dir = os.path.join(fx.work, "podman")
        storage = os.path.join(self.dir, "storage.conf")
        os.makedirs(self.dir, exist_ok=True)
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{self.dir}/root"\n'
                    f'runroot = "{self.dir}/run"\n')
        conf = os.path.join(self.dir, "containers.conf")
        with open(conf, "w") as f:
            f.write("[containers]\ndefault_ulimits = []\n")
            if os.path.exists(NETAVARK):
                f.write(f'[network]\nnetwork_backend = "netavark"\n'
                        f'network_config_dir = "{self.dir}/networks"\n')
            else:
                f.write(f'[network]\nnetwork_config_dir = "{self.dir}/cni"\n')
        self.env = {"CONTAINERS_CONF": conf, "CONTAINERS_STORAGE_CONF": storage}
        # Why the DNS case cannot measure podman here, if it cannot.
        self.no_dns = None if os.path.exists(NETAVARK) and os.path.exists(AARDVARK) else (
            "no aardvark-dns: podman's CNI backend has no DNS server (install netavark and "
            "aardvark-dns)")
        # The container cgroups podman (crun, cgroupfs manager) had made before the bench: a
        # reset removes only those made since, and only when empty.
        self.cgroups_before = _libpod_cgroups()
        sh(["podman", "import", fx.tar, IMAGE], env={**os.environ, **self.env})
        self.image = IMAGE
        try:
            fx.private.time_ms(["podman", "run", "--rm", "--network", "none", IMAGE, "/bin/true"],
                               env=self.env)
        except Failed as e:
            raise Unavailable(f"podman run fails here: {e}")

    def one_shot(self, net=False):
        return ["podman", "run", "--rm"] + ([] if net else ["--network", "none"]) + [
            IMAGE, "/bin/true"]

    def compose_argv(self, project, directory):
        if not shutil.which("podman-compose"):
            raise Unavailable("podman-compose is not installed")
        return ["podman-compose", "-p", project, "-f", os.path.join(directory, "stack.yaml")]

    def up(self, project, directory):
        return self.compose_argv(project, directory) + ["up", "-d"]

    def down(self, project, directory):
        return self.compose_argv(project, directory) + ["down", "-v", "-t", "0"]

    def _inspect(self, project, field):
        # In the runner's mount namespace, where podman's /run/netns mounts are.
        ask = lambda argv: self.fx.private.output(argv, env=self.env)
        ids = ask(["podman", "ps", "-q", "--filter",
                   f"label=io.podman.compose.project={project}"]).split()
        if not ids:
            return []
        out = ask(["podman", "inspect", "-f", "{{" + field + "}}"] + ids).split()
        return [int(x) for x in out if x.isdigit() and x != "0"]

    def container_pids(self, project, directory):
        return self._inspect(project, ".State.Pid")

    def overhead_pids(self, project, directory):
        return self._inspect(project, ".State.ConmonPid")  # conmon: one per container

    def daemon_pids(self):
        return []  # daemonless

    @staticmethod
    def compose_env(n):
        return {}

    def _podman(self, *argvs):
        # In the runner's mount namespace, where the containers' mounts and netns files are.
        for argv in argvs:
            try:
                self.fx.private.output(argv, env=self.env)
            except Failed:
                pass

    def reset(self):
        """After a big size: no container, pod or network of the bench's podman left, the
        cgroups of the containers that failed half-way removed (crun leaves them in every v1
        hierarchy) and the tmpfs hiding cgroup2 emptied, so that nothing after a size where
        podman failed is poisoned by it. Returns why podman still cannot run, or None."""
        self._podman(["podman", "rm", "-a", "-f", "-t", "0"], ["podman", "pod", "rm", "-a", "-f"],
                     ["podman", "network", "prune", "-f"])
        _remove_libpod_cgroups(self.cgroups_before)
        try:
            self.fx.private.clear_cgroup2()
            self.fx.private.time_ms(["podman", "run", "--rm", "--network", "none", IMAGE,
                                     "/bin/true"], env=self.env)
        except Failed as e:
            return f"podman run fails after the reset: {e}"
        return None

    def close(self):
        self._podman(["podman", "rm", "-a", "-f", "-t", "0"], ["podman", "pod", "rm", "-a", "-f"],
                     ["podman", "network", "prune", "-f"], ["podman", "rmi", "-a", "-f"])
        _remove_libpod_cgroups(self.cgroups_before)
        # aardvark-dns outlives its last container by design: stop ours.
        pidfile = os.path.join(self.dir, "run", "networks", "aardvark-dns", "aardvark.pid")
        try:
            with open(pidfile) as f:
                os.kill(int(f.read().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        for d in ("run", "root"):
            sh(["umount", "-R", "-l", os.path.join(self.dir, d)], check=False)


LIBPOD_PARENT = "libpod_parent"  # podman's cgroup parent with the cgroupfs manager


def _libpod_cgroups():
    """{(hierarchy, name)} of the libpod-<container id> cgroups in the v1 hierarchies."""
    out = set()
    root = "/sys/fs/cgroup"
    for h in os.listdir(root) if os.path.isdir(root) else []:
        parent = os.path.join(root, h, LIBPOD_PARENT)
        if os.path.isdir(parent):
            out |= {(h, d) for d in os.listdir(parent) if d.startswith("libpod-")}
    return out


def _remove_libpod_cgroups(before):
    """rmdir the libpod-* cgroups made since BEFORE: a cgroup with a process in it refuses
    (EBUSY), so a running container of anyone else's is never touched."""
    for h, d in sorted(_libpod_cgroups() - before):
        try:
            os.rmdir(os.path.join("/sys/fs/cgroup", h, LIBPOD_PARENT, d))
        except OSError:
            pass


class Docker:
    name = "docker"
    compose_tool = "docker-compose"
    # docker-compose 1.29 runs each service's convergence in a thread holding a slot of one
    # global semaphore (COMPOSE_PARALLEL_LIMIT, default 64) while the container it creates
    # waits for a second slot: with 64 services or more, once every slot is held by a service
    # none of their containers can start and `up` hangs for good (docker/compose#5864, #7486;
    # here 27 to 57 of 100 containers were created, then nothing, with dockerd idle). From
    # 64 services the bench gives it one slot per service plus its default 64 for the
    # containers (64 container operations at once, as it does below 32 services), and a
    # 600 s HTTP time-out instead of 60 (a loaded 2-core dockerd answered 200 creations late).
    DEFAULT_PARALLEL_LIMIT = 64
    settings = {"dockerd": "its own data root, exec root and bridge, --iptables=false",
                "COMPOSE_PARALLEL_LIMIT": "services + 64 from 64 services (its default, 64, "
                                          "deadlocks there: docker/compose#5864)",
                "COMPOSE_HTTP_TIMEOUT": "600 from 64 services (default 60)"}

    def __init__(self, fx):
        if not shutil.which("dockerd"):
            raise Unavailable("dockerd is not installed (docker.io)")
        self.fx = fx
        self.dir = os.path.join(fx.work, "docker")
        os.makedirs(self.dir, exist_ok=True)
        sock = os.path.join(self.dir, "docker.sock")
        self.env = {"DOCKER_HOST": f"unix://{sock}"}
        self.log = open(os.path.join(self.dir, "dockerd.log"), "w")
        # Its own data, exec root, socket and bridge; --iptables=false: the host's firewall
        # stays as it was (container-to-container traffic stays on the bridge).
        self.bridge = "stkbench-dkr0"
        sh(["ip", "link", "add", self.bridge, "type", "bridge"], check=False)
        sh(["ip", "addr", "add", "10.251.0.1/24", "dev", self.bridge], check=False)
        sh(["ip", "link", "set", self.bridge, "up"], check=False)
        self.daemon = subprocess.Popen(
            ["dockerd", "--data-root", os.path.join(self.dir, "data"), "--exec-root",
             os.path.join(self.dir, "exec"), "--pidfile", os.path.join(self.dir, "dockerd.pid"),
             "-H", self.env["DOCKER_HOST"], "--iptables=false", "--ip6tables=false",
             "--bridge", self.bridge, "--userland-proxy=false"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while self._docker(["info"], check=False).returncode != 0:
                if self.daemon.poll() is not None or time.monotonic() > deadline:
                    raise Unavailable(f"dockerd did not start (see {self.log.name})")
                time.sleep(0.1)
            self._docker(["import", fx.tar, IMAGE])
            p = self._docker(["run", "--rm", "--network", "none", IMAGE, "/bin/true"],
                             check=False)
            if p.returncode != 0:
                raise Unavailable(f"docker run fails here: {_first_line(p.stderr)}")
        except Exception:
            self.close()
            raise
        self.image = IMAGE

    def _docker(self, args, check=True):
        return sh(["docker"] + args, check=check, env={**os.environ, **self.env})

    def one_shot(self, net=False):
        return ["docker", "run", "--rm"] + ([] if net else ["--network", "none"]) + [
            IMAGE, "/bin/true"]

    def compose_argv(self, project, directory):
        if not shutil.which("docker-compose"):
            raise Unavailable("docker-compose is not installed")
        return ["docker-compose", "-p", project, "-f", os.path.join(directory, "stack.yaml")]

    def up(self, project, directory):
        return self.compose_argv(project, directory) + ["up", "-d"]

    def down(self, project, directory):
        return self.compose_argv(project, directory) + ["down", "-v", "-t", "0"]

    @classmethod
    def compose_env(cls, n):
        """The environment of docker-compose for a project of N services."""
        if n < cls.DEFAULT_PARALLEL_LIMIT:
            return {}
        return {"COMPOSE_PARALLEL_LIMIT": str(n + cls.DEFAULT_PARALLEL_LIMIT),
                "COMPOSE_HTTP_TIMEOUT": "600"}

    def _ids(self, project):
        return self._docker(["ps", "-q", "--filter",
                             f"label=com.docker.compose.project={project}"]).stdout.split()

    def container_pids(self, project, directory):
        ids = self._ids(project)
        if not ids:
            return []
        out = self._docker(["inspect", "-f", "{{.State.Pid}}"] + ids).stdout.split()
        return [int(x) for x in out if x.isdigit() and x != "0"]

    def overhead_pids(self, project, directory):
        # One containerd shim per container: the parent of each container's first process.
        out = []
        for pid in self.container_pids(project, directory):
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if _comm(ppid).startswith("containerd-shim"):
                out.append(ppid)
        return out

    def daemon_pids(self):
        pids = [self.daemon.pid] if self.daemon.poll() is None else []
        return pids + [p for p in pids_by_cmdline(["containerd"]) if _comm(p) == "containerd"]

    def close(self):
        if self.daemon.poll() is None:
            os.killpg(self.daemon.pid, signal.SIGTERM)
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait()
        self.log.close()
        sh(["ip", "link", "del", self.bridge], check=False)
        sh(["umount", "-R", "-l", os.path.join(self.dir, "exec")], check=False)
        sh(["umount", "-R", "-l", os.path.join(self.dir, "data")], check=False)
