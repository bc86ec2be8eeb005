"""A tuning run: MetaSchedule in a child process, its database kept in a records file.

The child (:mod:`tvmext.tuning.worker`) starts from the records already in the file,
so tuning again with the same file resumes; whatever it measured is written back,
also when it crashes. Each measured batch is reported to ``progress``. A child that
reports nothing for longer than a batch can take is stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import tvm

from tvmext.errors import TuningError
from tvmext.lowering.tuning_records import TuningRecords, workload_key
from tvmext.tuning.rpc import RpcTracker, require_servers
from tvmext.tuning.tasks import TuningTask
from tvmext.tuning.worker import BASELINES_FILE

# Candidates per measured batch (MetaSchedule's num_trials_per_iter).
TRIALS_PER_BATCH = 16
# The longest one candidate may take to build, and again to run (tvmc's --timeout).
CANDIDATE_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 60.0


@dataclass
class TuningProgress:
    """What a progress callback sees after each measured batch."""

    trials: int
    total: int
    task: str
    best_seconds: dict[str, float] = field(default_factory=dict)
    failed: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class TuningResult:
    """The records after a run: the candidates it measured (and how many failed), how
    long it took, the tasks, and the best time this run found per task."""

    records: TuningRecords
    trials: int
    failed: int
    seconds: float
    tasks: tuple[str, ...]
    best_seconds: dict[str, float]


def _existing(path: str, target: str) -> TuningRecords:
    if not os.path.exists(path):
        return TuningRecords(target)
    records = TuningRecords.load(path)
    if records.target != target:
        raise TuningError(
            f"tuning records {path!r} were tuned for target {records.target!r}, not "
            f"{target!r}: write these to another file"
        )
    return records


def _stall_limit(servers: int, timeout_s: float) -> float:
    """The longest a batch can take: every candidate built and run to its timeout."""
    workers = max(1, min(len(os.sched_getaffinity(0)), servers))
    return 120.0 + TRIALS_PER_BATCH * 2 * timeout_s / workers


def _baselines(work: str, tasks: Sequence[TuningTask]) -> dict[str, float]:
    """The default schedules' times the child measured, by workload key."""
    path = os.path.join(work, BASELINES_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        seconds = json.load(f)
    return {workload_key(t.mod): s for t, s in zip(tasks, seconds, strict=True) if s is not None}


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def tune_tasks(
    tasks: Sequence[TuningTask],
    target: tvm.target.Target,
    trials: int,
    records_path: str,
    *,
    rpc: RpcTracker | None = None,
    progress: Callable[[TuningProgress], None] | None = None,
    seed: int = 0,
    timeout_s: float = CANDIDATE_TIMEOUT_S,
) -> TuningResult:
    """Tune ``tasks`` for ``target`` with ``trials`` more candidates in all, measured
    here or on the servers of ``rpc``; the records file ``records_path`` is read first
    (resuming) and written after, atomically. A candidate may take ``timeout_s`` to
    build and as long to run; a batch that takes longer than all of its candidates
    could stops tuning with an error (a hang inside TVM)."""
    if not tasks:
        raise TuningError(
            "nothing to tune: the model has no PrimFunc with fixed shapes "
            "that takes tvmext's default schedule"
        )
    if trials < 1:
        raise TuningError(f"--trials must be at least 1, got {trials}")
    if timeout_s <= 0:
        raise TuningError(f"--timeout must be positive, got {timeout_s:g} s")
    target_text = str(target)
    records = _existing(records_path, target_text)
    servers = require_servers(rpc) if rpc is not None else 1
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tvmext-tune-") as work:
        records.write_database(work)
        job = {
            "target": json.loads(str(target)),
            "tasks": [
                {
                    "name": t.name,
                    "weight": t.weight,
                    "mod": tvm.ir.save_json(t.mod),
                    # A default schedule timed before (the records resumed) is not
                    # built and timed again.
                    "baseline": None
                    if workload_key(t.mod) in records.baselines
                    else tvm.ir.save_json(t.baseline),
                }
                for t in tasks
            ],
            "work_dir": work,
            "trials": trials,
            "trials_per_iter": TRIALS_PER_BATCH,
            "build_workers": len(os.sched_getaffinity(0)),
            "build_timeout": timeout_s,
            "run_timeout": timeout_s,
            "seed": seed,
            "rpc": None
            if rpc is None
            else {
                "host": rpc.host,
                "port": rpc.port,
                "key": rpc.key,
                "session_timeout": rpc.session_timeout,
                "servers": servers,
            },
        }
        job_path = os.path.join(work, "job.json")
        with open(job_path, "w") as f:
            json.dump(job, f)
        log_path = os.path.join(work, "tuning.log")
        last = TuningProgress(0, trials, "")
        try:
            stall_limit = _stall_limit(servers, timeout_s)
            returncode = _run_child(job_path, log_path, stall_limit, last, progress)
        finally:
            # Whatever was measured is kept, also when the child failed.
            measured = TuningRecords.from_database(work, target_text)
            measured.baselines = {**records.baselines, **_baselines(work, tasks)}
            measured.save(records_path)
        if returncode != 0:
            _raise_child_failure(returncode, log_path, records_path, last)
    if last.trials and last.failed == last.trials:
        where = f"on the servers of the RPC {rpc}" if rpc else "on this machine"
        raise TuningError(
            f"none of the {last.trials} candidates ran {where}; the last error: "
            f"{last.last_error or 'none reported'}"
        )
    return TuningResult(
        TuningRecords.load(records_path),
        last.trials,
        last.failed,
        time.perf_counter() - start,
        tuple(t.name for t in tasks),
        dict(last.best_seconds),
    )


def _run_child(
    job_path: str,
    log_path: str,
    stall_limit: float,
    last: TuningProgress,
    progress: Callable[[TuningProgress], None] | None,
) -> int:
    """Run the worker; update ``last`` (and call ``progress``) per batch; its status."""
    read_fd, write_fd = os.pipe()
    with open(log_path, "w") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "tvmext.tuning.worker", job_path, str(write_fd)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            start_new_session=True,  # its builder and runner processes go with it
        )
    os.close(write_fd)
    buffered = b""
    try:
        with os.fdopen(read_fd, "rb") as reader:
            while True:
                ready, _, _ = select.select([reader], [], [], stall_limit)
                if not ready:
                    _stop(child)
                    raise TuningError(
                        f"tuning stalled: no candidate finished in {stall_limit:.0f} s "
                        f"after {last.trials} trials; stopped it"
                    )
                chunk = os.read(reader.fileno(), 65536)
                if not chunk:
                    break
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    _update(last, json.loads(line))
                    if progress is not None:
                        progress(last)
        try:
            return child.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TuningError(
                f"the tuning process did not exit within {EXIT_TIMEOUT_S:g} s of finishing "
                f"its {last.trials} trials; stopped it"
            ) from None
    finally:
        _stop(child)


def _update(last: TuningProgress, event: dict[str, object]) -> None:
    last.trials = int(event["trials"])  # type: ignore[call-overload]
    last.task = str(event["task"])
    last.best_seconds = dict(event["best"])  # type: ignore[call-overload]
    last.failed = int(event["failed"])  # type: ignore[call-overload]
    last.last_error = str(event["last_error"])


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Kill what is left of the child's process group (its builders and runners
    outlive a crashed child)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _raise_child_failure(
    returncode: int, log_path: str, records_path: str, last: TuningProgress
) -> None:
    with open(log_path, errors="replace") as f:
        tail = [line.rstrip() for line in f if line.strip()][-15:]
    how = (
        f"crashed ({_signal_name(returncode)}, inside TVM)"
        if returncode < 0
        else f"failed (exit status {returncode})"
    )
    raise TuningError(
        f"the tuning process {how} after {last.trials} of {last.total} trials; the records "
        f"measured so far are in {records_path!r} and tuning again with them resumes. "
        "Its last output:\n" + "\n".join(tail)
    )
