# The benchmark harness behind bench/run.sh: prepares the tools, runs the chosen cases (each
# interleaving the tools run by run), prints a table of medians with their spread and the
# ratio against stack where the spread supports one, and writes bench/results/<date>-<host>.json,
# latest.json and, with gnuplot, the plots. Run as root through bench/run.sh.

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import cases
import images
import overlay
import schedule
import stats
from peers import Docker, Podman
from tools import Fixtures, Oci, Stack, Unavailable, Unshare, sh

# Case groups as --cases takes them, in the order they run; a case name selects its group.
GROUPS = ["container-start", "container-start-net", "up", "memory", "restart-reaction", "dns",
          "network", "overlay", "unpack", "build"]
ALIASES = {"noop-up-10": "up", "down-10": "up", "daemon-rss-kib": "memory",
           "dns-p99-us": "dns", "dns-p50-us": "dns", "bridge-gbits": "network",
           "veth-gbits": "network", "overlay-gbits": "overlay", "unpack-mbs": "unpack",
           "build-cold-ms": "build", "build-warm-ms": "build"}
ALIASES.update({f"up-{n}": "up" for n in schedule.UP_SIZES[False]})
ALIASES.update({f"mem-per-container-{n}": "memory" for n in schedule.MEM_SIZES[False]})


