"""Reduced precision (``precision="bf16"``): oneDNN's convolutions and matmuls in bf16,
the accuracy report against fp32 (its numbers recomputed here), the report kept in the
artifact, the error bound, and the refusals (no external target, a CPU without bf16
kernels: simulated by capping oneDNN's instruction set in a child process)."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
import torch
import tvm
from conftest import python_with_onednn_isa
from model_zoo import export
from test_dnnl_capabilities import CASES
from tvm import relax

import tvmext
from tvmext.cli import main as cli_main
from tvmext.errors import CompileError
from tvmext.runtime.accuracy import AccuracyReport, compare
from tvmext.target.dnnl import DnnlTarget

pytestmark = pytest.mark.onednn

HAS_BF16 = DnnlTarget().precision_refusal("bf16") is None
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="oneDNN has no bf16 kernels on this CPU")

# bf16 keeps 8 bits of mantissa: a product's relative rounding is 2^-9, and what sums
# of hundreds of such products and a few layers give on well-scaled weights.
BF16_REL_ERROR = 3e-2


def _conv_dense_model(rng: np.random.Generator) -> tvm.IRModule:
    """conv 3×3 + bias + ReLU -> flatten -> dense to 10 classes."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 16, 12, 12), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            w = relax.const((rng.standard_normal((32, 16, 3, 3)) * 0.1).astype("float32"))
            b = relax.const(rng.standard_normal((1, 32, 1, 1)).astype("float32"))
            y = bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(x, w, padding=1) + b))
            y = bb.emit(relax.op.reshape(y, (2, 32 * 12 * 12)))
            d = relax.const((rng.standard_normal((32 * 12 * 12, 10)) * 0.02).astype("float32"))
            out = bb.emit_output(relax.op.matmul(y, d))
        bb.emit_func_output(out)
    return bb.get()


def test_compare_recomputes_the_report() -> None:
    reference = np.array([[1.0, 3.0, 2.0], [0.5, -1.0, 0.25]], np.float32)
    result = np.array([[1.0, 2.0, 2.5], [0.5, -1.0, 0.3]], np.float32)
    report = compare("bf16", "given", [reference], [result])
    (out,) = report.outputs
    assert out.max_abs_error == pytest.approx(1.0)
    assert out.rel_error == pytest.approx(1.0 / 3.0)
    cosine = float(np.dot(reference.ravel(), result.ravel()))
    cosine /= float(np.linalg.norm(reference) * np.linalg.norm(result))
    assert out.cosine == pytest.approx(cosine)
    assert out.top1 == pytest.approx(0.5)  # row 0's top class moved from 1 to 2
    assert out.top5 == pytest.approx(1.0)  # 3 classes: every class is in the top 5
    assert AccuracyReport.from_json(report.to_json()) == report
    assert "output_0" in str(report) and "bf16" in str(report)


def test_reduced_precision_needs_an_external_target() -> None:
    mod = _conv_dense_model(np.random.default_rng(0))
    with pytest.raises(CompileError, match=r"precision 'bf16'.*target 'llvm' has none"):
        tvmext.compile(mod, "llvm", precision="bf16")
    with pytest.raises(CompileError, match="precision must be one of fp32, bf16"):
        tvmext.compile(mod, "dnnl, llvm", precision="fp16")
    with pytest.raises(CompileError, match="give precision='bf16'"):
        tvmext.compile(mod, "dnnl, llvm", max_rel_error=0.1)
    with pytest.raises(CompileError, match="max_rel_error must be >= 0, got -1"):
        tvmext.compile(mod, "dnnl, llvm", precision="bf16", max_rel_error=-1)


def test_bf16_is_refused_where_onednn_has_no_bf16_kernels() -> None:
    """oneDNN capped at AVX-512 without BF16 (what an AVX-512 CPU without it offers)."""
    script = (
        "import numpy as np, tvmext, test_precision as t\n"
        "tvmext.compile(t._conv_dense_model(np.random.default_rng(0)), 'dnnl, llvm', "
        "precision='bf16')\n"
    )
    done = python_with_onednn_isa(script, "AVX512_CORE")
    assert done.returncode != 0
    assert "bf16 needs a CPU with AVX512-BF16" in done.stderr, done.stderr[-2000:]
    assert "instruction set here is avx" in done.stderr


@needs_bf16
def test_bf16_runs_on_bf16_kernels_within_the_reported_error(rng, tmp_path) -> None:
    mod = _conv_dense_model(rng)
    x = rng.standard_normal((2, 16, 12, 12)).astype("float32")
    np.savez(tmp_path / "calibration.npz", x=x)
    fp32 = tvmext.compile(mod, "dnnl, llvm")
    bf16 = tvmext.compile(
        mod, "dnnl, llvm", precision="bf16", calibration_inputs=str(tmp_path / "calibration.npz")
    )
    (report,) = bf16.reports
    kernels = [line for line in str(report).splitlines() if "dnnl.conv2d" in line]
    assert kernels and all("avx512_core_bf16" in k or "amx" in k for k in kernels), str(report)
    want, got = fp32.run(x)[0], bf16.run(x)[0]
    rel = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    assert 0 < rel < BF16_REL_ERROR  # bf16 differs from fp32, within bf16's rounding
    assert bf16.accuracy is not None and fp32.accuracy is None
    (out,) = bf16.accuracy.outputs
    assert bf16.accuracy.inputs == "calibration.npz"
    assert out.rel_error == pytest.approx(rel, rel=1e-6)
    assert out.top1 is not None and out.top1 >= 0.5


