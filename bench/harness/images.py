# 6. Images and builds. Unpack: MB/s of one generated 200 MB gzip layer unpacked by stack's
# layer unpacker (fs::unpack_layer, through bench/bench_unpack --once) against GNU `tar -x` of
# the same file, without and with a syncfs after it (stack's unpack ends with one: tool
# "tar-syncfs" is the same durability). Build: one Dockerfile (bench/bench_build's: 200 COPY'd
# files, two RUNs) cold and warm, by stack's engine (bench_build --json, one run per round) and
# by `podman build` and `docker build` on the same context FROM the image the harness imported.

import json
import os
import shutil

from cases import interleave
from tools import IMAGE, Failed, sh

BUILT = "localhost/stack-bench-built:latest"


def _json(argv, env=None):
    out = sh(argv, env={**os.environ, **(env or {})}).stdout
    try:
        return json.loads(out)
    except ValueError:
        raise Failed(f"{os.path.basename(argv[0])}: no JSON in its output: {out[:200]!r}")


def unpack(ctx, runs):
    """{tool: [MB/s]}, {tool: reason}."""
    prog = os.path.join(ctx.fx.build, "bench", "bench_unpack")
    work = os.path.join(ctx.fx.work, "unpack")
    try:
        size = _json([prog, "--prepare", work])["bytes"]
        layer, out = os.path.join(work, "layer.tar.gz"), os.path.join(work, "out")

        def once(how):
            return size / 1e6 / _json([prog, "--once", how, layer, out])["seconds"]
        return interleave({t: (lambda t=t: once(t)) for t in ("stack", "tar", "tar-syncfs")},
                          runs, 1, ctx.log)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build(ctx, runs):
    """({tool: [cold ms]}, {tool: [warm ms]}, {tool: reason})."""
    warm, c, reasons = {}, {}, {}
    prog = os.path.join(ctx.fx.build, "bench", "bench_build")

    def stack_once():
        r = _json([prog, ctx.fx.rootfs, "--json"], env={"STACK_BENCH_RUNS": "1"})
        warm.setdefault("stack", []).append(r["warm_ms"][0])
        return r["cold_ms"][0]
    if "stack" in ctx.tools:
        c["stack"] = stack_once
    context = os.path.join(ctx.fx.work, "build-context")
    sh([prog, "--context", context, IMAGE])
    peers = {"podman": ["--network", "none"], "docker": ["--network", "none"]}
    for name, flags in peers.items():
        t = ctx.tools.get(name)
        if not t:
            continue
        # docker's legacy builder (BuildKit is not in Debian's docker.io 20.10).
        env = dict(getattr(t, "env", {}) or {}, DOCKER_BUILDKIT="0")
        argv = [name, "build", "-q"] + flags + ["-t", BUILT, context]

        def once(t=t, name=name, argv=argv, env=env):
            cold = ctx.time(argv[:2] + ["--no-cache"] + argv[2:], env=env,
                            private=getattr(t, "private", False))
            warm.setdefault(name, []).append(
                ctx.time(argv, env=env, private=getattr(t, "private", False)))
            return cold
        c[name] = once
    try:
        cold, failed = interleave(c, runs, 1, ctx.log)
    finally:
        for name in peers:
            t = ctx.tools.get(name)
            if t:
                try:
                    ctx.time([name, "rmi", "-f", BUILT], env=getattr(t, "env", None),
                             private=getattr(t, "private", False))
                except Failed:
                    pass
        shutil.rmtree(context, ignore_errors=True)
    failed.update(reasons)
    warm = {k: v[-len(cold[k]):] for k, v in warm.items() if k in cold}
    return cold, warm, failed
