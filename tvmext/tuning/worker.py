"""The tuning child process: ``python -m tvmext.tuning.worker JOB.json PROGRESS_FD``.

It times each task's default schedule (a record must beat it to be used), then runs
MetaSchedule on the tasks the job names, with the JSON database in the job's
folder (already holding earlier records when tuning resumes), and writes one JSON
line per measured batch to the file descriptor ``PROGRESS_FD``. It imports TVM and
MetaSchedule only, so that a crash inside them costs this process, not the caller's.
"""

from __future__ import annotations

import faulthandler
import importlib
import importlib.util
import json
import math
import os
import shutil
import signal
import sys
import types
from typing import Any, TextIO

import tvm
import tvm.s_tir.meta_schedule as ms
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

# Failed candidates report this many seconds (MetaSchedule's convention).
_FAILED = 1e9
# With the random cost model (as good as XGBoost at small budgets) the evolutionary
# search's large populations and many generations only cost time: 128 and one
# generation tune a convolution 2.5x faster at the same trial count.
POPULATION = 128
# Written into the job's folder: the default schedules' times, one per task.
BASELINES_FILE = "baselines.json"


def register_cpu_tensor_intrinsics() -> None:
    """Make ``import tvm.s_tir.tensor_intrin`` (done by every TuneContext) cost 0.3 s
    instead of 40-60 s: the package defines every backend's intrinsics (CUDA's alone
    take 20 s), and tuning for a CPU needs the x86 and Arm ones only. The package is
    entered in ``sys.modules`` without running its ``__init__``, then those two load."""
    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations is not None
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__package__ = name
    sys.modules[name] = package
    for backend in ("x86", "arm_cpu"):
        importlib.import_module(f"{name}.{backend}")


def fast_build(mod: tvm.IRModule, target: tvm.target.Target, _params: Any) -> Any:
    """MetaSchedule's default build without its ``import tvm.s_tir.tensor_intrin``
    (see :func:`register_cpu_tensor_intrinsics`), which every builder process would
    run against a 30 s build timeout."""
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    rewritten = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm.tirx.build(rewritten, target=target)


def _progress_callback(out: TextIO, names: list[str], total: int) -> Any:
    @derived_object
    class Progress(PyMeasureCallback):
        """Report each measured batch: trials so far, best time per task."""

        def __init__(self) -> None:
            self.trials = 0
            self.best: dict[str, float] = {}
            self.failed = 0
            self.last_error = ""

        def apply(
            self,
            task_scheduler: Any,
            task_id: int,
            measure_candidates: Any,
            builder_results: Any,
            runner_results: Any,
        ) -> None:
            name = names[task_id]
            for built, ran in zip(builder_results, runner_results, strict=True):
                self.trials += 1
                error = built.error_msg or ran.error_msg
                seconds = [float(s) for s in ran.run_secs or []]
                if error or not seconds or min(seconds) >= _FAILED:
                    self.failed += 1
                    self.last_error = (error or "no time measured").strip().splitlines()[-1]
                    continue
                mean = sum(seconds) / len(seconds)
                self.best[name] = min(self.best.get(name, math.inf), mean)
            event = {
                "trials": self.trials,
                "total": total,
                "task": name,
                "best": self.best,
                "failed": self.failed,
                "last_error": self.last_error,
            }
            out.write(json.dumps(event) + "\n")
            out.flush()

    return Progress()


def _runner(job: dict[str, Any]) -> Any:
    evaluator = ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=20)
    rpc = job.get("rpc")
    if rpc is None:
        return ms.runner.LocalRunner(evaluator_config=evaluator, timeout_sec=job["run_timeout"])
    config = ms.runner.RPCConfig(
        tracker_host=rpc["host"],
        tracker_port=rpc["port"],
        tracker_key=rpc["key"],
        session_priority=1,
        session_timeout_sec=math.ceil(rpc["session_timeout"]),
    )
    return ms.runner.RPCRunner(
        rpc_config=config, evaluator_config=evaluator, max_workers=rpc["servers"]
    )


