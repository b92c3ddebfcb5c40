# Times commands for the harness: one long-lived process per runner reads a command as a JSON
# line, runs it with its output discarded (or captured, when asked), and answers with the elapsed nanoseconds, the exit
# code and the end of its stderr. Every tool's command is started by the same code, so the cost
# of starting a process is the same for all of them. Started by harness.py (see Runner there),
# sometimes inside a private mount namespace; never imports anything of the harness.

import json
import os
import subprocess
import sys
import time


def main():
    for line in sys.stdin:
        req = json.loads(line)
        env = dict(os.environ)
        env.update(req.get("env") or {})
        t0 = time.perf_counter_ns()
        try:
            p = subprocess.run(req["argv"], cwd=req.get("cwd"), env=env,
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE if req.get("capture") else subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=req.get("timeout", 600))
            rc, err, out = p.returncode, p.stderr, p.stdout
        except subprocess.TimeoutExpired as e:
            rc, err, out = -1, (e.stderr or b"") + b"\n(timed out)", None
        except OSError as e:
            rc, err, out = -1, str(e).encode(), None
        ns = time.perf_counter_ns() - t0
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        answer = {"ns": ns, "rc": rc, "err": " / ".join(tail)}
        if out is not None:
            answer["out"] = out.decode(errors="replace")
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
