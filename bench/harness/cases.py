# The cases. Each one interleaves the tools run by run (round r runs every tool once, in an
# order that rotates), so drift on the machine hits them alike, after a warm-up that is not
# counted. A case returns {tool: [values]} and {tool: reason} for the tools that could not run
# it; the harness turns values into figures. Names and units are the results file's.

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time

import schedule
from tools import Failed, Unavailable, memory_kib, pids_by_cmdline, sh, sleepers, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def interleave(contenders, runs, warmup, progress):
    """contenders: {tool: once()}; once() returns one value or raises Failed/Unavailable.
    RUNS: counted runs for every tool, or {tool: runs} (a tool done with its runs sits out the
    remaining rounds)."""
    want = runs if isinstance(runs, dict) else {t: runs for t in contenders}
    total = max([want[t] for t in contenders], default=0)
    values = {t: [] for t in contenders}
    reasons = {}
    live = list(contenders)
    for r in range(-warmup, total):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        for tool in order:
            if tool in reasons or (r >= 0 and len(values[tool]) >= want[tool]):
                continue
            try:
                v = contenders[tool]()
            except (Failed, Unavailable) as e:
                reasons[tool] = str(e)
                continue
            if r >= 0:
                values[tool].append(v)
        progress(r + 1, total)
    return {t: v for t, v in values.items() if t not in reasons}, reasons


class Context:
    def __init__(self, fx, tools, runs, quick, log):
        self.fx, self.tools, self.runs, self.quick, self.log = fx, tools, runs, quick, log
        self.keep = {}  # extra data for plots (DNS latencies)

    def time(self, argv, cwd=None, env=None, private=False, timeout=600):
        runner = self.fx.private if private else self.fx.host
        return runner.time_ms(argv, cwd=cwd, env=env, timeout=timeout)

    def run(self, tool, argv, cwd=None, services=0):
        """ARGV of TOOL, timed, in the mount namespace and environment the tool needs; for a
        project of SERVICES services, with the tool's settings for that size and a time-out
        that grows with it (podman-compose takes ~1.5 s a service on a quiet machine)."""
        env = dict(getattr(tool, "env", None) or {})
        if services and hasattr(tool, "compose_env"):
            env.update(tool.compose_env(services))
        return self.time(argv, cwd=cwd, env=env or None, private=getattr(tool, "private", False),
                         timeout=max(600, 6 * services))


# 1. A container running /bin/true, from nothing to exited and cleaned up.
def container_start(ctx, net):
    c = {}
    stack = ctx.tools.get("stack")
    if stack and not net:
        engine = os.path.join(ctx.fx.build, "bench", "bench_start")
        c["stack"] = lambda: ctx.time([engine, "--once", ctx.fx.rootfs])
    if stack and net:
        if not stack.run_verb:
            return {}, {"stack": "this build has no `stack run`"}
        d = project_dir(ctx, "stack", "bstartnet", sleepers(1, stack.image))
        sh(stack.up("bstartnet", d), cwd=d)
        c["stack"] = lambda: ctx.time(stack.cmd("-p", "bstartnet", "run", "--rm", "-T", "s1",
                                                "/bin/true"), cwd=d)
    for name in ("crun", "runc", "stack-runtime"):
        if name in ctx.tools and not net:
            t = ctx.tools[name]
            c[name] = (lambda t=t: ctx.run(t, t.one_shot()))
    for name in ("podman", "docker"):
        if name in ctx.tools:
            t = ctx.tools[name]
            c[name] = (lambda t=t: ctx.run(t, t.one_shot(net=net)))
    # podman with stack-runtime as its OCI runtime, beside its default (crun).
    runtime = os.path.join(ctx.fx.build, "stack-runtime")
    if "podman" in ctx.tools and os.access(runtime, os.X_OK):
        t = ctx.tools["podman"]
        c["podman-stack-runtime"] = (
            lambda t=t: ctx.run(t, ["podman", "--runtime", runtime] + t.one_shot(net=net)[1:]))
    if "unshare" in ctx.tools and not net:
        c["unshare"] = lambda: ctx.time(ctx.tools["unshare"].one_shot())
    try:
        return interleave(c, ctx.runs, 2, ctx.log)
    finally:
        if stack and net:
            sh(stack.down("bstartnet", d), cwd=d, check=False)


