"""Child side of the ONNX fuzz test: ``tvmext compile`` then ``tvmext run`` per model.

``python onnx_fuzz_driver.py JOBS.json RESULTS.json``: JOBS is a list of
``{"model": path, "artifact": path, "log": prefix}``. Importing TVM takes seconds, so
this process imports tvmext once and forks one child per model; the child runs the two
commands through :func:`tvmext.cli.main` (the real command line), with stdout and stderr
in ``prefix.out`` / ``prefix.err``, a marker line between the two commands' stderr.
Each child has a deadline; RESULTS gets, per job, its exit status or the signal that
ended it, or ``"timeout"``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

import tvmext.onnx.importer  # noqa: F401  (imported before forking, once for all models)
from tvmext.cli import main

RUN_MARKER = "--- tvmext run ---"
# A small model compiles in seconds at -O0; much longer means a hang.
DEADLINE_S = 30.0
# A child that raised out of the CLI (a Python traceback) exits with this.
EXIT_UNCAUGHT = 70


def drive(model: str, artifact: str) -> None:
    """Compile ``model`` to ``artifact``; run it if that worked; print both statuses."""
    compiled = main(["compile", model, "-O", "0", "-o", artifact])
    print(RUN_MARKER, file=sys.stderr, flush=True)
    ran = main(["run", artifact]) if compiled == 0 else None
    print(f"\nstatus compile={compiled} run={ran}", flush=True)


def _child(job: dict[str, str]) -> None:
    """In the forked child: redirect output, drive, and exit without unwinding."""
    for fd, suffix in ((1, ".out"), (2, ".err")):
        out = os.open(job["log"] + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)
    status = 0
    try:
        drive(job["model"], job["artifact"])
    except BaseException:
        traceback.print_exc()
        status = EXIT_UNCAUGHT
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _wait(pid: int) -> dict[str, object]:
    """The child's outcome; one past its deadline is killed and reported as a hang."""
    start = time.monotonic()
    while time.monotonic() - start < DEADLINE_S:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            seconds = round(time.monotonic() - start, 2)
            if os.WIFSIGNALED(status):
                return {"signal": os.WTERMSIG(status), "seconds": seconds}
            return {"exit": os.WEXITSTATUS(status), "seconds": seconds}
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return {"timeout": DEADLINE_S}


def serve(jobs_path: str, results_path: str) -> None:
    """Run every job of ``jobs_path`` in its own child; write the outcomes."""
    with open(jobs_path) as f:
        jobs = json.load(f)
    results = []
    for job in jobs:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(job)
        results.append(_wait(pid))
    with open(results_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
