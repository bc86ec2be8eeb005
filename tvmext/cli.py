"""The ``tvmext`` command line, also installed as ``tvmc``, with tvmc's flag names.

    tvmext compile MODEL [--target T] [-o OUT.so] [--input-shapes S] [--report] [--plugin P ...]
                         [--shape-bounds "batch=1..64 seq=1..512"]
                         [--keep-params-in-input]   (also writes OUT.params.npz)
                         [--precision bf16 [--calibration-inputs in.npz] [--max-rel-error E]]
                         [--emit-app DIR]           (DIR/run runs it without Python)
    tvmext run ARTIFACT [--inputs in.npz] [--params w.npz] [--outputs out.npz]
                        [--print-time] [--print-top K] [--report]
    tvmext tune MODEL [--target T] [--trials N] [--timeout S] -o records.json
                      [--rpc-tracker HOST:PORT --rpc-key KEY]
    tvmext rpc-server --tracker HOST:PORT --key KEY [--host 127.0.0.1] [--port P]
    tvmext ops [--plugin P ...]
    tvmext native-flags [--cflags | --ldflags]   (to build a layer library outside tvmext)

TVM is imported only once a command needs it, so ``--help`` and usage errors answer
at once. A user error prints one line and exits 1 (``--verbose`` adds the
traceback); a usage error exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from tvmext.compile_options import PRECISIONS
from tvmext.errors import TvmextError

EXIT_ERROR = 1


def _add_common(parser: argparse.ArgumentParser, plugins: bool = True) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    if plugins:
        parser.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="P",
            help="module name, .py file or installed plugin to load first (repeatable)",
        )


def _add_model_args(parser: argparse.ArgumentParser, default_target: str | None) -> None:
    parser.add_argument(
        "model", help="ONNX model file, or a PyTorch program (.pt2, written by torch.export.save)"
    )
    parser.add_argument(
        "--target",
        default=default_target,
        help='tvmc-style target, external targets first: "llvm", "dnnl, llvm", '
        '"llvm -mcpu=znver4" (default: '
        + (
            default_target + " for this host CPU)"
            if default_target
            else 'the fastest this host has, "dnnl, llvm" on x86-64 with oneDNN, else llvm)'
        ),
    )
    parser.add_argument(
        "--input-shapes",
        default=None,
        metavar="S",
        help='shapes of dynamic inputs, e.g. "x:[1,3,224,224] y:[10]"',
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (no TVM import)."""
    parser = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "tvmext",
        description="Compile, run and tune models with tvmext (TVM plugins, no TVM rebuild).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compile_cmd = commands.add_parser("compile", help="compile a model into one .so")
    _add_model_args(compile_cmd, None)
    compile_cmd.add_argument("-o", "--output", default=None, help="artifact (default MODEL.so)")
    compile_cmd.add_argument("--dump-ir", default=None, metavar="DIR", help="IR after each stage")
    compile_cmd.add_argument("--tuning-records", default=None, metavar="FILE")
    compile_cmd.add_argument("-O", "--opt-level", type=int, default=3, choices=range(5))
    compile_cmd.add_argument(
        "--fallback-to-tvm",
        action="store_true",
        help="if an external target's generated code fails to compile, run its ops on TVM",
    )
    compile_cmd.add_argument(
        "--report",
        action="store_true",
        help="print, per op, FLOPs, bytes and where it runs (external target or TVM, and why)",
    )
    compile_cmd.add_argument(
        "--verify-schedules",
        action="store_true",
        help="run every scheduled PrimFunc against its unscheduled loops on random inputs; "
        "fail naming the first that differs",
    )
    compile_cmd.add_argument(
        "--keep-params-in-input",
        action="store_true",
        help="keep the weights out of the artifact (written to OUT.params.npz); "
        "'run --params' binds them",
    )
    compile_cmd.add_argument(
        "--shape-bounds",
        default=None,
        metavar="B",
        help='bounds of symbolic dims, e.g. "batch=1..64 seq=1..512" (with --input-shapes '
        '"input_ids:[batch,seq]" or the model\'s own names); a run outside one fails',
    )
    compile_cmd.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="what the external target's convolutions and matmuls compute in (bf16: oneDNN "
        "on CPUs with AVX512-BF16 or AMX); a reduced precision prints its error against fp32",
    )
    compile_cmd.add_argument(
        "--calibration-inputs",
        default=None,
        metavar="in.npz",
        help="inputs the reduced-precision error is measured on (default: random inputs)",
    )
    compile_cmd.add_argument(
        "--max-rel-error",
        type=float,
        default=None,
        metavar="E",
        help="fail (and write nothing) when an output's error relative to fp32 exceeds E",
    )
    compile_cmd.add_argument(
        "--emit-app",
        default=None,
        metavar="DIR",
        help="also write a standalone application folder: DIR/run (a native program, no "
        "Python), DIR/model.so, DIR/lib/ (the runtime libraries), DIR/src/, DIR/README.md",
    )
    _add_common(compile_cmd)

    run_cmd = commands.add_parser("run", help="run a compiled artifact")
    run_cmd.add_argument("artifact", help="a .so written by 'compile'")
    run_cmd.add_argument("--inputs", default=None, help=".npz with one array per input name")
    run_cmd.add_argument(
        "--params",
        default=None,
        help=".npz with one array per weight (artifacts compiled with --keep-params-in-input)",
    )
    run_cmd.add_argument("--outputs", default=None, help=".npz to write output_0, output_1, ...")
    run_cmd.add_argument(
        "--fill-mode",
        choices=("random", "ones", "zeros"),
        default="random",
        help="inputs to use without --inputs (default random)",
    )
    run_cmd.add_argument("--print-time", action="store_true", help="time the model")
    run_cmd.add_argument("--repeat", type=_positive, default=10, help="timing measurements")
    run_cmd.add_argument("--number", type=_positive, default=5, help="runs per measurement")
    run_cmd.add_argument(
        "--profile",
        action="store_true",
        help="print the time of every kernel and external call, slowest first (--repeat runs)",
    )
    run_cmd.add_argument("--print-top", type=int, default=None, metavar="K")
    run_cmd.add_argument(
        "--report",
        action="store_true",
        help="print the artifact's accuracy report (reduced-precision artifacts)",
    )
    run_cmd.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    _add_common(run_cmd, plugins=False)

    tune_cmd = commands.add_parser(
        "tune",
        help="tune the model's schedules with MetaSchedule; write (or resume) tuning records",
    )
    _add_model_args(tune_cmd, "llvm")
    tune_cmd.add_argument(
        "--trials", type=_positive, default=64, help="candidates to measure, all tasks together"
    )
    tune_cmd.add_argument(
        "-o",
        "--output",
        required=True,
        help="records file (.json); an existing one is resumed from and extended",
    )
    tune_cmd.add_argument(
        "--timeout",
        type=_positive,
        default=60,
        metavar="S",
        help="seconds a candidate may take to build, and to run (default 60)",
    )
    tune_cmd.add_argument(
        "--rpc-tracker",
        default=None,
        metavar="HOST:PORT",
        help="measure candidates on the RPC servers of this tracker (built here)",
    )
    tune_cmd.add_argument("--rpc-key", default=None, metavar="KEY", help="the servers' key")
    tune_cmd.add_argument(
        "--session-timeout",
        type=_positive,
        default=60,
        metavar="S",
        help="seconds a server may take for one candidate (default 60)",
    )
    _add_common(tune_cmd)

    server_cmd = commands.add_parser(
        "rpc-server", help="serve candidates to 'tune --rpc-tracker' (a TVM RPC server)"
    )
    server_cmd.add_argument("--tracker", required=True, metavar="HOST:PORT")
    server_cmd.add_argument("--key", required=True, help="the key tuning asks for")
    server_cmd.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default loopback only)"
    )
    server_cmd.add_argument(
        "--port", type=_positive, default=9090, help="first port to try (default 9090)"
    )
    _add_common(server_cmd, plugins=False)

    ops_cmd = commands.add_parser("ops", help="list ops, passes, targets and plugins")
    _add_common(ops_cmd)

    flags_cmd = commands.add_parser(
        "native-flags",
        help="compiler and linker flags for building a native layer library outside tvmext",
    )
    flags_cmd.add_argument("--cflags", action="store_true", help="only the compiler flags")
    flags_cmd.add_argument("--ldflags", action="store_true", help="only the linker flags")
    _add_common(flags_cmd, plugins=False)
    return parser


