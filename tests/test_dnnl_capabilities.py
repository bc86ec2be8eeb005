"""oneDNN by capability: convolutions and pooling of every rank, resampling, log-softmax,
and never a reference
kernel (post-ops that oneDNN fuses only into its reference kernel run apart, and
broadcasts that only its reference kernel takes stay on TVM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import main_module
from onednn_verbose import executions, run_logged
from tvm import relax

import tvmext

pytestmark = pytest.mark.onednn


def _weights(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


W1 = _weights(16, 2, 5)
B1 = _weights(16, seed=1)
W_POS = _weights(16, 2, 16, seed=2)  # wav2vec2's positional convolution, scaled down
W3 = _weights(6, 3, 3, 3, 3, seed=3)
WT2 = _weights(8, 3, 3, 3, seed=4)  # in 8, out 2 groups x 3, IOHW
WT1 = _weights(4, 5, 4, seed=5)

# name: (input shapes, Relax body, PyTorch reference)
CASES = {
    "conv1d grouped, strided, asymmetric pads, bias and GELU": (
        [(2, 8, 50)],
        lambda bb, p: relax.op.nn.gelu(
            relax.op.add(
                relax.op.nn.conv1d(p[0], relax.const(W1), strides=2, padding=(2, 1), groups=4),
                relax.const(B1.reshape(1, 16, 1)),
            )
        ),
        lambda x: F.gelu(
            F.conv1d(
                F.pad(x, (2, 1)), torch.from_numpy(W1), torch.from_numpy(B1), stride=2, groups=4
            )
        ),
    ),
    "conv1d with a large kernel in 8 groups, residual add": (
        [(1, 16, 40)],
        lambda bb, p: relax.op.add(
            p[0],
            relax.op.strided_slice(
                relax.op.nn.conv1d(p[0], relax.const(W_POS), padding=(8, 8), groups=8),
                axes=[2],
                begin=[0],
                end=[40],
            ),
        ),
        lambda x: x + F.conv1d(x, torch.from_numpy(W_POS), padding=8, groups=8)[:, :, :40],
    ),
    "conv3d dilated with ReLU": (
        [(1, 3, 6, 10, 10)],
        lambda bb, p: relax.op.nn.relu(
            relax.op.nn.conv3d(p[0], relax.const(W3), padding=1, dilation=(1, 2, 1))
        ),
        lambda x: F.relu(F.conv3d(x, torch.from_numpy(W3), padding=1, dilation=(1, 2, 1))),
    ),
    "conv2d_transpose grouped, strided, output padding, bias and ReLU": (
        [(1, 8, 5, 6)],
        lambda bb, p: relax.op.nn.relu(
            relax.op.add(
                relax.op.nn.conv2d_transpose(
                    p[0], relax.const(WT2), strides=2, padding=1, output_padding=1, groups=2
                ),
                relax.const(B1[:6].reshape(1, 6, 1, 1)),
            )
        ),
        lambda x: F.relu(
            F.conv_transpose2d(
                x,
                torch.from_numpy(WT2),
                torch.from_numpy(B1[:6]),
                stride=2,
                padding=1,
                output_padding=1,
                groups=2,
            )
        ),
    ),
    "conv1d_transpose by 4 (an upsampling decoder)": (
        [(2, 4, 9)],
        lambda bb, p: relax.op.nn.conv1d_transpose(p[0], relax.const(WT1), strides=4),
        lambda x: F.conv_transpose1d(x, torch.from_numpy(WT1), stride=4),
    ),
    "max_pool1d": (
        [(2, 8, 50)],
        lambda bb, p: relax.op.nn.max_pool1d(p[0], 3, strides=2, padding=(1, 1)),
        lambda x: F.max_pool1d(x, 3, 2, 1),
    ),
    "log_softmax": (
        [(4, 10)],
        lambda bb, p: relax.op.nn.log_softmax(p[0], axis=-1),
        lambda x: F.log_softmax(x, dim=-1),
    ),
    "bilinear upsampling, half-pixel centres (NCHW)": (
        [(1, 4, 7, 9)],
        lambda bb, p: relax.op.image.resize2d(
            p[0], (14, 27), method="linear", coordinate_transformation_mode="pytorch_half_pixel"
        ),
        lambda x: F.interpolate(x, size=(14, 27), mode="bilinear", align_corners=False),
    ),
    "bilinear downsampling, half-pixel centres (NHWC)": (
        [(1, 12, 10, 3)],
        lambda bb, p: relax.op.image.resize2d(
            p[0],
            (5, 4),
            layout="NHWC",
            method="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        lambda x: F.interpolate(
            x.permute(0, 3, 1, 2), size=(5, 4), mode="bilinear", align_corners=False
        ).permute(0, 2, 3, 1),
    ),
    "nearest upsampling by 2 and 3": (
        [(2, 3, 5, 4)],
        lambda bb, p: relax.op.image.resize2d(
            p[0],
            (10, 12),
            method="nearest_neighbor",
            coordinate_transformation_mode="asymmetric",
            rounding_method="floor",
        ),
        lambda x: F.interpolate(x, size=(10, 12), mode="nearest"),
    ),
    "avg_pool3d": (
        [(1, 3, 6, 10, 10)],
        lambda bb, p: relax.op.nn.avg_pool3d(p[0], 2, strides=2),
        lambda x: F.avg_pool3d(x, 2, 2),
    ),
}


HEAVY = (
    "relax.nn.conv",
    "relax.nn.max_pool",
    "relax.nn.avg_pool",
    "relax.nn.log_softmax",
    "relax.image.resize2d",
)


@pytest.mark.parametrize("name", list(CASES))
def test_each_capability_runs_on_onednn(name):
    shapes, build, reference = CASES[name]
    module = tvmext.compile(main_module(shapes, build), "dnnl, llvm")
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    want = reference(*map(torch.from_numpy, inputs)).numpy()
    np.testing.assert_allclose(module.run(*inputs)[0], want, rtol=1e-4, atol=1e-4)
    (report,) = module.reports
    heavy = [o for o in report.ops if o.op.startswith(HEAVY)]
    assert heavy and all(o.placement == "dnnl" for o in heavy), str(report)


def _attention_scores(mask_shape):
    """Attention scores plus a mask, then softmax: the windowed-attention pattern."""
    return main_module(
        [(64, 3, 49, 32), (64, 3, 32, 49), mask_shape],
        lambda bb, p: relax.op.nn.softmax(relax.op.add(relax.op.matmul(p[0], p[1]), p[2]), axis=-1),
    )


def _scores_reference(a, b, mask):
    s = a @ b + mask
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# name: (mask shape, the primitives that run). Broadcast over the leading dim only,
# oneDNN 3.2's matmul has only its reference kernel for the add as a post-op, but a jit
# binary primitive for the add alone; along the last dim only, no jit binary either:
# tvmext's own loop adds it after the matmul.
MASKS = {
    "apart": ((1, 3, 49, 49), ["matmul", "binary", "softmax"]),
    "loop": ((64, 3, 49, 1), ["matmul", "softmax"]),
}


def run_split_cases() -> None:
    """Child process (ONEDNN_VERBOSE=1): compile and check each mask case, printing a
    marker before its run so that the test reads each run's log."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((64, 3, 49, 32), (64, 3, 32, 49)))
    for name, (shape, _) in MASKS.items():
        mask = rng.standard_normal(shape).astype(np.float32)
        module = tvmext.compile(_attention_scores(shape), "dnnl, llvm")
        print(f"=== {name}", flush=True)
        got = module.run(a, b, mask)[0]
        np.testing.assert_allclose(got, _scores_reference(a, b, mask), rtol=1e-5, atol=1e-6)
        (report,) = module.reports
        assert {o.placement for o in report.ops} == {"dnnl"}, str(report)