def _compose_tools(ctx):
    """(label, tool) for every tool that brings up a compose file: stack itself, podman through
    podman-compose and docker through docker-compose (labelled by the compose tool)."""
    out = []
    for name, t in ctx.tools.items():
        if name == "stack":
            out.append(("stack", t))
        elif hasattr(t, "compose_tool"):
            out.append((t.compose_tool, t))
    return out


# 2. up -d of N services to all running, the no-op up after it (stack at every size, the peers
# up to schedule.PEER_NOOP_MAX services), and down. With MEMORY, the first counted round also
# measures the memory of the N running containers (case 3 at that size).
def up_down(ctx, n, runs, warmup=1, memory=False):
    ups, noops, downs, mem = {}, {}, {}, ({}, {}, {}, {})
    reasons, want, down_failed = {}, {}, {}
    for label, t in _compose_tools(ctx):
        project = f"bup{n}"
        d = project_dir(ctx, label, project, sleepers(n, t.image))
        try:
            t.up(project, d)  # a peer without its compose tool says so here
        except Unavailable as e:
            reasons[label] = str(e)
            continue
        want[label] = runs(label) if callable(runs) else runs
        counted = []

        def once(t=t, d=d, project=project, label=label, counted=counted):
            try:
                up = ctx.run(t, t.up(project, d), cwd=d, services=n)
                running = len(t.container_pids(project, d))
                if running != n:
                    raise Failed(f"{running} of {n} containers running after up")
            except (Failed, Unavailable):
                # What it did start must not stay for the next tool and case.
                _take_down(ctx, t, project, d, n)
                raise
            counted.append(up)
            warm = len(counted) <= warmup  # the warm-up rounds record nothing
            if memory and len(counted) == warmup + 1:
                _measure_memory(t, label, project, d, n, mem)
            if schedule.noop_measured(label, n):
                try:
                    noop = ctx.run(t, t.up(project, d), cwd=d, services=n)
                except (Failed, Unavailable):
                    _take_down(ctx, t, project, d, n)
                    raise
                if not warm:
                    noops.setdefault(label, []).append(noop)
            try:
                down = ctx.run(t, t.down(project, d), cwd=d, services=n)
                if not warm:
                    downs.setdefault(label, []).append(down)
            except Failed as e:
                # dockerd may still hold an endpoint of a removed container ("network ... has
                # active endpoints"): the up stands, this down is not counted, and a second
                # down removes what is left before the next round.
                down_failed.setdefault(label, str(e))
                for _ in range(5):
                    if _take_down(ctx, t, project, d, n):
                        break
                    time.sleep(2)
            return up
        ups[label] = once
    values, failed = interleave(ups, want, warmup, ctx.log)
    failed.update(reasons)
    keep = lambda d: {k: v for k, v in d.items() if k in values}
    down_failed = {k: v for k, v in down_failed.items() if k not in downs}
    return values, keep(noops), keep(downs), failed, mem, down_failed


def project_dir(ctx, label, project, text):
    d = os.path.join(ctx.fx.work, "projects", label, project)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "stack.yaml"), "w") as f:
        f.write(text)
    return d


def _bring_up(ctx, label, t, project, text, n=0):
    d = project_dir(ctx, label, project, text)
    try:
        ctx.run(t, t.up(project, d), cwd=d, services=n)
    except (Failed, Unavailable):
        _take_down(ctx, t, project, d, n)
        raise
    return d


def _take_down(ctx, t, project, d, n=0):
    """True if the project's down succeeded (a failure is printed, never raised)."""
    try:
        ctx.run(t, t.down(project, d), cwd=d, services=n)
        return True
    except (Failed, Unavailable) as e:
        print(f"bench: {e}", file=sys.stderr, flush=True)
        return False


# 3. Host memory per idle container (PSS and RSS of every process the tool adds per
# container), and the daemon's RSS, with N containers running.
def memory(ctx, n):
    mem = ({}, {}, {}, {})  # pss, rss, daemon, reasons (reasons["daemon"]: for daemon-rss-kib)
    for label, t in _compose_tools(ctx):
        project = f"bmem{n}"
        try:
            d = _bring_up(ctx, label, t, project, sleepers(n, t.image), n)
        except (Failed, Unavailable) as e:
            mem[3][label] = str(e)
            continue
        try:
            _measure_memory(t, label, project, d, n, mem)
        finally:
            _take_down(ctx, t, project, d, n)
        ctx.log(1, 1)
    return mem