@needs_bf16
def test_the_artifact_keeps_its_accuracy_report(rng, tmp_path, capsys) -> None:
    mod = _conv_dense_model(rng)
    module = tvmext.compile(mod, "dnnl, llvm", precision="bf16")
    assert "accuracy of bf16 against fp32 on random inputs" in capsys.readouterr().err
    path = module.export(tmp_path / "model.so")
    loaded = tvmext.load(path)
    assert loaded.accuracy == module.accuracy
    assert cli_main(["run", path, "--report"]) == 0
    assert str(module.accuracy) in capsys.readouterr().out
    fp32 = tvmext.compile(mod, "dnnl, llvm").export(tmp_path / "fp32.so")
    assert tvmext.load(fp32).accuracy is None


@needs_bf16
def test_an_error_over_the_bound_fails_the_compile_and_writes_nothing(tmp_path, capsys) -> None:
    model = tmp_path / "model.onnx"
    path, _, _ = export("resnet", str(tmp_path))
    os.replace(path, model)
    output = tmp_path / "model.so"
    code = cli_main(
        ["compile", str(model), "--precision", "bf16", "--max-rel-error", "1e-7", "-o",
         str(output)]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "further from fp32 than --max-rel-error 1e-07 allows" in err
    assert "no artifact written" in err
    assert not output.exists() and sorted(os.listdir(tmp_path)) == ["model.onnx"]


@needs_bf16
@pytest.mark.parametrize("name", ["resnet", "bert"])
def test_zoo_models_in_bf16_stay_close_to_fp32(name, tmp_path) -> None:
    """A CNN and a text encoder of the zoo: bf16 against ONNX Runtime's fp32."""
    path, inputs, _ = export(name, str(tmp_path))
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, inputs)[0]
    module = tvmext.compile(path, "dnnl, llvm", precision="bf16")
    got = module.run(**inputs)[0]
    rel = float(np.max(np.abs(got - want)) / np.max(np.abs(want)))
    assert rel < BF16_REL_ERROR, f"{name}: bf16 differs from fp32 by {rel:.2e}"
    assert module.accuracy is not None
    assert module.accuracy.max_rel_error < BF16_REL_ERROR
    assert module.accuracy.outputs[0].cosine > 0.999


@needs_bf16
def test_every_convolution_kind_and_a_batched_matmul_run_in_bf16() -> None:
    """The convolutions of test_dnnl_capabilities (1-D, grouped, 3-D, dilated,
    transposed) and attention scores (a batched matmul of two activations plus a
    broadcast mask), in one module: each within bf16's error of PyTorch's fp32."""
    cases = {name: case for name, case in CASES.items() if "conv" in name}
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((8, 3, 49, 32), (8, 3, 32, 49)))
    mask = rng.standard_normal((1, 3, 49, 49)).astype(np.float32)
    inputs = [rng.standard_normal(shapes[0]).astype(np.float32) for shapes, _, _ in cases.values()]
    bb = relax.BlockBuilder()
    params = [
        relax.Var(f"x{i}", relax.TensorType(x.shape, "float32")) for i, x in enumerate(inputs)
    ]
    q, k = (relax.Var(n, relax.TensorType(x.shape, "float32")) for n, x in (("q", a), ("k", b)))
    with bb.function("main", [*params, q, k]):
        with bb.dataflow():
            outs = [
                bb.emit(build(bb, [p]))
                for p, (_, build, _) in zip(params, cases.values(), strict=True)
            ]
            outs.append(bb.emit(relax.op.add(relax.op.matmul(q, k), relax.const(mask))))
            out = bb.emit_output(relax.Tuple(outs))
        bb.emit_func_output(out)
    module = tvmext.compile(bb.get(), "dnnl, llvm", precision="bf16")
    (report,) = module.reports
    heavy = [o for o in report.ops if o.op.startswith(("relax.nn.conv", "relax.matmul"))]
    assert len(heavy) == len(outs) and all(o.placement == "dnnl" for o in heavy), str(report)
    got = module.run(*inputs, a, b)
    wants = [reference(torch.from_numpy(x)).numpy() for x, (_, _, reference) in
             zip(inputs, cases.values(), strict=True)]  # fmt: skip
    wants.append(a @ b + mask)
    for name, g, w in zip([*cases, "attention scores"], got, wants, strict=True):
        rel = float(np.max(np.abs(g - w)) / np.max(np.abs(w)))
        assert rel < BF16_REL_ERROR, f"{name}: bf16 differs from fp32 by {rel:.2e}"


@needs_bf16
def test_a_model_with_symbolic_inputs_needs_calibration_inputs(rng, tmp_path) -> None:
    n = tvm.tirx.Var("n", "int64")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((n, 64), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            w = relax.const(rng.standard_normal((64, 32)).astype("float32"))
            out = bb.emit_output(relax.op.matmul(x, w))
        bb.emit_func_output(out)
    with pytest.raises(CompileError, match=r"accuracy report needs inputs: input x.*--calibr"):
        tvmext.compile(bb.get(), "dnnl, llvm", precision="bf16")
    np.savez(tmp_path / "wrong.npz", y=np.zeros(3, "float32"))
    with pytest.raises(CompileError, match=r"calibration inputs file .*wrong.npz' lacks cali"):
        tvmext.compile(
            bb.get(), "dnnl, llvm", precision="bf16", calibration_inputs=str(tmp_path / "wrong.npz")
        )
    np.savez(tmp_path / "in.npz", x=rng.standard_normal((5, 64)).astype("float32"))
    module = tvmext.compile(
        bb.get(), "dnnl, llvm", precision="bf16", calibration_inputs=str(tmp_path / "in.npz")
    )
    assert module.accuracy is not None and module.accuracy.max_rel_error < BF16_REL_ERROR
