# The plots of a results document, drawn by gnuplot (Debian's gnuplot-nox) when it is
# installed: `up` time against the number of services, host memory against running
# containers, and the CDF of DNS answer latency; and the README's summary table of one.
#   python3 bench/harness/plots.py [--readme] [RESULTS.json]   (default bench/results/latest.json)
# redraws the plots beside the file, or with --readme prints the Markdown table to paste.

import json
import os
import shutil
import subprocess
import sys

import stats


def _series(doc, prefix, unit):
    """{tool: [(n, median)]} for cases named PREFIX<n>."""
    out = {}
    for c in doc["cases"]:
        name = c["case"]
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            out.setdefault(c["tool"], []).append((int(name[len(prefix):]), c[f"median_{unit}"]))
    return {t: sorted(v) for t, v in out.items()}


def _plot(path, title, xlabel, ylabel, series, logx=False, extra="", style="linespoints"):
    data = path + ".dat"
    blocks = []
    with open(data, "w") as f:
        for tool, points in series.items():
            f.write(f"# {tool}\n")
            for x, y in points:
                f.write(f"{x} {y}\n")
            f.write("\n\n")
            blocks.append(tool)
    q = lambda text: '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'
    plot = ", ".join(f"{q(data)} index {i} with {style} title {q(t)}"
                     for i, t in enumerate(blocks))
    script = (f"set terminal pngcairo size 900,560 noenhanced\nset output {q(path)}\n"
              f"set title {q(title)}\nset xlabel {q(xlabel)}\nset ylabel {q(ylabel)}\n"
              f"set grid\nset key top left\n{'set logscale x' if logx else ''}\n{extra}\n"
              f"plot {plot}\n")
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(data)


def draw(doc, keep, results_dir):
    if not shutil.which("gnuplot"):
        return ["plots: gnuplot is not installed (apt-get install gnuplot-nox)"]
    out = []
    m = doc["machine"]
    where = f"{m['date'][:10]}, {m['cores']} cores, {m['kernel']}"
    up = _series(doc, "up-", "ms")
    if any(len(v) > 1 for v in up.values()):
        path = os.path.join(results_dir, "latest-up.png")
        _plot(path, f"up -d to all running ({where})", "services", "ms (median)", up, logx=True)
        out.append(f"plot: {path}")
    mem = _series(doc, "mem-per-container-", "kib")
    # The daemon's RSS at each size (daemon-rss-kib is the one at 20 containers).
    daemon = {(c["tool"], 20 if c["case"] == "daemon-rss-kib" else int(c["case"].split("-")[-1])):
              c["median_kib"] for c in doc["cases"] if c["case"].startswith("daemon-rss-kib")}
    if any(len(v) > 1 for v in mem.values()):
        total = {t: [(n, (kib * n + daemon.get((t, n), 0)) / 1024) for n, kib in v]
                 for t, v in mem.items()}
        path = os.path.join(results_dir, "latest-memory.png")
        _plot(path, f"host memory of each tool's processes ({where})", "running containers",
              "MiB (per-container PSS x n + daemon RSS)", total, extra="set yrange [0:*]")
        out.append(f"plot: {path}")
    if keep.get("dns"):
        cdf = {t: [(us, (i + 1) / len(lat)) for i, us in enumerate(lat)]
               for t, lat in keep["dns"].items()}
        path = os.path.join(results_dir, "latest-dns-cdf.png")
        _plot(path, f"DNS answer latency, same client ({where})", "microseconds",
              "fraction of answers", cdf, logx=True, extra="set key bottom right", style="lines")
        out.append(f"plot: {path}")
    return out


UNITS = ("ms", "kib", "us", "gbits", "mbs")


def _figures(doc):
    """{case: {tool: summary}} from the records of a results document."""
    out = {}
    for c in doc["cases"]:
        unit = next(u for u in UNITS if f"median_{u}" in c)
        s = {k: c[f"{k}_{unit}"] for k in ("median", "min", "max", "p25", "p75")}
        s["runs"], s["unit"] = c["runs"], unit
        out.setdefault(c["case"], {})[c["tool"]] = s
    return out


def _value(s):
    v, unit = s["median"], s["unit"]
    if v is None:
        return "?"
    num = lambda x: f"{x:.3g}" if x < 1000 else f"{x:,.0f}"
    text = {"ms": lambda: f"{num(v / 1000)} s" if v >= 1000 else f"{num(v)} ms",
            "kib": lambda: f"{num(v / 1024)} MiB" if v >= 1024 else f"{num(v)} KiB",
            "us": lambda: f"{num(v)} µs", "gbits": lambda: f"{num(v)} Gbit/s",
            "mbs": lambda: f"{num(v)} MB/s"}[unit]()
    if stats.few_runs(s):
        text += f" ({s['runs']} run{'s' if s['runs'] > 1 else ''})"
    return text


