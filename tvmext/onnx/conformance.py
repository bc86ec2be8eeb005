"""ONNX node conformance: run the ``onnx`` package's node test cases through an importer.

Official protocol: every graph input is a runtime input, outputs must have the exact
dtype and shape and match within rtol 1e-3, atol 1e-7. Two importers can be run in
the same session: ``tvmext`` (``tvmext.compile``) and ``tvm`` (stock
``relax.frontend.onnx.from_onnx`` + ``tvm.compile``).

Cases run in worker processes that report one JSON line per case; a case that crashes
or hangs its worker is recorded as such and the worker is restarted after it. Cases
whose values a TVM runtime tensor cannot hold (strings, sequences, optionals) are
counted as ``unsupported`` with that reason, for either importer.

    python -m tvmext.onnx.conformance --importer both --jobs 2
    python -m tvmext.onnx.conformance --importer both --table families.md  # per family
    python -m tvmext.onnx.conformance --record passing.txt      # write the pass list
    python -m tvmext.onnx.conformance --check passing.txt       # exit 1 on regressions
    python -m tvmext.onnx.conformance --check passing.txt --sample sample.txt
        # also write the cases that run every tvmext line the passing ones run
        # (:mod:`tvmext.onnx.conformance_sample`)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tvmext.onnx.conformance_sample import covering_sample, lines_run

RTOL, ATOL = 1e-3, 1e-7
CASE_TIMEOUT_S = 120
_MARK = "@@tvmext-conformance@@ "  # worker lines for the parent; TVM prints to stdout too


def collect() -> dict[str, Any]:
    """The node test cases of the installed ``onnx`` package, by name."""
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {case.name: case for case in collect_testcases(None)}


def _compare(got: Sequence[Any], expected: Sequence[Any]) -> str | None:
    import numpy as np

    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        e = np.asarray(e)
        if g.dtype != e.dtype:
            return f"output {i}: dtype {g.dtype}, expected {e.dtype}"
        if g.shape != e.shape:
            return f"output {i}: shape {g.shape}, expected {e.shape}"
        if not (np.issubdtype(e.dtype, np.number) or e.dtype == np.bool_):
            # ml_dtypes (bfloat16, float8, int4, ...): compare the values they hold.
            g, e = g.astype(np.float64), e.astype(np.float64)
        try:
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)
        except AssertionError:
            return f"output {i}: values differ beyond rtol={RTOL}, atol={ATOL}"
    return None


def run_case(case: Any, importer: str) -> tuple[str, str]:
    """Run one case; return (status, detail) with status pass, fail or error."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    # Test data in types NumPy lacks (bfloat16, float8, int4, ...) is stored as
    # TensorProto; to_array gives the ml_dtypes array, as onnx's own backend runner does.
    inputs, expected = (
        [numpy_helper.to_array(a) if isinstance(a, TensorProto) else a for a in arrays]
        for arrays in case.data_sets[0]
    )
    if not all(isinstance(a, np.ndarray | np.generic) for a in [*inputs, *expected]):
        return "unsupported", "sequence or optional values: a TVM runtime passes tensors only"
    inputs = [np.asarray(a) for a in inputs]
    expected = [np.asarray(a) for a in expected]
    if any(a.dtype.kind in "OSU" for a in [*inputs, *expected]):
        return "unsupported", "string tensors: a TVM runtime tensor cannot hold strings"
    try:
        if importer == "tvm":
            import tvm
            from tvm import relax
            from tvm.relax.frontend.onnx import from_onnx

            from tvmext.runtime.module import flatten_outputs

            executable = tvm.compile(from_onnx(case.model), target="llvm")
            vm = relax.VirtualMachine(executable, tvm.cpu())
            result = vm["main"](*[tvm.runtime.tensor(a) for a in inputs])
            got = flatten_outputs(result)
        else:
            import tvmext

            got = tvmext.compile(case.model, "llvm").run(*inputs)
    except Exception as err:
        return (
            "error",
            f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}",
        )
    problem = _compare(got, expected)
    return ("fail", problem) if problem else ("pass", "")


