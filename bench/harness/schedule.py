# How many counted runs each tool gets at each `up` size, and how long a run of the harness
# will take: a cost model per tool (seconds per round, fixed and per service), so that the full
# run with the peers fits in about 35 minutes on a 2-core machine without faking a figure. A
# tool whose round is expensive gets fewer runs at that size (at least one); the run count is
# in the results and a figure of fewer than FEW_RUNS runs is flagged. Pure functions.

import math

import stats

# Seconds of one round (fixed, per service), measured on the 2-core VM of
# bench/results/20261130T114157Z-vm.json (a loaded machine: the model errs on the long side).
UP_COST = {"stack": (0.05, 0.025), "docker-compose": (1.2, 0.19), "podman-compose": (1.8, 1.5)}
NOOP_COST = {"stack": (0.004, 0.0001), "docker-compose": (0.35, 0.0),
             "podman-compose": (0.1, 2.2)}
# podman-compose's no-op `up` re-checks every container one podman call at a time (~2 s a
# service): the peers' no-op up is measured up to this many services, stack's at every size.
PEER_NOOP_MAX = 10
# Counted seconds a tool may spend at one `up` size before its runs are cut.
UP_BUDGET_S = 120
FEW_RUNS = stats.FEW_RUNS  # a figure of fewer runs is flagged (stats.few_runs)
# The service counts of the `up` case and of the memory case.
UP_SIZES = {True: [1, 10], False: [1, 10, 50, 100, 200]}
MEM_SIZES = {True: [20], False: [20, 100, 200]}
# Sizes from BIG up run after every other case (a peer that fails there, or leaves its
# state behind, cannot take the smaller cases down with it), each followed by a reset of the
# peers' state.
BIG = 100


def noop_measured(label, n):
    return label == "stack" or n <= PEER_NOOP_MAX


def round_cost(label, n):
    fixed, per = UP_COST.get(label, UP_COST["docker-compose"])
    cost = fixed + per * n
    if noop_measured(label, n):
        fixed, per = NOOP_COST.get(label, NOOP_COST["docker-compose"])
        cost += fixed + per * n
    return cost


def up_warmup(n):
    """A warm-up round at the small sizes only: at 50 and more the earlier sizes warmed the
    caches, and one more round of podman-compose there costs minutes."""
    return 1 if n <= 10 else 0


def up_runs(label, n, runs, quick=False):
    """Counted runs of LABEL at N services: RUNS if affordable, fewer when a round costs more
    than the budget allows, but at least 5 up to 10 services (3 with --quick), 2 up to 50, and
    1 above."""
    floor = min(runs, 3 if quick else FEW_RUNS) if n <= 10 else min(runs, 2) if n <= 50 else 1
    return max(floor, min(runs, math.floor(UP_BUDGET_S / round_cost(label, n))))


# Counted runs of the cases other than `up` and memory: RUNS (default 10, 5 quick) capped
# where one round is long (an unpack of 200 MB takes ~6 s a tool, a cold podman build ~5 s;
# restart-reaction waits 11 s a round for the backoff to reset).
CAPS = {False: {"unpack": 5, "build": 5}, True: {"unpack": 2, "build": 2, "restart-reaction": 3,
                                                 "network": 3, "overlay": 3}}


def case_runs(case, runs, quick):
    return min(runs, CAPS[quick].get(case, runs))


def iperf_seconds(quick):
    return 1 if quick else 2


# Rough seconds of the other cases per tool (the estimate only: no run count depends on them).
def case_cost(case, tools, runs, quick, with_up=True):
    peers = [t for t in tools if t not in ("stack", "unshare")]
    compose = ["stack"] + [c for c in ("podman-compose", "docker-compose") if c in tools]
    if case == "container-start":
        return (runs + 2) * (0.05 + 0.15 * ("podman" in peers) + 0.25 * ("docker" in peers)) + 2
    if case == "container-start-net":
        return (runs + 2) * (0.05 + 0.4 * ("podman" in peers) + 0.3 * ("docker" in peers)) + 3
    if case == "memory":  # with `up`, only the sizes its rounds do not reach (20)
        sizes = [n for n in MEM_SIZES[quick] if n not in UP_SIZES[quick]] if with_up \
            else MEM_SIZES[quick]
        return sum(round_cost(c, n) for c in compose for n in sizes) + 5
    n = case_runs(case, runs, quick)
    if case == "restart-reaction":
        return n * 11 + 5 * len(compose)
    if case == "dns":
        return 2 + sum(round_cost(c, 2) for c in compose) + (runs + 1) * len(compose) * 0.6
    if case == "network":
        return sum(round_cost(c, 2) for c in compose) + n * (iperf_seconds(quick) + 1) * (
            len(compose) + 1)
    if case == "overlay":
        return 10 + (n + 1) * (iperf_seconds(quick) + 1) * 2
    if case == "unpack":  # the layer made once, then stack, tar -x and tar -x + syncfs
        return 20 + (n + 1) * 3 * 6
    if case == "build":
        return (n + 1) * (4 + 8 * ("podman" in peers) + 6 * ("docker" in peers))
    if case == "setup":  # the BusyBox root, stack's import, dockerd, the peers' imports
        return 5 + 20 * bool(peers)
    return 0


def up_cost(tools, n, runs, quick):
    compose = [c for c in ("stack", "podman-compose", "docker-compose") if c in tools]
    return sum(round_cost(c, n) * (up_runs(c, n, runs, quick) + up_warmup(n)) for c in compose)


def plan(groups, tools, runs, quick, sizes=None):
    """[(step label, estimated seconds)] in the order the harness runs them: the `up` sizes
    (SIZES, default all) below BIG where the group is, those from BIG last."""
    out, last = [], []
    for g in groups:
        if g == "up":
            for n in sizes or UP_SIZES[quick]:
                (last if n >= BIG else out).append((f"up-{n}", up_cost(tools, n, runs, quick)))
        else:
            out.append((g, case_cost(g, tools, runs, quick, "up" in groups)))
    return out + last


def clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"