def _compile(args: argparse.Namespace) -> None:
    import tvmext

    output = args.output or os.path.splitext(os.path.basename(args.model))[0] + ".so"
    if args.emit_app:
        from tvmext.deploy.app import check_app_folder

        check_app_folder(args.emit_app)  # before compiling, not after
    if args.target is None:
        from tvmext.target.host_default import default_target

        chosen = default_target(tuned=bool(args.tuning_records))
        print(chosen.announcement(), flush=True)
        args.target = chosen.target
        args.fallback_to_tvm = args.fallback_to_tvm or chosen.target != "llvm"
    start = time.perf_counter()
    module = tvmext.compile(
        args.model,
        args.target,
        plugins=args.plugin,
        input_shapes=args.input_shapes,
        shape_bounds=args.shape_bounds,
        dump_ir=args.dump_ir,
        tuning_records=args.tuning_records,
        opt_level=args.opt_level,
        fallback_to_tvm=args.fallback_to_tvm,
        keep_params_in_input=args.keep_params_in_input,
        verify_schedules=args.verify_schedules,
        precision=args.precision,
        calibration_inputs=args.calibration_inputs,
        max_rel_error=args.max_rel_error,
    )
    module.export(output)
    inputs = ", ".join(map(str, module.inputs))
    print(f"compiled {args.model} for {args.target!r} in {time.perf_counter() - start:.1f} s")
    print(f"wrote {output} (inputs {inputs})")
    if args.report:
        for report in module.reports:
            print(report)
        if not module.reports:
            print(f"no external target in {args.target!r}: every op runs on TVM")
    weights = _model_weights(args.model, module.param_names) if module.params else None
    if weights is not None:
        params_path = os.path.splitext(output)[0] + ".params.npz"
        _write_weights(weights, params_path)
        print(f"wrote {params_path} ({len(module.params)} weights; run --params binds them)")
    if args.emit_app:
        folder = module.export_app(args.emit_app, params=weights)
        libs = ", ".join(sorted(os.listdir(os.path.join(folder, "lib"))))
        print(f"wrote {args.emit_app}/ (lib/: {libs}); run it: {args.emit_app}/run --help")