def parse():
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__)
    p.add_argument("--quick", action="store_true", help="up to 10 services, fewer runs")
    p.add_argument("--with-peers", action="store_true",
                   help="also run crun, runc, podman, docker and the compose tools")
    p.add_argument("--cases", default="", help="comma-separated cases or groups (default all)")
    p.add_argument("--tools", default="",
                   help="comma-separated tools to set up (default all): stack, unshare, crun, runc, "
                        "stack-runtime, podman (podman-compose), docker (docker-compose)")
    p.add_argument("--runs", type=int, default=0, help="counted runs per case (default 10, 5 quick)")
    p.add_argument("--source", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--results", default=None)
    p.add_argument("--check", action="store_true",
                   help="exit 1 unless every selected case produced a figure for stack")
    return p.parse_args()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def progress(label):
    """Round r of n: on a terminal in place, otherwise a line at most every 30 s."""
    last = [time.monotonic()]

    def report(done, total):
        if done <= 0:
            return
        if sys.stderr.isatty():
            print(f"\r  {label}: run {done}/{total}", end="", file=sys.stderr, flush=True)
        elif time.monotonic() - last[0] >= 30 or done == total:
            last[0] = time.monotonic()
            log(f"  {label}: run {done}/{total}")
    return report


PEER_TOOLS = ["crun", "runc", "podman", "docker", "podman-compose", "docker-compose"]
TOOLS = ["stack", "unshare", "crun", "runc", "stack-runtime", "podman", "docker"]
TOOL_ALIASES = {"podman-compose": "podman", "docker-compose": "docker"}
# The host's limits that bear on 100-200 containers, recorded with every result (the bench
# changes none of them: the failures at 100 and 200 services were the harness's own tmpfs and
# docker-compose's semaphore, see tools.Runner and peers.Docker).
HOST_LIMITS = ["fs.inotify.max_user_instances", "fs.inotify.max_user_watches", "kernel.pid_max",
               "kernel.threads-max", "net.ipv4.neigh.default.gc_thresh1",
               "net.ipv4.neigh.default.gc_thresh2", "net.ipv4.neigh.default.gc_thresh3",
               "net.netfilter.nf_conntrack_max"]


def estimate(steps, tools, again=False):
    total = sum(v for _, v in steps)
    log(f"bench: {'without the tools that cannot run, now' if again else 'estimated'} "
        f"~{schedule.clock(total)} (min:s) for {', '.join(sorted(tools))}: "
        + ", ".join(f"{k} {schedule.clock(v)}" for k, v in steps))


def host_limits():
    out = {}
    for key in HOST_LIMITS:
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as f:
                out[key] = f.read().strip()
        except OSError:
            pass
    return out


def machine(source, settings=None):
    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    versions = {}
    for tool, argv in (("crun", ["crun", "--version"]), ("runc", ["runc", "--version"]),
                       ("podman", ["podman", "--version"]), ("docker", ["dockerd", "--version"]),
                       ("podman-compose", ["podman-compose", "--version"]),
                       ("docker-compose", ["docker-compose", "--version"])):
        if shutil.which(argv[0]):
            versions[tool] = out(argv).splitlines()[0] if out(argv) else "?"
    return {"host": platform.node(), "kernel": platform.release(), "cpu": cpu,
            "cores": os.cpu_count(), "memory_mib": mem_kib // 1024,
            "stack_commit": out(["git", "-C", source, "rev-parse", "--short", "HEAD"]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "peers": versions, "host_limits": host_limits(), "settings": settings or {}}


def host_objects():
    """The nftables tables and links on the host, to remove what a peer left behind."""
    tables = set(sh(["nft", "list", "tables"], check=False).stdout.splitlines())
    links = {l.split()[0].split("@")[0] for l in
             sh(["ip", "-br", "link"], check=False).stdout.splitlines() if l.strip()}
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    return tables, links, netns


def remove_peer_leftovers(before):
    """podman's CNI bridge and firewall tables, docker-compose's bridges: whatever appeared
    since BEFORE and is not stack's own (stack's down removes those, and a test checks it)."""
    tables, links, netns = host_objects()
    # podman names its namespaces netns-<uuid>; made in the runner's mount namespace, their
    # files on the host are empty placeholders.
    for ns in sorted(netns - before[2]):
        if ns.startswith("netns-"):
            sh(["ip", "netns", "del", ns], check=False)
            if os.path.exists(f"/run/netns/{ns}"):
                os.unlink(f"/run/netns/{ns}")
    for link in sorted(links - before[1]):
        if link.startswith(("cni-podman", "podman", "br-", "docker", "stkbench")):
            sh(["ip", "link", "del", link], check=False)
            log(f"removed {link}, left by a peer")
    for table in sorted(tables - before[0]):
        family, name = table.split()[1:3]
        if not name.startswith("stack"):
            sh(["nft", "delete", "table", family, name], check=False)
            log(f"removed nftables table {family} {name}, left by a peer")


def main():
    a = parse()
    a.results = a.results or os.path.join(a.source, "bench", "results")
    runs = a.runs or (5 if a.quick else 10)
    wanted, sizes = set(), []
    for name in filter(None, a.cases.split(",")):
        if name not in GROUPS and name not in ALIASES:
            sys.exit(f"bench: unknown case {name!r} (cases: "
                     f"{', '.join(sorted(GROUPS + list(ALIASES)))})")
        wanted.add(ALIASES.get(name, name))
        if name.startswith("up-") and name[3:].isdigit():
            sizes.append(int(name[3:]))
    if not wanted:
        wanted = set(GROUPS)
    # up-N alone runs that size only; "up" (or no --cases) every size.
    up_sizes = [n for n in schedule.UP_SIZES[a.quick] if n in sizes] \
        if sizes and "up" not in a.cases.split(",") else schedule.UP_SIZES[a.quick]
    if sizes and not up_sizes:
        sys.exit(f"bench: --quick runs up at {schedule.UP_SIZES[True]} services only")
    only = {TOOL_ALIASES.get(t, t) for t in filter(None, a.tools.split(","))}
    if only - set(TOOLS):
        sys.exit(f"bench: unknown tool(s) {', '.join(sorted(only - set(TOOLS)))} "
                 f"(tools: {', '.join(TOOLS + list(TOOL_ALIASES))})")

    order = [g for g in GROUPS if g in wanted]
    assumed = {"stack", "unshare"} | (set(PEER_TOOLS) if a.with_peers else set())
    if only:
        assumed = {t for t in assumed if TOOL_ALIASES.get(t, t) in only}
    started = time.monotonic()
    estimate(schedule.plan(["setup"] + order, assumed, runs, a.quick, up_sizes), assumed)
    before = host_objects()
    work = tempfile.mkdtemp(prefix="stack-bench-")
    fx = Fixtures(a.source, a.build, work)
    tools, unavailable = {}, {}
    makers = [("stack", lambda: Stack(fx)), ("unshare", lambda: Unshare(fx))]
    if a.with_peers:
        makers += [("crun", lambda: Oci(fx, "crun")), ("runc", lambda: Oci(fx, "runc")),
                   ("stack-runtime",
                    lambda: Oci(fx, "stack-runtime", os.path.join(fx.build, "stack-runtime"))),
                   ("podman", lambda: Podman(fx)), ("docker", lambda: Docker(fx))]
    for name, make in makers:
        if only and name not in only:
            continue
        try:
            tools[name] = make()
        except Unavailable as e:
            unavailable[name] = str(e)
            log(f"{name}: not measured: {e}")
    ctx = cases.Context(fx, tools, runs, a.quick, None)
    results, skipped = [], []
    labels = {t: getattr(tools[t], "compose_tool", t) for t in tools}
    have = set(tools) | set(labels.values())
    left = dict(schedule.plan(order, have, runs, a.quick, up_sizes))
    if have != assumed:
        estimate(list(left.items()), have, again=True)

    def add(case, unit, values, reasons=None):
        for tool, v in values.items():
            if v:
                results.append((case, tool, unit, stats.summarise(v)))
        for tool, why in (reasons or {}).items():
            skipped.append({"case": case, "tool": tool, "reason": why})

    def step(label):
        left.pop(label, None)
        ctx.log = progress(label)
        log(f"[{schedule.clock(time.monotonic() - started)} elapsed, "
            f"~{schedule.clock(sum(left.values()))} after this] {label} ...")

    def guarded(label, run):
        """A case that breaks (a tool's unexpected output) is reported, not the end of the run."""
        try:
            run()
        except Exception as e:  # noqa: BLE001 - anything a case raises is reported as such
            log(f"{label}: failed: {type(e).__name__}: {e}")
            skipped.append({"case": label, "tool": "*", "reason": f"{type(e).__name__}: {e}"})

    def add_memory(n, mem):
        pss, rss, daemon, why = mem
        no_daemon = why.pop("daemon", {})
        add(f"mem-per-container-{n}", "kib", pss, why)
        add(f"mem-per-container-{n}-rss", "kib", rss)
        # daemon-rss-kib: at 20 containers (the name); at the other sizes, for the plot.
        add("daemon-rss-kib" if n == 20 else f"daemon-rss-kib-{n}", "kib", daemon, no_daemon)

    mem_sizes = schedule.MEM_SIZES[a.quick]

    def up(n):
        step(f"up-{n}")
        # The memory case at the sizes `up` reaches, from its first counted round.
        fold = "memory" in wanted and n in mem_sizes
        ups, noop, down, why, mem, down_why = cases.up_down(
            ctx, n, lambda label: schedule.up_runs(label, n, runs, a.quick),
            schedule.up_warmup(n), memory=fold)
        add(f"up-{n}", "ms", ups, why)
        add(f"noop-up-{n}", "ms", noop, {
            label: f"no-op up measured up to {schedule.PEER_NOOP_MAX} services for the "
                   "peers (podman-compose: about 2 s a service)"
            for label in ups if not schedule.noop_measured(label, n)})
        add(f"down-{n}", "ms", down, down_why)
        if fold:
            for label, reason in why.items():
                if label not in mem[0]:
                    mem[3].setdefault(label, f"up-{n} failed: {reason}")
            add_memory(n, mem)

    def reset_after(label):
        """After a big size: each peer's state of the bench's own back to empty (podman: its
        containers, the cgroups of the ones that failed half-way, the hidden cgroup2 tmpfs)."""
        for name, t in tools.items():
            why = t.reset() if hasattr(t, "reset") else None
            if why:
                log(f"{name}: {why}")
                skipped.append({"case": f"after {label}", "tool": name, "reason": why})

    try:
        if "container-start" in wanted:
            step("container-start")
            add("container-start", "ms", *cases.container_start(ctx, net=False))
        if "container-start-net" in wanted:
            step("container-start-net")
            add("container-start-net", "ms", *cases.container_start(ctx, net=True))
        big = [n for n in up_sizes if n >= schedule.BIG] if "up" in wanted else []
        if "up" in wanted:
            for n in up_sizes:
                if n < schedule.BIG:
                    up(n)
        # The memory case's sizes that no `up` size measures: the small ones here, the big
        # ones last with the big `up` sizes.
        alone = [n for n in mem_sizes if "up" not in wanted or n not in up_sizes] \
            if "memory" in wanted else []
        for n in alone:
            if n < schedule.BIG:
                step("memory")
                add_memory(n, cases.memory(ctx, n))
        if "restart-reaction" in wanted:
            step("restart-reaction")
            guarded("restart-reaction", lambda: add(
                "restart-reaction", "ms",
                *cases.restart_reaction(ctx, schedule.case_runs("restart-reaction", runs, a.quick))))
        if "dns" in wanted:
            step("dns")

            def dns():
                p50, p99, why = cases.dns(ctx, runs, 300 if a.quick else 1000)
                add("dns-p50-us", "us", p50)
                add("dns-p99-us", "us", p99, why)
            guarded("dns", dns)
        if "network" in wanted:
            step("network")

            def network():
                bridge, veth, why = cases.throughput(
                    ctx, schedule.case_runs("network", runs, a.quick), schedule.iperf_seconds(a.quick))
                add("bridge-gbits", "gbits", bridge, why)
                add("veth-gbits", "gbits", veth)
            guarded("network", network)
        if "overlay" in wanted:
            step("overlay")

            def over():
                values, why = overlay.throughput(
                    ctx, schedule.case_runs("overlay", runs, a.quick), schedule.iperf_seconds(a.quick))
                why.update({label: r for label, r in overlay.PEERS.items()
                            if label in labels.values()})
                add("overlay-gbits", "gbits", values, why)
            guarded("overlay", over)
        if "unpack" in wanted:
            step("unpack")
            guarded("unpack", lambda: add(
                "unpack-mbs", "mbs", *images.unpack(ctx, schedule.case_runs("unpack", runs, a.quick))))
        if "build" in wanted:
            step("build")

            def build():
                cold, warm, why = images.build(ctx, schedule.case_runs("build", runs, a.quick))
                add("build-cold-ms", "ms", cold, why)
                add("build-warm-ms", "ms", warm)
            guarded("build", build)
        # The big sizes last, each followed by the peers' reset.
        for n in sorted(big + [m for m in alone if m >= schedule.BIG and m not in big]):
            if n in big:
                guarded(f"up-{n}", lambda n=n: up(n))
            else:
                step("memory")
                guarded(f"mem-per-container-{n}",
                        lambda n=n: add_memory(n, cases.memory(ctx, n)))
            reset_after(f"up-{n}" if n in big else f"mem-per-container-{n}")
    finally:
        for t in tools.values():
            t.close()
        fx.close()
        sh(["rm", "-rf", work], check=False)
        remove_peer_leftovers(before)
    log(f"bench: took {schedule.clock(time.monotonic() - started)}")

    for name, why in unavailable.items():
        skipped.append({"case": "*", "tool": name, "reason": why})
    report(results, skipped)
    settings = {name: t.settings for name, t in tools.items() if getattr(t, "settings", None)}
    write(a, results, skipped, ctx.keep, settings)
    if a.check:
        have = {c for c, t, _, _ in results if t == "stack"}
        missing = [c for c in expected_cases(wanted, a.quick, up_sizes) if c not in have]
        if missing:
            sys.exit(f"bench: no figure for stack in: {', '.join(missing)}")


def expected_cases(wanted, quick, up_sizes=None):
    """The cases --check requires a figure of stack for (the no-op `up` at every size)."""
    out = []
    for g in GROUPS:
        if g not in wanted:
            continue
        if g == "up":
            out += [f"{c}-{n}" for n in up_sizes or schedule.UP_SIZES[quick]
                    for c in ("up", "noop-up", "down")]
        elif g == "memory":
            out += [f"mem-per-container-{n}" for n in schedule.MEM_SIZES[quick]]
            out.append("daemon-rss-kib")
        elif g == "dns":
            out += ["dns-p50-us", "dns-p99-us"]
        elif g == "network":
            out.append("bridge-gbits")
        elif g == "build":
            out += ["build-cold-ms", "build-warm-ms"]
        else:
            out.append({"overlay": "overlay-gbits", "unpack": "unpack-mbs"}.get(g, g))
    return out


UNITS = {"ms": "ms", "kib": "KiB", "us": "us", "gbits": "Gbit/s", "mbs": "MB/s"}


def report(results, skipped):
    by_case = {}
    for case, tool, unit, s in results:
        by_case.setdefault(case, {})[tool] = (unit, s)
    print(f"{'case':<25} {'tool':<15} {'median':>10} {'unit':<7}{'p25 - p75':>21} "
          f"{'min - max':>21} {'runs':>4}  vs stack")
    for case, tools in by_case.items():
        ref = tools.get("stack", (None, None))[1]
        for tool, (unit, s) in tools.items():
            note = "(spread too wide for a ratio)" if stats.too_wide(s) else ""
            if ref and tool != "stack":
                r = stats.ratio(s, ref)
                why = "spread too wide" if stats.too_wide(s) or stats.too_wide(ref) \
                    else "few runs, ranges overlap"
                note = f"{r:.2f}x" if r is not None else f"~ ({why})"
            if stats.few_runs(s):
                note += f" (few runs: {s['runs']})"
            print(f"{case:<25} {tool:<15} {s['median']:>10.2f} {UNITS[unit]:<7}"
                  f"{s['p25']:>10.2f} -{s['p75']:>9.2f} {s['min']:>10.2f} -{s['max']:>9.2f} "
                  f"{s['runs']:>4}  {note}")
    for s in skipped:
        print(f"not measured: {s['tool']} in {s['case']}: {s['reason']}")


def write(a, results, skipped, keep, settings=None):
    os.makedirs(a.results, exist_ok=True)
    m = machine(a.source, settings)
    doc = {"machine": m, "quick": a.quick,
           "cases": [stats.record(c, t, u, s) for c, t, u, s in results],
           "not_measured": skipped}
    stamp = m["date"].replace(":", "").replace("-", "")
    for name in (f"{stamp}-{m['host']}.json", "latest.json"):
        with open(os.path.join(a.results, name), "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    if "dns" in keep:
        with open(os.path.join(a.results, "latest-dns-latencies.json"), "w") as f:
            json.dump(keep["dns"], f)
    log(f"results: {os.path.join(a.results, 'latest.json')}")
    import plots
    for line in plots.draw(doc, keep, a.results):
        log(line)


if __name__ == "__main__":
    main()
