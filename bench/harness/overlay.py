# 5c. TCP throughput between two containers on a stack overlay (VXLAN) network that spans two
# simulated hosts: two network namespaces joined by a veth underlay, each with a stack daemon
# of its own (--root/--run-root), as tests/e2e/network_test.cpp's overlay test sets them up.
# The floor (tool "unshare") is a bare kernel VXLAN link between the same two namespaces (no
# bridge, no container veth). Everything it makes is in those namespaces or under the bench's
# work directory, and is removed pass or fail. Peers: Docker's overlay needs swarm mode and
# podman has no multi-host driver; they are reported as not measured, with that reason.

import json
import os
import subprocess

from cases import _iperf, _netns_ipv4, interleave
from tools import Failed, sh, wait_for

UNDERLAY = ("192.168.78.1", "192.168.78.2")
PEERS = {"docker-compose": "Docker's overlay driver needs swarm mode, which the bench does not set up",
         "podman-compose": "podman has no multi-host overlay network driver"}


def _file(service, local, peer, ip_range, image):
    return (f"name: bovl\nservices:\n  {service}:\n    image: {image}\n"
            f'    command: [sleep, "3600"]\n    networks: [ov]\n'
            f"networks:\n  ov:\n    driver: overlay\n"
            f'    driver_opts: {{vni: "4243", local: {local}, peers: {peer}}}\n'
            f"    ipam: {{config: [{{subnet: 10.204.0.0/24, gateway: 10.204.0.1, "
            f"ip_range: {ip_range}}}]}}\n")


class _Host:
    """One simulated host: a network namespace with a stack daemon of its own."""

    def __init__(self, ctx, ns, index):
        self.ns, self.dir = ns, os.path.join(ctx.fx.work, f"overlay-h{index}")
        os.makedirs(self.dir, exist_ok=True)
        self.run_root = run_root = os.path.join(self.dir, "run")
        self.argv = [os.path.join(ctx.fx.build, "stack"), "--root", os.path.join(self.dir, "root"),
                     "--run-root", run_root]
        self.up, self.daemon = False, None
        self.log = open(os.path.join(self.dir, "daemon.log"), "w")

    def start(self, rootfs):
        self.daemon = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.ns}"] + self.argv +
                                       ["daemon"], stdout=self.log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        sock = os.path.join(self.run_root, "stack.sock")
        wait_for(lambda: os.path.exists(sock) or self.daemon.poll() is not None, 30,
                 f"the daemon of {self.ns}")
        if self.daemon.poll() is not None:
            raise Failed(f"the daemon in {self.ns} exited (see {self.log.name})")
        sh(self.argv + ["image", "import", "busybox:latest", rootfs])

    def stack(self, *args):
        return sh(self.argv + ["-p", "bovl"] + list(args), cwd=self.dir)

    def bring_up(self, text):
        with open(os.path.join(self.dir, "stack.yaml"), "w") as f:
            f.write(text)
        self.up = True
        self.stack("up", "-d")
        pids = [c["pid"] for c in json.loads(self.stack("ps", "--format", "json").stdout)
                if c.get("pid")]
        if len(pids) != 1:
            raise Failed(f"{len(pids)} of 1 container running in {self.ns}")
        return pids[0]

    def close(self):
        if not self.daemon:
            self.log.close()
            return
        if self.up:
            sh(self.argv + ["-p", "bovl", "down", "-t", "0", "-v"], cwd=self.dir, check=False)
        sh(self.argv + ["daemon", "stop"], check=False)
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        self.log.close()


def _holder(ns):
    """A process in NS, so that iperf3 can be nsenter'ed into it by pid."""
    return subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "3600"])


def throughput(ctx, runs, seconds):
    """({"stack": [Gbit/s], "unshare": [...]}, {tool: reason})."""
    tag = os.getpid() % 100000
    ns = (f"stkbh1-{tag}", f"stkbh2-{tag}")
    under = (f"stkbu1-{tag}", f"stkbu2-{tag}")
    hosts, holders, made = [], [], []
    try:
        for n in ns:
            sh(["ip", "netns", "add", n])
            made.append(n)
        sh(["ip", "link", "add", under[0], "type", "veth", "peer", "name", under[1]])
        for i in (0, 1):
            sh(["ip", "link", "set", under[i], "netns", ns[i]])
            sh(["ip", "-n", ns[i], "addr", "add", f"{UNDERLAY[i]}/24", "dev", under[i]])
            sh(["ip", "-n", ns[i], "link", "set", under[i], "up"])
            sh(["ip", "-n", ns[i], "link", "set", "lo", "up"])
        hosts = [_Host(ctx, ns[0], 1), _Host(ctx, ns[1], 2)]
        for h in hosts:
            h.start(ctx.fx.rootfs)
        image = "busybox:latest"
        a = hosts[0].bring_up(_file("a", UNDERLAY[0], UNDERLAY[1], "10.204.0.0/25", image))
        b = hosts[1].bring_up(_file("b", UNDERLAY[1], UNDERLAY[0], "10.204.0.128/25", image))
        address = _netns_ipv4(a)
        # The floor: a VXLAN link of the kernel's own between the two namespaces (another VNI
        # and UDP port than stack's), addressed directly.
        for i in (0, 1):
            dev = f"stkbx{i + 1}-{tag}"
            sh(["ip", "-n", ns[i], "link", "add", dev, "type", "vxlan", "id", "4244", "local",
                UNDERLAY[i], "remote", UNDERLAY[1 - i], "dstport", "4790"])
            sh(["ip", "-n", ns[i], "addr", "add", f"10.205.0.{i + 1}/24", "dev", dev])
            sh(["ip", "-n", ns[i], "link", "set", dev, "up"])
            holders.append(_holder(ns[i]))
        host = os.readlink("/proc/self/ns/net")
        wait_for(lambda: all(os.readlink(f"/proc/{h.pid}/ns/net") != host for h in holders), 5,
                 "the namespaces")
        # The first packets over a fresh VXLAN wait for ARP across the underlay: a warm-up
        # round each, not counted.
        return interleave(
            {"stack": lambda: _iperf(a, b, address, seconds),
             "unshare": lambda: _iperf(holders[0].pid, holders[1].pid, "10.205.0.1", seconds)},
            runs, 1, ctx.log)
    finally:
        for h in holders:
            h.kill()
            h.wait()
        for h in hosts:
            h.close()
        sh(["ip", "link", "del", under[0]], check=False)  # if it never reached its namespace
        for n in made:
            sh(["ip", "netns", "del", n], check=False)