def _worker(importer: str, names: Sequence[str], trace: bool) -> None:
    cases = collect()
    for name in names:
        print(_MARK + json.dumps({"start": name}), flush=True)
        tracing: contextlib.AbstractContextManager[set[str]] = (
            lines_run() if trace else contextlib.nullcontext(set())
        )
        with tracing as lines:
            status, detail = run_case(cases[name], importer)
        message = {"name": name, "status": status, "detail": detail, "lines": sorted(lines)}
        print(_MARK + json.dumps(message), flush=True)


def _run_chunk(
    importer: str,
    names: list[str],
    results: dict[str, tuple[str, str]],
    lines: dict[str, set[str]] | None,
) -> None:
    """Run ``names`` in worker processes, restarting after a crash or hang; with
    ``lines``, also record the tvmext lines each case runs there."""
    remaining = list(names)
    while remaining:
        command = [sys.executable, "-m", "tvmext.onnx.conformance"]
        command += ["--trace-lines"] if lines is not None else []
        command += ["--worker", importer]
        proc = subprocess.Popen(
            [*command, *remaining],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "TVM_NUM_THREADS": "1"},
        )
        current: str | None = None
        timer = threading.Timer(CASE_TIMEOUT_S, proc.kill)
        timer.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith(_MARK):
                continue
            message = json.loads(line[len(_MARK) :])
            timer.cancel()
            timer = threading.Timer(CASE_TIMEOUT_S, proc.kill)
            timer.start()
            if "start" in message:
                current = message["start"]
                continue
            results[message["name"]] = (message["status"], message["detail"])
            if lines is not None:
                lines[message["name"]] = set(message["lines"])
            remaining.remove(message["name"])
            current = None
        timer.cancel()
        code = proc.wait()
        if current is not None:
            results[current] = (
                "crash",
                f"worker died (exit {code}) or exceeded {CASE_TIMEOUT_S} s",
            )
            remaining.remove(current)
        elif remaining and code != 0:
            for name in remaining:
                results[name] = ("crash", f"worker exited with {code} before the case")
            return


