"""The PyTorch front door: tvmext ops as ``torch.ops``, PyTorch models through
``tvmext.compile`` (``nn.Module``, ``ExportedProgram``, ``.pt2``), ``op.torch`` mappings
of custom ops defined elsewhere, and ``torch.compile(backend="tvmext")``; every result
against PyTorch eager."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from tvm import te

import tvmext
import tvmext.torch
from tvmext.testing import check_op

BIN = pathlib.Path(sys.executable).parent
ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGETS = ("llvm", "dnnl, llvm")


@pytest.fixture(scope="module")
def scaled_tanh() -> tvmext.CustomOp:
    """Declared after ``import tvmext.torch``: registered in PyTorch as it is declared."""

    @tvmext.op("torchtest.scaled_tanh", replace=True)
    def op(x: te.Tensor, *, alpha: float = 2.0) -> te.Tensor:
        return te.compute(x.shape, lambda *i: alpha * te.tanh(x(*i)), name="scaled_tanh")

    @op.gradient
    def _grad(x, y, dy, *, alpha: float = 2.0):
        return te.compute(
            x.shape, lambda *i: dy(*i) * alpha * (1 - te.tanh(x(*i)) * te.tanh(x(*i))), name="d"
        )

    @op.reference
    def _reference(x, *, alpha=2.0):
        return (alpha * np.tanh(x)).astype(x.dtype)

    return op


class _WithOp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(8, 16)
        self.out = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = torch.ops.torchtest.scaled_tanh(self.linear(x), alpha=0.5)
        return {"logits": self.out(hidden), "norm": hidden.pow(2).sum(-1)}


def _close(got: object, want: torch.Tensor, rtol: float = 1e-5) -> None:
    if isinstance(got, torch.Tensor):
        got = got.detach().numpy()
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=rtol, atol=1e-5)


def test_op_runs_in_eager_and_autograd(scaled_tanh):
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    y = torch.ops.torchtest.scaled_tanh(x, alpha=1.5)
    _close(y, 1.5 * torch.tanh(x))
    assert torch.autograd.gradcheck(lambda t: torch.ops.torchtest.scaled_tanh(t, alpha=1.5), (x,))
    schema = str(torch.ops.torchtest.scaled_tanh.default._schema)
    assert schema == "torchtest::scaled_tanh(Tensor x, *, float alpha=2.) -> Tensor"


@pytest.mark.native
def test_check_op_checks_the_pytorch_side(scaled_tanh, rng):
    check_op(scaled_tanh, rng.standard_normal((4, 6)).astype("float32"), alpha=0.7)


def test_op_traces_under_torch_compile_and_export(scaled_tanh):
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.ops.torchtest.scaled_tanh(x * 2, alpha=3.0).sum()

    x = torch.randn(4, 7, requires_grad=True)
    compiled = torch.compile(f, backend="aot_eager", fullgraph=True, dynamic=True)
    compiled(x).backward()
    _close(x.grad, 6 * (1 - torch.tanh(2 * x) ** 2))
    batch = torch.export.Dim("batch", min=1, max=32)
    program = torch.export.export(_WithOp(), (torch.randn(3, 8),), dynamic_shapes={"x": {0: batch}})
    assert any("scaled_tanh" in str(n.target) for n in program.graph.nodes)
    assert "batch" not in str(program.range_constraints)  # PyTorch's own symbol names


def test_an_op_returning_other_than_its_annotation_says_is_a_clear_error():
    @tvmext.op("torchtest.two_out", replace=True)
    def two_out(x: te.Tensor) -> te.Tensor:  # returns two tensors, annotated as one
        return (  # type: ignore[return-value]
            te.compute(x.shape, lambda *i: x(*i), name="a"),
            te.compute(x.shape, lambda *i: -x(*i), name="b"),
        )

    with pytest.raises(tvmext.OpDefinitionError, match=r"op 'torchtest\.two_out' returned 2 "
                                                       r"output\(s\), but its PyTorch schema "
                                                       r"says 1: annotate"):  # fmt: skip
        torch.ops.torchtest.two_out(torch.randn(3))


def test_redefining_an_op_redefines_the_pytorch_op():
    @tvmext.op("torchtest.redefined", replace=True)
    def first(x: te.Tensor) -> te.Tensor:
        return te.compute(x.shape, lambda *i: x(*i) + 1, name="plus_one")

    x = torch.ones(2)
    _close(torch.ops.torchtest.redefined(x), x + 1)

    @tvmext.op("torchtest.redefined", replace=True)
    def second(x: te.Tensor, *, k: int = 3) -> tuple[te.Tensor, te.Tensor]:
        return (
            te.compute(x.shape, lambda *i: x(*i) * k, name="times"),
            te.compute(x.shape, lambda *i: x(*i) - k, name="minus"),
        )

    times, minus = torch.ops.torchtest.redefined(x, k=4)
    _close(times, x * 4)
    _close(minus, x - 4)


@pytest.mark.parametrize("target", TARGETS)
def test_module_with_tvmext_op_compiles_with_its_output_structure(scaled_tanh, target):
    model = _WithOp().eval()
    x = torch.randn(5, 8)
    compiled = tvmext.compile(model, target, example_inputs=(x,))
    assert compiled.input_names == ["x"]
    got = compiled(x.numpy())
    want = model(x)
    assert set(got) == {"logits", "norm"}
    for key in want:
        _close(got[key], want[key])
    assert len(compiled.run(x.numpy())) == 2  # run() stays a flat list


@pytest.mark.native
def test_dynamic_dims_keep_their_names_and_bounds(scaled_tanh):
    model = _WithOp().eval()
    batch = torch.export.Dim("batch", min=1, max=16)
    compiled = tvmext.compile(
        model, "dnnl, llvm", example_inputs=(torch.randn(3, 8),), dynamic_shapes={"x": {0: batch}}
    )
    assert compiled.inputs[0].shape == ("batch", 8)
    assert compiled.shape_bounds == {"batch": (1, 16)}
    for size in (1, 7, 16):
        x = torch.randn(size, 8)
        _close(compiled(x.numpy())["logits"], model(x)["logits"])
    with pytest.raises(tvmext.ShapeError, match=r"input 'x': dim 0 \(batch\) is 17, outside"):
        compiled(np.zeros((17, 8), np.float32))


@torch.library.custom_op("vendortest::softclip", mutates_args=())
def _softclip(x: torch.Tensor, bound: float) -> torch.Tensor:
    return bound * torch.tanh(x / bound)


@_softclip.register_fake
def _(x: torch.Tensor, bound: float) -> torch.Tensor:
    return torch.empty_like(x)


@torch.library.custom_op("vendortest::stacked", mutates_args=())
def _stacked(xs: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(xs).sum(0)


@_stacked.register_fake
def _(xs: list[torch.Tensor]) -> torch.Tensor:
    return torch.empty_like(xs[0])


@torch.library.custom_op("vendortest::unmapped", mutates_args=())
def _unmapped(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@_unmapped.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def test_custom_op_defined_elsewhere_maps_with_op_torch():
    @tvmext.op("torchtest.softclip", replace=True)
    def softclip(x: te.Tensor, *, limit: float = 1.0) -> te.Tensor:
        return te.compute(x.shape, lambda *i: limit * te.tanh(x(*i) / limit), name="softclip")

    softclip.torch("vendortest::softclip", attrs={"bound": "limit"}, replace=True)

    class Model(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.vendortest.softclip(x * 3, 2.5) + 1

    x = torch.randn(4, 6)
    compiled = tvmext.compile(Model(), "llvm", example_inputs=(x,))
    _close(compiled(x.numpy()), Model()(x))
    dynamo = torch.compile(Model(), backend="tvmext", options={"target": "llvm"})
    with torch.no_grad():
        _close(dynamo(x), Model()(x))


def test_a_list_of_tensors_into_a_mapped_op_is_a_clear_error():
    @tvmext.op("torchtest.stacked", replace=True)
    def stacked(x: te.Tensor) -> te.Tensor:
        return te.compute(x.shape, lambda *i: x(*i), name="stacked")

    stacked.torch("vendortest::stacked", replace=True)

    class Model(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.vendortest.stacked([x, x * 2])

    with pytest.raises(tvmext.ModelError, match=r"argument 'xs' is a list of tensors, which a "
                                                r"tvmext op does not take"):  # fmt: skip
        tvmext.compile(Model(), "llvm", example_inputs=(torch.randn(2, 3),))


def test_a_custom_op_with_the_short_name_of_an_aten_op_stays_apart():
    @tvmext.op("torchtest.relu", replace=True)
    def relu(x: te.Tensor) -> te.Tensor:  # not a ReLU: a mix-up would show
        return te.compute(x.shape, lambda *i: x(*i) * 10, name="times_ten")

    class Model(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x) + torch.ops.torchtest.relu(x)

    x = torch.randn(3, 4)
    _close(tvmext.compile(Model(), "llvm", example_inputs=(x,))(x.numpy()), torch.relu(x) + 10 * x)


def test_ops_nothing_converts_are_listed_with_their_source_lines():
    class Model(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.ops.vendortest.unmapped(x)
            return torch.special.bessel_j0(y)

    with pytest.raises(tvmext.ModelError) as err:
        tvmext.compile(Model(), "llvm", example_inputs=(torch.randn(3),))
    message = str(err.value)
    assert "calls 2 op(s) tvmext cannot import" in message
    assert "vendortest::unmapped.default (a custom op: map it to a tvmext op with " \
           "op.torch('vendortest::unmapped'))" in message  # fmt: skip
    assert "aten::special_bessel_j0.default" in message
    assert "test_torch.py:" in message and "torch.special.bessel_j0(y)" in message


def test_bad_pytorch_inputs_are_clear_errors(tmp_path):
    with pytest.raises(tvmext.ModelError, match="give example_inputs"):
        tvmext.compile(_WithOp(), "llvm")
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip")
    with pytest.raises(tvmext.ModelError, match=r"not a program written by torch\.export\.save"):
        tvmext.compile(str(bad), "llvm")
    with pytest.raises(tvmext.CompileError, match="input_shapes and input_dtypes describe ONNX"):
        tvmext.compile(
            _WithOp(), "llvm", example_inputs=(torch.randn(2, 8),), input_shapes="x:[2,8]"
        )


def test_pytorch_options_on_an_onnx_model_are_a_clear_error():
    onnx_model = ROOT / "examples" / "models" / "acme_mlp.onnx"
    with pytest.raises(tvmext.CompileError, match=r"example_inputs and dynamic_shapes export a "
                                                  r"PyTorch model; model file '.*acme_mlp\.onnx' "
                                                  r"is not one"):  # fmt: skip
        tvmext.compile(str(onnx_model), "llvm", example_inputs=(torch.randn(2, 8),))


def test_a_pt2_file_without_pytorch_names_the_extra(tmp_path):
    """Run where ``import torch`` fails, as in an install without the torch extra."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import tvmext\n"
        "try:\n"
        f"    tvmext.compile({str(tmp_path / 'model.pt2')!r}, 'llvm')\n"
        "except tvmext.CompileError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "model.pt2' needs PyTorch: pip install 'tvmext[torch]'" in done.stdout, (
        done.stdout + done.stderr
    )


