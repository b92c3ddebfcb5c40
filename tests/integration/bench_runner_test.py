# The bench harness's private runner (bench/harness/tools.py Runner): the tmpfs that hides this
# host's cgroup2 from crun keeps one cgroup.procs file per container crun ever ran (4 KiB each,
# never removable), so it must hold a full run's worth (a 1 MiB one was full at 256 and every
# later podman container failed with ENOSPC), and clear_cgroup2() empties it without touching
# the host's cgroup2. Root and the hybrid layout; exit 77 (skipped) otherwise.

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bench", "harness"))

import tools  # noqa: E402

HIDDEN = "/sys/fs/cgroup/unified"
NAME = f"stkbench-runner-test-{os.getpid()}"


class PrivateRunner(unittest.TestCase):
    def setUp(self):
        self.runner = tools.Runner(private_cgroup2=True)

    def tearDown(self):
        self.runner.close()

    def test_holds_a_full_runs_containers_and_clears_without_touching_the_host(self):
        # What crun leaves per container there: a directory with its pid in cgroup.procs.
        fill = (f"for i in $(seq 1 1000); do mkdir -p {HIDDEN}/{NAME}/c$i && "
                f"echo $$ > {HIDDEN}/{NAME}/c$i/cgroup.procs || exit 1; done")
        try:
            self.runner.output(["sh", "-c", fill])
        except tools.Failed as e:
            self.fail(f"the hidden cgroup2 tmpfs is full before 1000 containers: {e}")
        self.assertFalse(os.path.exists(os.path.join(HIDDEN, NAME)),
                         "the runner's files reached the host's cgroup2")
        self.runner.clear_cgroup2()
        left = self.runner.output(["find", HIDDEN, "-mindepth", "1"])
        self.assertEqual(left, "")


if __name__ == "__main__":
    if os.geteuid() != 0 or not os.path.ismount(HIDDEN):
        print("SKIPPED: needs root and this host's hybrid cgroup layout (cgroup2 at "
              f"{HIDDEN})")
        sys.exit(77)
    unittest.main()