def _measure_memory(t, label, project, d, n, mem):
    pss, rss, daemon, reasons = mem
    pids = t.overhead_pids(project, d)
    if len(pids) != n:
        reasons[label] = f"found {len(pids)} per-container processes for {n} containers"
        return
    m = [memory_kib(p) for p in pids]
    rss[label] = [x[0] for x in m]
    pss[label] = [x[1] for x in m]
    dp = t.daemon_pids()
    if dp:
        daemon[label] = [sum(memory_kib(p)[0] for p in dp)]
    else:
        reasons.setdefault("daemon", {})[label] = "no daemon (daemonless)"


# 4. Restart reaction: the service's process killed (SIGKILL) to a new one running, at the
# first step of the restart backoff (each round waits for the backoff to reset: 10 s for stack
# and docker).
def restart_reaction(ctx, runs):
    projects, reasons, c = {}, {}, {}
    marker = "3601"
    text = lambda image: sleepers(1, image, marker=marker).replace(
        "    command:", "    restart: always\n    command:")
    for label, t in _compose_tools(ctx):
        try:
            projects[label] = (t, _bring_up(ctx, label, t, f"brst", text(t.image)))
        except (Failed, Unavailable) as e:
            reasons[label] = str(e)
    # Which sleeper belongs to which tool: each tool's container pid is an ancestor of it.
    def service_pid(t, d):
        inits = set(t.container_pids("brst", d))
        for pid in pids_by_cmdline(["sleep", marker]):
            p = pid
            for _ in range(4):
                if p in inits:
                    return pid
                try:
                    with open(f"/proc/{p}/stat") as f:
                        p = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    break
        return None

    for label, (t, d) in projects.items():
        def once(t=t, d=d):
            old = wait_for(lambda: service_pid(t, d), 30, "the service to run")
            t0 = time.perf_counter_ns()
            os.kill(old, signal.SIGKILL)
            wait_for(lambda: (lambda p: p and p != old)(service_pid(t, d)), 30,
                     "the restarted service")
            return (time.perf_counter_ns() - t0) / 1e6
        c[label] = once

    def rounds(progress_r, progress_n):
        ctx.log(progress_r, progress_n)
        if progress_r < progress_n:
            time.sleep(11)  # past the 10 s after which a run resets the backoff
    try:
        values, failed = interleave(c, runs, 0, rounds)
    finally:
        for label, (t, d) in projects.items():
            _take_down(ctx, t, "brst", d)
    failed.update(reasons)
    return values, failed


def _netns_ipv4(pid):
    out = sh(["nsenter", "-t", str(pid), "-n", "ip", "-4", "-o", "addr", "show",
              "scope", "global"]).stdout
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    if not m:
        raise Failed(f"no IPv4 address in the namespace of {pid}")
    return m.group(1)


def _resolver(pid):
    """The container's first nameserver, if it is the tool's own: on loopback in the container
    (Docker's 127.0.0.11) or on the container's network (stack's, aardvark-dns on the gateway).
    Any other (the host's resolver, copied in when the tool has no DNS of its own on the network)
    is refused: the queries would leave the machine."""
    with open(f"/proc/{pid}/root/etc/resolv.conf") as f:
        servers = [l.split()[1] for l in f if l.startswith("nameserver") and len(l.split()) > 1]
    if not servers:
        raise Failed(f"no nameserver in the resolv.conf of {pid}")
    server = ipaddress.ip_address(servers[0])
    out = sh(["nsenter", "-t", str(pid), "-n", "ip", "-o", "addr", "show"]).stdout
    nets = [ipaddress.ip_interface(m).network for m in re.findall(r"inet6? (\S+/\d+)", out)]
    if not server.is_loopback and not any(server in n for n in nets):
        raise Failed(f"the container's resolver {server} is not on its network (no DNS server of "
                     "the tool's own there): not queried, the queries would leave the machine")
    return str(server)


