"""oneDNN's verbose log (``ONEDNN_VERBOSE=1``), as the tests read it."""

from __future__ import annotations

import os
import subprocess
import sys


def executions(log: str) -> list[tuple[str, str]]:
    """(primitive kind, implementation) of each execution in ``log``, in the formats of
    oneDNN 3.2 ("onednn_verbose,exec,cpu,...") and 3.13 ("...,primitive,exec,cpu,...")."""
    found = []
    for line in log.splitlines():
        if ",exec,cpu," in line:
            fields = line.split(",")
            at = fields.index("exec")
            found.append((fields[at + 2], fields[at + 3]))
    return found


def run_logged(module: str, function: str, **env: str) -> tuple[dict[str, str], str]:
    """Run ``module.function()`` (a test module of this folder) in a child process with
    ``ONEDNN_VERBOSE=1`` and ``env``; the function prints ``=== <name>`` before each run.
    Returns {name: that run's verbose log} and the child's stderr."""
    script = f"import sys; sys.path.insert(0, sys.argv[1]); import {module}; {module}.{function}()"
    done = subprocess.run(
        [sys.executable, "-c", script, os.path.dirname(__file__)],
        capture_output=True, text=True, env={**os.environ, "ONEDNN_VERBOSE": "1", **env},
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    _, *runs = ("\n" + done.stdout).split("\n=== ")
    return {name: log for name, _, log in (run.partition("\n") for run in runs)}, done.stderr
