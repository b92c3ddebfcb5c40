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

    def close(self):
        # In the runner's mount namespace, where the containers' mounts and netns files are.
        for argv in (["podman", "rm", "-a", "-f", "-t", "0"], ["podman", "network", "prune", "-f"],
                     ["podman", "rmi", "-a", "-f"]):
            try:
                self.fx.private.output(argv, env=self.env)
            except Failed:
                pass
        # aardvark-dns outlives its last container by design: stop ours.
        pidfile = os.path.join(self.dir, "run", "networks", "aardvark-dns", "aardvark.pid")
        try:
            with open(pidfile) as f:
                os.kill(int(f.read().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        for d in ("run", "root"):
            sh(["umount", "-R", "-l", os.path.join(self.dir, d)], check=False)


class Docker:
    name = "docker"
    compose_tool = "docker-compose"

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
