# The bench harness's pure parts (bench/harness/schedule.py, stats.py, plots.py): the full run
# with every peer is planned within its 35 minutes with the sizes from 100 last, a costly peer
# gets fewer runs but never none, docker-compose's parallel limit clears its deadlock,
# a few-run figure yields a ratio only when the ranges are apart, and the README table shows
# every case of a results file. No root, no processes: run by CTest (label unit).

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bench", "harness"))

import harness  # noqa: E402
import peers  # noqa: E402
import plots  # noqa: E402
import schedule  # noqa: E402
import stats  # noqa: E402

ALL = {"stack", "unshare", "crun", "runc", "podman", "docker", "podman-compose", "docker-compose"}


def summary(values):
    return stats.summarise(values)


class Schedule(unittest.TestCase):
    def test_full_run_with_peers_is_planned_within_35_minutes(self):
        steps = schedule.plan(["setup"] + harness.GROUPS, ALL, 10, False)
        self.assertLessEqual(sum(v for _, v in steps), 35 * 60)
        self.assertEqual([k for k, _ in steps if k.startswith("up-")],
                         ["up-1", "up-10", "up-50", "up-100", "up-200"])

    def test_the_big_sizes_run_after_every_other_case(self):
        # A peer that fails at 100 or 200 services (or leaves its state behind) must not take
        # the restart, DNS, network and build cases down with it.
        steps = [k for k, _ in schedule.plan(["setup"] + harness.GROUPS, ALL, 10, False)]
        self.assertEqual(steps[-2:], ["up-100", "up-200"])
        self.assertLess(steps.index("up-50"), steps.index("restart-reaction"))
        only = [k for k, _ in schedule.plan(["up"], ALL, 1, False, [100])]
        self.assertEqual(only, ["up-100"])

    def test_quick_run_with_peers_is_planned_within_10_minutes(self):
        steps = schedule.plan(["setup"] + harness.GROUPS, ALL, 5, True)
        self.assertLessEqual(sum(v for _, v in steps), 10 * 60)

    def test_stack_gets_every_run_and_a_costly_peer_fewer_but_at_least_one(self):
        for n in schedule.UP_SIZES[False]:
            self.assertEqual(schedule.up_runs("stack", n, 10), 10)
            self.assertGreaterEqual(schedule.up_runs("podman-compose", n, 10), 1)
        self.assertEqual(schedule.up_runs("podman-compose", 10, 10), stats.FEW_RUNS)
        self.assertEqual(schedule.up_runs("docker-compose", 10, 10), 10)
        self.assertLess(schedule.up_runs("podman-compose", 200, 10), 10)

    def test_the_peers_noop_up_stops_at_ten_services_and_stacks_does_not(self):
        self.assertTrue(schedule.noop_measured("podman-compose", 10))
        self.assertFalse(schedule.noop_measured("podman-compose", 50))
        self.assertTrue(schedule.noop_measured("stack", 200))


class Ratio(unittest.TestCase):
    def test_few_runs_with_overlapping_ranges_give_no_ratio(self):
        self.assertIsNone(stats.ratio(summary([10, 13]), summary([12, 14])))

    def test_few_runs_with_ranges_apart_give_the_ratio_of_medians(self):
        self.assertAlmostEqual(stats.ratio(summary([300.0]), summary([1.0, 1.1, 1.2])), 272.7,
                               places=1)

    def test_a_wide_spread_gives_no_ratio_whatever_the_run_count(self):
        wide = summary([1, 1, 1, 5, 9, 9, 9, 9, 9, 9])
        self.assertIsNone(stats.ratio(wide, summary([1.0] * 10)))


class Readme(unittest.TestCase):
    def test_table_has_a_row_for_every_case_and_flags_few_runs(self):
        cases = []
        for case, tool, unit, values in [
                ("up-200", "stack", "ms", [1200.0] * 10), ("up-200", "podman-compose", "ms", [300e3]),
                ("noop-up-200", "stack", "ms", [9.0] * 10), ("down-200", "stack", "ms", [900.0] * 10),
                ("overlay-gbits", "stack", "gbits", [5.0] * 10),
                ("overlay-gbits", "unshare", "gbits", [6.0] * 10),
                ("unpack-mbs", "stack", "mbs", [35.0] * 10), ("unpack-mbs", "tar", "mbs", [44.0] * 10),
                ("build-cold-ms", "stack", "ms", [2900.0] * 10),
                ("build-warm-ms", "stack", "ms", [52.0] * 10),
                ("mem-per-container-200", "stack", "kib", [75.0] * 200)]:
            cases.append(stats.record(case, tool, unit, summary(values)))
        doc = {"machine": {"date": "2026-11-30T14:00:00Z", "cores": 2, "kernel": "6.18",
                           "memory_mib": 24000}, "cases": cases,
               "not_measured": [{"case": "overlay-gbits", "tool": "docker-compose",
                                 "reason": "needs swarm mode"}]}
        text = plots.readme(doc, "/nonexistent")
        self.assertIn("| `up -d` of 200 services / no-op `up` / `down` | 1.2 s / 9 ms / 900 ms | "
                      "podman-compose 300 s (1 run) (250×) / – / – |", text)
        self.assertIn("VXLAN overlay | 5 Gbit/s | the floor 6 Gbit/s", text)
        self.assertIn("tar -x 44 MB/s", text)
        self.assertIn("cold / all cached | 2.9 s / 52 ms |", text)
        self.assertIn("at 200, PSS / RSS | 75 KiB / – |", text)
        self.assertIn("not measured: docker-compose in overlay-gbits: needs swarm mode", text)


class DockerCompose(unittest.TestCase):
    def test_its_parallel_limit_is_raised_from_64_services_only(self):
        # docker-compose 1.29 holds a slot of COMPOSE_PARALLEL_LIMIT (64) per service while the
        # service's container waits for a second one: from 64 services `up` hangs for good.
        for n in (64, 100, 200):
            env = peers.Docker.compose_env(n)
            # a slot per service and still its 64 for the containers
            self.assertEqual(int(env["COMPOSE_PARALLEL_LIMIT"]), n + 64)
        for n in (1, 10, 50):
            self.assertEqual(peers.Docker.compose_env(n), {})


class Check(unittest.TestCase):
    def test_check_requires_every_new_case_of_stack(self):
        quick = harness.expected_cases(set(harness.GROUPS), True)
        for case in ("overlay-gbits", "unpack-mbs", "build-cold-ms", "build-warm-ms",
                     "up-1", "up-10", "mem-per-container-20", "dns-p99-us"):
            self.assertIn(case, quick)
        full = harness.expected_cases(set(harness.GROUPS), False)
        for case in ("up-200", "noop-up-200", "mem-per-container-200"):
            self.assertIn(case, full)


if __name__ == "__main__":
    unittest.main()