def measure_baselines(
    job: dict[str, Any], target: tvm.target.Target, builder: Any, runner: Any
) -> list[float | None]:
    """The mean run time of each task's default-scheduled module, measured like the
    candidates; None where it does not build or run, or where the job has no baseline
    for the task (the records being resumed have its time)."""
    wanted = [i for i, t in enumerate(job["tasks"]) if t["baseline"] is not None]
    mods = {i: tvm.ir.load_json(job["tasks"][i]["baseline"]) for i in wanted}
    built = (
        builder.build([ms.builder.BuilderInput(mods[i], target) for i in wanted]) if wanted else []
    )
    ran: dict[int, Any] = {}
    inputs: list[Any] = []
    for i, result in zip(wanted, built, strict=True):
        if result.error_msg is None:
            ran[i] = len(inputs)
            args = ms.arg_info.ArgInfo.from_prim_func(mods[i]["main"])
            inputs.append(ms.runner.RunnerInput(result.artifact_path, "cpu", args))
    futures = runner.run(inputs) if inputs else []
    seconds: list[float | None] = []
    for i in range(len(job["tasks"])):
        result = futures[ran[i]].result() if i in ran else None
        times = [float(s) for s in (result.run_secs or [])] if result is not None else []
        ok = result is not None and result.error_msg is None and times
        seconds.append(sum(times) / len(times) if ok and min(times) < _FAILED else None)
    for result in built:
        if result.artifact_path:
            shutil.rmtree(os.path.dirname(result.artifact_path), ignore_errors=True)
    return seconds


def die_on_crash() -> None:
    """Make a crash end this process at once, its Python stack in the log. TVM's own
    handler of SIGSEGV (and the other fatal signals) prints a native backtrace, which
    allocates memory: after a fault inside malloc it waits forever on malloc's lock, and
    the caller would only learn of it when its stall bound runs out. Python's
    faulthandler writes without allocating, then lets the default action kill it."""
    for fatal in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT):
        signal.signal(fatal, signal.SIG_DFL)  # replaces TVM's handler, installed on import
    faulthandler.enable()


def main(job_path: str, progress_fd: int) -> None:
    """Tune the tasks of the job file ``job_path``."""
    die_on_crash()
    with open(job_path) as f:
        job = json.load(f)
    register_cpu_tensor_intrinsics()
    target = tvm.target.Target(job["target"])
    names = [t["name"] for t in job["tasks"]]
    cores = int(job["build_workers"])
    contexts = [
        ms.TuneContext(
            mod=tvm.ir.load_json(t["mod"]),
            target=target,
            space_generator="post-order-apply",
            search_strategy=ms.search_strategy.EvolutionarySearch(
                population_size=POPULATION, genetic_num_iters=1
            ),
            task_name=t["name"],
            num_threads=cores,
            rand_state=int(job["seed"]) + i,
        ).clone()
        for i, t in enumerate(job["tasks"])
    ]
    builder = ms.builder.LocalBuilder(
        f_build=fast_build, max_workers=cores, timeout_sec=job["build_timeout"]
    )
    runner = _runner(job)
    baselines = measure_baselines(job, target, builder, runner)
    with open(os.path.join(job["work_dir"], BASELINES_FILE), "w") as f:
        json.dump(baselines, f)
    with os.fdopen(progress_fd, "w", buffering=1) as out:
        ms.tune_tasks(
            tasks=contexts,
            task_weights=[float(t["weight"]) for t in job["tasks"]],
            work_dir=job["work_dir"],
            max_trials_global=int(job["trials"]),
            num_trials_per_iter=int(job["trials_per_iter"]),
            builder=builder,
            runner=runner,
            database=ms.database.JSONDatabase(work_dir=job["work_dir"]),
            cost_model="random",
            # Round robin joins each batch as soon as it has run: its records reach the
            # database (and the progress) at once, so a crash keeps them. The default
            # gradient scheduler joins nothing until every task had a first batch.
            task_scheduler="round-robin",
            measure_callbacks=[
                *ms.measure_callback.MeasureCallback.create("default"),
                _progress_callback(out, names, int(job["trials"])),
            ],
        )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
