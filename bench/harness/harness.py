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

import cases
import stats
from peers import Docker, Podman
from tools import Fixtures, Oci, Stack, Unavailable, Unshare, sh

# Case groups as --cases takes them; a case name selects itself.
GROUPS = ["container-start", "container-start-net", "up", "memory", "restart-reaction", "dns",
          "network"]
ALIASES = {"up-10": "up", "up-50": "up", "down-10": "up", "noop-up-10": "up",
           "mem-per-container-20": "memory", "daemon-rss-kib": "memory",
           "dns-p99-us": "dns", "dns-p50-us": "dns", "bridge-gbits": "network",
           "veth-gbits": "network"}


def parse():
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__)
    p.add_argument("--quick", action="store_true", help="up to 10 services, fewer runs")
    p.add_argument("--with-peers", action="store_true",
                   help="also run crun, runc, podman, docker and the compose tools")
    p.add_argument("--cases", default="", help="comma-separated cases or groups (default all)")
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
    def report(done, total):
        if done > 0 and sys.stderr.isatty():
            print(f"\r  {label}: run {done}/{total}", end="", file=sys.stderr, flush=True)
    return report


def machine(source):
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
            "peers": versions}


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
    wanted = set()
    for name in filter(None, a.cases.split(",")):
        if name not in GROUPS and name not in ALIASES:
            sys.exit(f"bench: unknown case {name!r} (cases: "
                     f"{', '.join(sorted(GROUPS + list(ALIASES)))})")
        wanted.add(ALIASES.get(name, name))
    if not wanted:
        wanted = set(GROUPS)

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
        try:
            tools[name] = make()
        except Unavailable as e:
            unavailable[name] = str(e)
            log(f"{name}: not measured: {e}")
    ctx = cases.Context(fx, tools, runs, a.quick, None)
    results, skipped = [], []

    def add(case, unit, values, reasons=None):
        for tool, v in values.items():
            if v:
                results.append((case, tool, unit, stats.summarise(v)))
        for tool, why in (reasons or {}).items():
            skipped.append({"case": case, "tool": tool, "reason": why})

    def step(label):
        ctx.log = progress(label)
        log(f"{label} ...")

    def guarded(label, run):
        """A case that breaks (a tool's unexpected output) is reported, not the end of the run."""
        try:
            run()
        except Exception as e:  # noqa: BLE001 - anything a case raises is reported as such
            log(f"{label}: failed: {type(e).__name__}: {e}")
            skipped.append({"case": label, "tool": "*", "reason": f"{type(e).__name__}: {e}"})

    try:
        if "container-start" in wanted:
            step("container-start")
            add("container-start", "ms", *cases.container_start(ctx, net=False))
        if "container-start-net" in wanted:
            step("container-start-net")
            add("container-start-net", "ms", *cases.container_start(ctx, net=True))
        if "up" in wanted:
            for n in ([1, 10] if a.quick else [1, 10, 50, 100, 200]):
                step(f"up-{n}")
                up, noop, down, why = cases.up_down(ctx, n, runs)
                add(f"up-{n}", "ms", up, why)
                add(f"noop-up-{n}", "ms", noop)
                add(f"down-{n}", "ms", down)
        if "memory" in wanted:
            for n in ([20] if a.quick else [20, 100, 200]):
                step(f"mem-per-container-{n}")
                pss, rss, daemon, why = cases.memory(ctx, n)
                no_daemon = why.pop("daemon", {})
                add(f"mem-per-container-{n}", "kib", pss, why)
                add(f"mem-per-container-{n}-rss", "kib", rss)
                if n == 20:
                    add("daemon-rss-kib", "kib", daemon, no_daemon)
        if "restart-reaction" in wanted:
            step("restart-reaction")
            guarded("restart-reaction", lambda: add(
                "restart-reaction", "ms", *cases.restart_reaction(ctx, 3 if a.quick else runs)))
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
                bridge, veth, why = cases.throughput(ctx, 3 if a.quick else runs,
                                                     1 if a.quick else 2)
                add("bridge-gbits", "gbits", bridge, why)
                add("veth-gbits", "gbits", veth)
            guarded("network", network)
    finally:
        for t in tools.values():
            t.close()
        fx.close()
        sh(["rm", "-rf", work], check=False)
        remove_peer_leftovers(before)

    for name, why in unavailable.items():
        skipped.append({"case": "*", "tool": name, "reason": why})
    report(results, skipped)
    write(a, results, skipped, ctx.keep)
    if a.check:
        have = {c for c, t, _, _ in results if t == "stack"}
        missing = [c for c in expected_cases(wanted, a.quick) if c not in have]
        if missing:
            sys.exit(f"bench: no figure for stack in: {', '.join(missing)}")


def expected_cases(wanted, quick):
    out = []
    if "container-start" in wanted:
        out.append("container-start")
    if "container-start-net" in wanted:
        out.append("container-start-net")
    if "up" in wanted:
        out += ["up-10", "noop-up-10", "down-10"]
    if "memory" in wanted:
        out += ["mem-per-container-20", "daemon-rss-kib"]
    if "restart-reaction" in wanted:
        out.append("restart-reaction")
    if "dns" in wanted:
        out += ["dns-p50-us", "dns-p99-us"]
    if "network" in wanted:
        out += ["bridge-gbits"]
    return out


UNITS = {"ms": "ms", "kib": "KiB", "us": "us", "gbits": "Gbit/s"}


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
                note = f"{r:.2f}x" if r is not None else "~ (spread too wide)"
            print(f"{case:<25} {tool:<15} {s['median']:>10.2f} {UNITS[unit]:<7}"
                  f"{s['p25']:>10.2f} -{s['p75']:>9.2f} {s['min']:>10.2f} -{s['max']:>9.2f} "
                  f"{s['runs']:>4}  {note}")
    for s in skipped:
        print(f"not measured: {s['tool']} in {s['case']}: {s['reason']}")


def write(a, results, skipped, keep):
    os.makedirs(a.results, exist_ok=True)
    m = machine(a.source)
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