def _ratio(s, ref):
    r = stats.ratio(s, ref) if ref else None
    if r is None:
        return ""
    return f" ({r:.0f}×)" if r >= 10 else f" ({r:.2g}×)"


# (label, [cases joined by " / "]) in the order of the table; a missing case reads "–".
def _rows(figures):
    rows = [("container start, `/bin/true` from nothing to removed", ["container-start"]),
            ("the same with a network", ["container-start-net"])]
    sizes = sorted({int(c[3:]) for c in figures if c.startswith("up-") and c[3:].isdigit()})
    rows += [(f"`up -d` of {n} service{'s' if n > 1 else ''} / no-op `up` / `down`",
              [f"up-{n}", f"noop-up-{n}", f"down-{n}"]) for n in sizes]
    mems = sorted({int(c.split("-")[-1]) for c in figures
                   if c.startswith("mem-per-container-") and c.split("-")[-1].isdigit()})
    rows += [(f"host memory per idle container at {n}, PSS / RSS",
              [f"mem-per-container-{n}", f"mem-per-container-{n}-rss"]) for n in mems]
    daemons = [n for n in [20] + mems if n != 20 and f"daemon-rss-kib-{n}" in figures]
    rows += [(f"daemon RSS with {' / '.join(str(n) for n in [20] + daemons)} containers",
              ["daemon-rss-kib"] + [f"daemon-rss-kib-{n}" for n in daemons]),
             ("restart reaction (kill -9 to running again)", ["restart-reaction"]),
             ("DNS answer for a service name, p50 / p99", ["dns-p50-us", "dns-p99-us"]),
             ("TCP between two containers on one bridge", ["bridge-gbits"]),
             ("TCP between two containers on two hosts, VXLAN overlay", ["overlay-gbits"]),
             ("a bare veth pair (the floor of the bridge)", ["veth-gbits"]),
             ("unpacking a 200 MB gzip layer of 4,000 files", ["unpack-mbs"]),
             ("a 10-step Dockerfile over BusyBox, cold / all cached",
              ["build-cold-ms", "build-warm-ms"])]
    return [(label, cases) for label, cases in rows if any(c in figures for c in cases)]


FLOORS = {"unshare": "the floor", "tar": "tar -x", "tar-syncfs": "tar -x + syncfs"}


def readme(doc, results_dir):
    figures = _figures(doc)
    m = doc["machine"]
    kind = "`--quick` run" if doc.get("quick") else "full run"
    out = [f"A {kind} of `bench/run.sh` ({m['date'][:10]}, {m.get('cpu', '')}, {m['cores']} "
           f"cores, {m['memory_mib'] // 1024} GiB, kernel {m['kernel']}, stack "
           f"{m.get('stack_commit', '?')}): medians; in brackets the ratio to stack where both "
           f"spreads support one (interquartile range within {stats.WIDE_SPREAD:.0%} of the "
           f"median; under {stats.FEW_RUNS} runs, min-max ranges apart), and the run count "
           f"where it is under {stats.FEW_RUNS}.", "",
           "| case | stack | peers (median) |", "| --- | --- | --- |"]
    for label, cases in _rows(figures):
        tools = []
        for c in cases:
            for t in figures.get(c, {}):
                if t != "stack" and t not in tools:
                    tools.append(t)
        stack = " / ".join(_value(figures[c]["stack"]) if "stack" in figures.get(c, {})
                           else "–" for c in cases)
        peers = []
        for t in tools:
            cells = []
            for c in cases:
                f = figures.get(c, {})
                cells.append(_value(f[t]) + _ratio(f[t], f.get("stack")) if t in f else "–")
            peers.append(f"{FLOORS.get(t, t)} {' / '.join(cells)}")
        out.append(f"| {label} | {stack} | {'; '.join(peers) or '–'} |")
    out.append("")
    for s in doc.get("not_measured", []):
        out.append(f"- not measured: {s['tool']} in {s['case']}: {s['reason']}")
    out.append("")
    for name, alt in (("up", "up -d against services"),
                      ("memory", "host memory against running containers"),
                      ("dns-cdf", "DNS answer latency")):
        if os.path.exists(os.path.join(results_dir, f"latest-{name}.png")):
            out.append(f"![{alt}](bench/results/latest-{name}.png)")
    return "\n".join(out)


def main(argv):
    want_readme = "--readme" in argv
    files = [a for a in argv if a != "--readme"]
    path = files[0] if files else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "..", "results", "latest.json")
    with open(path) as f:
        doc = json.load(f)
    if want_readme:
        print(readme(doc, os.path.dirname(os.path.abspath(path))))
        return
    keep = {}
    lat = os.path.join(os.path.dirname(path), "latest-dns-latencies.json")
    if os.path.exists(lat):
        with open(lat) as f:
            keep["dns"] = json.load(f)
    for line in draw(doc, keep, os.path.dirname(os.path.abspath(path))):
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
