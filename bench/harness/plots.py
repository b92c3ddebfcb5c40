# The plots of a results document, drawn by gnuplot (Debian's gnuplot-nox) when it is
# installed: `up` time against the number of services, host memory against running
# containers, and the CDF of DNS answer latency. Returns lines for the harness to print.

import os
import shutil
import subprocess


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
    daemon = {c["tool"]: c["median_kib"] for c in doc["cases"] if c["case"] == "daemon-rss-kib"}
    if any(len(v) > 1 for v in mem.values()):
        total = {t: [(n, (kib * n + daemon.get(t, 0)) / 1024) for n, kib in v]
                 for t, v in mem.items()}
        path = os.path.join(results_dir, "latest-memory.png")
        _plot(path, f"host memory of each tool's processes ({where})", "running containers",
              "MiB (per-container PSS x n + daemon RSS)", total)
        out.append(f"plot: {path}")
    if keep.get("dns"):
        cdf = {t: [(us, (i + 1) / len(lat)) for i, us in enumerate(lat)]
               for t, lat in keep["dns"].items()}
        path = os.path.join(results_dir, "latest-dns-cdf.png")
        _plot(path, f"DNS answer latency, same client ({where})", "microseconds",
              "fraction of answers", cdf, logx=True, extra="set key bottom right", style="lines")
        out.append(f"plot: {path}")
    return out