def test_post_ops_fusable_only_into_a_reference_kernel_run_apart():
    logs, stderr = run_logged("test_dnnl_capabilities", "run_split_cases")
    assert set(logs) == set(MASKS)
    for name, (_, kinds) in MASKS.items():
        ran = executions(logs[name])
        assert [kind for kind, _ in ran] == kinds, (name, ran)
        assert not [impl for _, impl in ran if impl.startswith("ref")], (name, ran)
    assert "reference kernel" not in stderr


def test_resize_with_aligned_corners_stays_on_tvm(rng):
    module = tvmext.compile(
        main_module([(1, 2, 5, 5)], lambda bb, p: relax.op.image.resize2d(
            p[0], (9, 9), method="linear", coordinate_transformation_mode="align_corners"
        )),
        "dnnl, llvm",
    )  # fmt: skip
    (report,) = module.reports
    (resize,) = report.ops
    assert resize.placement == "tvm" and "align_corners" in resize.detail, str(report)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(x), size=(9, 9), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(module.run(x)[0], want.numpy(), rtol=1e-5, atol=1e-5)


def test_softmax_over_an_inner_axis_stays_on_tvm(rng):
    """oneDNN 3.2 has only its reference kernel for softmax over an axis but the last:
    the compiler asks oneDNN which kernel it would run and keeps the op on TVM."""
    module = tvmext.compile(
        main_module([(2, 8, 6, 6)], lambda bb, p: relax.op.nn.softmax(p[0], axis=1)), "dnnl, llvm"
    )
    (report,) = module.reports
    (softmax,) = report.ops
    assert softmax.placement == "tvm" and "reference kernel" in softmax.detail, str(report)
    x = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    want = torch.softmax(torch.from_numpy(x), dim=1).numpy()
    np.testing.assert_allclose(module.run(x)[0], want, rtol=1e-5, atol=1e-6)


def test_a_binary_only_the_reference_kernel_takes_stays_on_tvm(rng):
    """An add of two inputs, one broadcast along the last dim only (oneDNN's answer when
    asked at compile time: its reference kernel): TVM runs it, fused with the ReLU."""
    shapes = [(64, 3, 49, 49), (64, 3, 49, 1)]
    module = tvmext.compile(
        main_module(shapes, lambda bb, p: relax.op.nn.relu(relax.op.add(p[0], p[1]))), "dnnl, llvm"
    )
    (report,) = module.reports
    add = next(o for o in report.ops if o.op == "relax.add")
    assert add.placement == "tvm" and "reference kernel" in add.detail, str(report)
    x, y = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    np.testing.assert_allclose(module.run(x, y)[0], np.maximum(x + y, 0), rtol=1e-6)


def test_the_report_names_the_implementation_of_every_primitive_an_op_runs():
    """The mask cases: the matmul, then the add on its own (oneDNN's binary, or
    tvmext's loop where oneDNN has only its reference kernel for it)."""
    for name, second in (("apart", "binary "), ("loop", "binary tvmext:broadcast_loop")):
        module = tvmext.compile(_attention_scores(MASKS[name][0]), "dnnl, llvm")
        (report,) = module.reports
        matmul = next(o for o in report.ops if o.op == "relax.matmul")
        steps = matmul.implementation.split("; ")
        assert steps[0].startswith("matmul ") and steps[1].startswith(second), steps
        assert not any(s.split(" ", 1)[1].startswith("ref") for s in steps), steps
        assert f"[{matmul.implementation}]" in str(report)