def run(
    importer: str,
    names: Iterable[str],
    jobs: int = 2,
    lines: dict[str, set[str]] | None = None,
) -> dict[str, tuple[str, str]]:
    """Run the named cases through ``importer`` using ``jobs`` worker processes; with
    ``lines``, also fill it with the tvmext lines each case runs."""
    names = sorted(names)
    results: dict[str, tuple[str, str]] = {}
    chunks = [names[i::jobs] for i in range(jobs)]
    threads = [
        threading.Thread(target=_run_chunk, args=(importer, c, results, lines)) for c in chunks
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def family(name: str, cases: Mapping[str, Any]) -> str:
    """The operator a case tests: the op of its model's single node kind, else the
    longest ONNX op name its name starts with (``*_expanded`` cases count with their op)."""

    base = cases.get(re.sub(r"_expanded(_ver\d+)?$", "", name), cases[name])
    ops = {(n.domain, n.op_type) for n in base.model.graph.node if n.op_type != "Constant"}
    if len(ops) == 1:
        domain, op_type = ops.pop()
        return op_type if domain in ("", "ai.onnx") else domain
    compact = name.removeprefix("test_").replace("_", "").lower()
    return next((op for op in _op_names_longest_first() if compact.startswith(op.lower())), "other")


@functools.cache
def _op_names_longest_first() -> list[str]:
    import onnx

    return sorted({s.name for s in onnx.defs.get_all_schemas()}, key=len, reverse=True)


def family_table(all_results: Mapping[str, Mapping[str, tuple[str, str]]]) -> str:
    """A Markdown table: cases per operator family and how many each importer passes,
    families with failures first (most failing cases first)."""
    cases = collect()
    importers = list(all_results)
    families = {name: family(name, cases) for name in next(iter(all_results.values()))}
    rows = {f: {"cases": 0, **dict.fromkeys(importers, 0)} for f in families.values()}
    for f in families.values():
        rows[f]["cases"] += 1
    for importer, results in all_results.items():
        for name, (status, _) in results.items():
            rows[families[name]][importer] += status == "pass"
    first = importers[0]
    order = sorted(rows, key=lambda f: (rows[f][first] - rows[f]["cases"], f))
    lines = [
        "| family | cases | " + " | ".join(importers) + " |",
        "|---|---:|" + "---:|" * len(importers),
    ]
    lines += [
        f"| {f} | {rows[f]['cases']} | " + " | ".join(str(rows[f][i]) for i in importers) + " |"
        for f in order
    ]
    total = {k: sum(r[k] for r in rows.values()) for k in ["cases", *importers]}
    lines.append(
        f"| **all** | {total['cases']} | " + " | ".join(f"**{total[i]}**" for i in importers) + " |"
    )
    return "\n".join(lines) + "\n"


def _summary(importer: str, results: dict[str, tuple[str, str]], seconds: float) -> str:
    counts: dict[str, int] = {}
    for status, _ in results.values():
        counts[status] = counts.get(status, 0) + 1
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return (
        f"{importer:7} passed {counts.get('pass', 0)} of {len(results)} node cases "
        f"({detail}) in {seconds:.0f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description="ONNX node conformance of tvmext and TVM")
    parser.add_argument("--importer", choices=("tvmext", "tvm", "both"), default="tvmext")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    parser.add_argument("--exclude", default=None, help="skip cases whose name contains this")
    parser.add_argument("--record", default=None, help="write tvmext's passing cases here")
    parser.add_argument("--check", default=None, help="fail if a case listed here fails")
    parser.add_argument("--report", default=None, help="write every result as JSON here")
    parser.add_argument("--table", default=None, help="write a per-family Markdown table here")
    parser.add_argument(
        "--sample",
        default=None,
        help="write the passing cases that run every tvmext line the passing cases run, "
        "and --per-family of each operator family, here",
    )
    parser.add_argument("--per-family", type=int, default=1)
    parser.add_argument("--trace-lines", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], args.worker[1:], args.trace_lines)
        return 0
    if args.check:
        with open(args.check) as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = list(collect())
    names = [n for n in names if args.only in n and not (args.exclude and args.exclude in n)]
    importers = ["tvmext", "tvm"] if args.importer == "both" else [args.importer]
    all_results = {}
    lines: dict[str, set[str]] = {}
    for importer in importers:
        start = time.perf_counter()
        traced = lines if args.sample and importer == "tvmext" else None
        all_results[importer] = run(importer, names, args.jobs, traced)
        print(_summary(importer, all_results[importer], time.perf_counter() - start), flush=True)
    ours = all_results.get("tvmext", {})
    if args.report:
        with open(args.report, "w") as f:
            json.dump(all_results, f, indent=1, sort_keys=True)
    if args.table:
        with open(args.table, "w") as f:
            f.write(family_table(all_results))
    if args.record and ours:
        with open(args.record, "w") as f:
            f.writelines(f"{n}\n" for n, (s, _) in sorted(ours.items()) if s == "pass")
    if args.sample and ours:
        passing = {n: lines[n] for n, (s, _) in ours.items() if s == "pass"}
        cases = collect()
        families = {n: family(n, cases) for n in passing}
        with open(args.sample, "w") as f:
            f.writelines(f"{n}\n" for n in covering_sample(passing, families, args.per_family))
    if args.check:
        regressions = sorted(n for n, (s, _) in ours.items() if s != "pass")
        for name in regressions:
            print(f"REGRESSION {name}: {ours[name][0]}: {ours[name][1]}")
        return 1 if regressions else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