# 5a. DNS: p50 and p99 of COUNT answers for a service name, the same client in each tool's
# container namespace.
def dns(ctx, runs, count):
    p50, p99, reasons, c, projects = {}, {}, {}, {}, {}
    for label, t in _compose_tools(ctx):
        if getattr(t, "no_dns", None):
            reasons[label] = t.no_dns
            continue
        try:
            d = _bring_up(ctx, label, t, "bdns", sleepers(2, t.image))
            projects[label] = (t, d)
            pids = t.container_pids("bdns", d)
            if len(pids) != 2:
                raise Failed(f"{len(pids)} of 2 containers running")
            server = _resolver(pids[0])
        except (Failed, Unavailable) as e:
            reasons[label] = str(e)
            continue

        def once(pid=pids[0], label=label, server=server):
            out = sh(["nsenter", "-t", str(pid), "-n", "python3",
                      os.path.join(HERE, "dnsclient.py"), server, "s2", str(count)]).stdout
            lat = sorted(json.loads(out))
            ctx.keep.setdefault("dns", {})[label] = lat
            p50.setdefault(label, []).append(lat[len(lat) // 2])
            return lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        c[label] = once
    try:
        values, failed = interleave(c, runs, 1, ctx.log)
    finally:
        for label, (t, d) in projects.items():
            _take_down(ctx, t, "bdns", d)
    failed.update(reasons)
    p50 = {k: v[-len(values[k]):] for k, v in p50.items() if k in values}
    return p50, values, failed


def _iperf(server_pid, client_pid, address, seconds):
    """One iperf3 server per attempt (never -1 reused after a failed client), waited for until
    it listens, then one client; Gbit/s received."""
    srv = subprocess.Popen(["nsenter", "-t", str(server_pid), "-n", "iperf3", "-s", "-1",
                            "-B", address, "-p", "5201"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listening():
            with open(f"/proc/{server_pid}/net/tcp") as f:
                return any(l.split()[1].endswith(":1451") and l.split()[3] == "0A"
                           for l in f.readlines()[1:])
        wait_for(listening, 10, "iperf3 to listen")
        out = sh(["nsenter", "-t", str(client_pid), "-n", "iperf3", "-c", address, "-p", "5201",
                  "-t", str(seconds), "-J"]).stdout
        result = json.loads(out)
        if "error" in result or "sum_received" not in result.get("end", {}):
            raise Failed(f"iperf3 to {address}: {result.get('error', 'no result')}")
        return result["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        srv.kill()
        srv.wait()


# 5b. TCP throughput between two containers over each tool's bridge, and over a bare veth pair
# between two namespaces (the floor, tool "unshare").
def throughput(ctx, runs, seconds):
    reasons, c, projects = {}, {}, {}
    for label, t in _compose_tools(ctx):
        try:
            d = _bring_up(ctx, label, t, "bnet", sleepers(2, t.image))
            projects[label] = (t, d)
            pids = t.container_pids("bnet", d)
            if len(pids) != 2:
                raise Failed(f"{len(pids)} of 2 containers running")
            address = _netns_ipv4(pids[0])
        except (Failed, Unavailable) as e:
            reasons[label] = str(e)
            continue
        c[label] = lambda a=pids[0], b=pids[1], ip=address: _iperf(a, b, ip, seconds)
    try:
        bridge, failed = interleave(c, runs, 0, ctx.log)
    finally:
        for label, (t, d) in projects.items():
            _take_down(ctx, t, "bnet", d)
    failed.update(reasons)
    veth = _veth_floor(ctx, runs, seconds)
    return bridge, veth, failed


def _veth_floor(ctx, runs, seconds):
    a, b = f"stkbench-{os.getpid()}-a", f"stkbench-{os.getpid()}-b"
    holders = []
    try:
        for ns in (a, b):
            sh(["ip", "netns", "add", ns])
        sh(["ip", "link", "add", "stkbv-a", "netns", a, "type", "veth", "peer", "name",
            "stkbv-b", "netns", b])
        for ns, dev, ip in ((a, "stkbv-a", "10.253.0.1/30"), (b, "stkbv-b", "10.253.0.2/30")):
            sh(["ip", "-n", ns, "addr", "add", ip, "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            # A process holding the namespace, so that iperf3 can be nsenter'ed by pid.
            holders.append(subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "3600"]))
        host = os.readlink("/proc/self/ns/net")
        entered = lambda h: os.readlink(f"/proc/{h.pid}/ns/net") != host
        wait_for(lambda: all(entered(h) for h in holders), 5, "the namespaces")
        values, failed = interleave(
            {"unshare": lambda: _iperf(holders[0].pid, holders[1].pid, "10.253.0.1", seconds)},
            runs, 0, ctx.log)
        return values if values else {}
    finally:
        for h in holders:
            h.kill()
            h.wait()
        for ns in (a, b):
            sh(["ip", "netns", "del", ns], check=False)