def test_weights_kept_as_inputs(scaled_tanh):
    model = _WithOp().eval()
    x = torch.randn(2, 8)
    compiled = tvmext.compile(model, "llvm", example_inputs=(x,), keep_params_in_input=True)
    assert len(compiled.param_names) == 4
    _close(compiled(x.numpy())["logits"], model(x)["logits"])
    compiled.set_params(*(2 * p.detach().numpy() for p in model.parameters()))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2)
    _close(compiled(x.numpy())["logits"], model(x)["logits"])


_PLUGIN = """
import tvmext
from tvm import te


@tvmext.op("torchtest.scaled_tanh", replace=True)
def scaled_tanh(x, *, alpha: float = 2.0):
    return te.compute(x.shape, lambda *i: alpha * te.tanh(x(*i)), name="scaled_tanh")
"""


@pytest.mark.native
def test_pt2_file_through_the_command_line(scaled_tanh, tmp_path):
    model = _WithOp().eval()
    x = torch.randn(3, 8)
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "m.pt2")
    (tmp_path / "plugin.py").write_text(_PLUGIN)
    done = subprocess.run(
        [str(BIN / "tvmext"), "compile", "m.pt2", "--target", "llvm", "-o", "m.so",
         "--plugin", "plugin.py"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote m.so (inputs x: [3, 8] float32)" in done.stdout
    _close(tvmext.load(tmp_path / "m.so")(x.numpy())["norm"], model(x)["norm"])


def test_torch_compile_backend_inference_and_training(scaled_tanh):
    model = _WithOp()
    compiled = torch.compile(model, backend="tvmext", options={"target": "llvm"})
    with torch.no_grad():
        for size in (2, 5):
            x = torch.randn(size, 8)
            got, want = compiled(x), model(x)
            _close(got["logits"], want["logits"])
    x = torch.randn(4, 8)
    loss = compiled(x)["logits"].square().mean()
    loss.backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x)["logits"].square().mean().backward()
    for g, p in zip(got, model.parameters(), strict=True):
        _close(g, p.grad, rtol=1e-4)


def test_pytorch_type_promotion_is_kept():
    class Model(torch.nn.Module):
        def forward(self, counts: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            positions = torch.cumsum(counts > 0, dim=-1)  # booleans sum as int64
            return torch.log(positions + 1) + torch.div(x, 2, rounding_mode="floor")

    counts = torch.randint(0, 3, (2, 9))
    x = torch.randn(2, 9) * 10
    compiled = tvmext.compile(Model(), "llvm", example_inputs=(counts, x))
    _close(compiled(counts.numpy(), x.numpy()), Model()(counts, x))


def test_slice_to_a_bounded_symbolic_length_keeps_its_shape():
    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("table", torch.randn(1, 512, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.table[:, : x.shape[1]]  # min(seq, 512) unless seq <= 512 is known

    model = Model()
    seq = torch.export.Dim("seq", min=2, max=128)
    compiled = tvmext.compile(
        model, "llvm", example_inputs=(torch.randn(1, 16, 8),), dynamic_shapes=({1: seq},)
    )
    for length in (2, 100):
        x = torch.randn(1, length, 8)
        _close(compiled(x.numpy()), model(x))