def _model_weights(model: str, names: Sequence[str]) -> dict[str, Any]:
    """The model's weights named ``names``: an ONNX model's initializers (TVM drops an
    ``onnx::`` prefix), a PyTorch program's parameters (by their input names)."""
    if model.endswith(".pt2"):
        from tvmext.torch.program import parameter_values

        return parameter_values(model, names)
    import onnx
    from onnx import numpy_helper

    weights = {
        init.name.removeprefix("onnx::"): numpy_helper.to_array(init)
        for init in onnx.load(model).graph.initializer
    }
    return {n: weights[n] for n in names}


def _write_weights(weights: dict[str, Any], path: str) -> None:
    import numpy as np

    from tvmext.atomic_file import atomic_output

    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **weights)


def _write_outputs(path: str, outputs: Sequence[Any]) -> None:
    import numpy as np

    from tvmext.atomic_file import atomic_output

    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{f"output_{i}": o for i, o in enumerate(outputs)})


def _run(args: argparse.Namespace) -> None:
    import numpy as np

    from tvmext.runtime.module import load, random_inputs, read_arrays

    module = load(args.artifact, args.device)
    if module.params and not args.params:
        raise TvmextError(
            f"{args.artifact!r} takes its weights at run time ({', '.join(module.param_names)}): "
            f"pass them with --params FILE.npz (compile wrote one next to the artifact)"
        )
    if args.params:
        module.set_params(**read_arrays(args.params, module.param_names, "weight"))
    if args.inputs:
        inputs = read_arrays(args.inputs, module.input_names)
    else:
        arrays = random_inputs(module.inputs)
        fill = {"ones": np.ones_like, "zeros": np.zeros_like}.get(args.fill_mode)
        inputs = {
            spec.name: fill(a) if fill else a for spec, a in zip(module.inputs, arrays, strict=True)
        }
    if args.report:
        print(module.accuracy or f"{args.artifact} computes in fp32: no accuracy report")
    outputs = module.run(**inputs)
    if args.outputs:
        _write_outputs(args.outputs, outputs)
        print(f"wrote {len(outputs)} output(s) to {args.outputs}")
    if args.print_top:
        for i, out in enumerate(outputs):
            flat = out.reshape(-1)
            top = np.argsort(-flat, kind="stable")[: args.print_top]
            ranked = ", ".join(f"{int(j)}: {flat[j]:.6g}" for j in top)
            print(f"output_{i} top-{len(top)} (index: value): {ranked}")
    if args.print_time:
        result = module.benchmark(repeat=args.repeat, number=args.number, **inputs)
        print("Execution time summary:")
        print(
            f" {'mean (ms)':>10} {'median (ms)':>12} {'max (ms)':>10} {'min (ms)':>10} "
            f"{'std (ms)':>10}"
        )
        print(
            f" {result.mean * 1e3:10.4f} {result.median * 1e3:12.4f} {result.max * 1e3:10.4f} "
            f"{result.min * 1e3:10.4f} {result.std * 1e3:10.4f}"
        )
    if args.profile:
        print(f"Profile (mean per run of {args.repeat}):")
        print(module.profile(repeat=args.repeat, **inputs))
    if not (args.outputs or args.print_top or args.print_time or args.profile):
        shapes = ", ".join(f"{list(o.shape)} {o.dtype}" for o in outputs)
        print(f"ran {args.artifact}: {len(outputs)} output(s): {shapes}")


def _tune(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    import tvmext
    from tvmext.atomic_file import check_folder
    from tvmext.tuning.rpc import parse_tracker

    check_folder(args.output)  # before the search, not after it
    rpc = None
    if args.rpc_tracker or args.rpc_key:
        rpc = parse_tracker(args.rpc_tracker or "", args.rpc_key, args.session_timeout)
    bar = tqdm(total=args.trials, desc="tuning", unit="trial", file=sys.stderr)

    def progress(update: Any) -> None:
        bar.update(update.trials - bar.n)
        best = update.best_seconds.get(update.task)
        bar.set_postfix_str(
            f"{update.task}: best {best * 1e3:.3f} ms" if best else update.task, refresh=True
        )

    try:
        result = tvmext.tune(
            args.model,
            args.target,
            records=args.output,
            trials=args.trials,
            plugins=args.plugin,
            rpc=rpc,
            input_shapes=args.input_shapes,
            progress=progress,
            timeout_s=args.timeout,
        )
    finally:
        bar.close()
    print(
        f"tuned {args.model} in {result.seconds:.1f} s: {result.trials} trials "
        f"({result.failed} failed) over {len(result.tasks)} tasks; wrote {args.output}"
    )
    tuned_for = json.loads(result.records.target)
    flags = "".join(f" -{k}={tuned_for[k]}" for k in ("mcpu", "mtriple") if k in tuned_for)
    print(f"  compile with: --target 'llvm{flags}' --tuning-records {args.output}")
    for task in result.tasks:
        best = result.best_seconds.get(task)
        print(f"  {task}: " + (f"best {best * 1e3:.4f} ms" if best else "no candidate measured"))


def _rpc_server(args: argparse.Namespace) -> None:
    from tvmext.tuning.rpc import parse_tracker
    from tvmext.tuning.rpc_server import serve

    tracker = parse_tracker(args.tracker, args.key)
    serve(tracker, args.host, args.port)


def _ops(args: argparse.Namespace) -> None:
    from tvmext.plugins import installed_plugins, load_plugins

    load_plugins(args.plugin)  # first: it also registers tvmext's own ops
    import tvmext.compiler  # noqa: F401  (loads the ONNX converters and passes it runs)
    from tvmext.onnx import registry as onnx_registry
    from tvmext.opdef.declaration import OPS
    from tvmext.pass_registry import PASSES, PHASES
    from tvmext.target.external import TARGETS, load_installed_targets

    load_installed_targets()  # with their passes

    print("ops:")
    for entry in sorted(OPS, key=lambda e: e.key):
        print(f"  {entry.key:32} {entry.origin}")
    print("onnx mappings:")
    for m in sorted(onnx_registry.all_mappings(), key=lambda m: (m.domain, m.op_type)):
        print(
            f"  {(m.domain or 'ai.onnx') + '::' + m.op_type:32} -> "
            f"{onnx_registry.describe(m)} (opset >= {m.since_version}) {m.origin}"
        )
    print("passes (in the order they run):")
    for p in sorted(PASSES, key=lambda e: (PHASES.index(e.value.phase), e.value.priority)):
        only = ", inference only" if p.value.inference_only else ""
        print(
            f"  {p.key:32} {p.value.phase} {p.value.priority}{only}, "
            f"targets {','.join(p.value.targets)} {p.origin}"
        )
    print("targets:")
    print(f"  {'llvm, cuda':32} (TVM)")
    for t in sorted(TARGETS, key=lambda e: e.key):
        print(f"  {t.key:32} {t.origin}")
    print("installed plugins:", ", ".join(installed_plugins()) or "none")


def _native_flags(args: argparse.Namespace) -> None:
    import shlex

    from tvmext import native

    both = not (args.cflags or args.ldflags)
    flags = [
        *(native.compile_flags() if args.cflags or both else []),
        *(native.link_flags() if args.ldflags or both else []),
    ]
    print(shlex.join(flags))


COMMANDS = {
    "compile": _compile,
    "run": _run,
    "tune": _tune,
    "rpc-server": _rpc_server,
    "ops": _ops,
    "native-flags": _native_flags,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tvmext`` / ``tvmc``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (TvmextError, OSError) as err:
        if args.verbose:
            traceback.print_exc()
        message = " ".join(str(err).split("\n")[0].split()) or type(err).__name__
        print(f"{args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def main_exit() -> None:
    """Console-script entry point: exit with :func:`main`'s status."""
    sys.exit(main())
