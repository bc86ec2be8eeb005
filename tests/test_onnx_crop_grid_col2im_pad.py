"""ONNX Pad, CenterCropPad, Col2Im and AffineGrid converters on small models, checked
against the ONNX reference implementation (or NumPy where it has no answer)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import tvmext
from tvmext.errors import ModelError

_ELEM = {
    np.float32: TensorProto.FLOAT,
    np.float64: TensorProto.DOUBLE,
    np.float16: TensorProto.FLOAT16,
    np.int32: TensorProto.INT32,
    np.int64: TensorProto.INT64,
    np.bool_: TensorProto.BOOL,
}


def _model(node, inputs, outputs, opset, initializers=()):
    graph = helper.make_graph([node], "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _info(name, dtype, shape):
    return helper.make_tensor_value_info(name, _ELEM[dtype], shape)


# -- Pad ------------------------------------------------------------------------------


def _numpy_pad(x, begin, end, mode, value=0):
    """Negative pads remove elements first, then np.pad (the reference) adds the rest."""
    window = tuple(
        slice(max(-b, 0), n - max(-e, 0)) for n, b, e in zip(x.shape, begin, end, strict=True)
    )
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end, strict=True)]
    cropped = x[window]
    if mode == "constant":
        return np.pad(cropped, widths, mode="constant", constant_values=value)
    return np.pad(cropped, widths, mode=mode)


def _runtime_pad_model(mode, dtype, shape, with_value=False, axes_count=None):
    rank = len(shape)
    names = ["x", "pads"]
    inputs = [_info("x", dtype, shape), _info("pads", np.int64, [2 * (axes_count or rank)])]
    if with_value or axes_count:
        names.append("value" if with_value else "")
        if with_value:
            inputs.append(_info("value", dtype, []))
    if axes_count:
        names.append("axes")
        inputs.append(_info("axes", np.int64, [axes_count]))
    node = helper.make_node("Pad", names, ["y"], mode=mode)
    return _model(node, inputs, [_info("y", dtype, [f"d{i}" for i in range(rank)])], 19)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad_with_runtime_pads_in_every_mode(mode, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    model = _runtime_pad_model(mode, np.float32, [3, 4])
    module = tvmext.compile(model)
    reference = ReferenceEvaluator(model)
    for pads in ([1, 2, 0, 3], [0, 0, 0, 0], [2, 5, 4, 9], [-1, 2, 1, -3], [-2, 0, 3, 0]):
        begin, end = pads[:2], pads[2:]
        (y,) = module(x, np.array(pads, np.int64))
        np.testing.assert_array_equal(y, _numpy_pad(x, begin, end, mode))
        if min(pads) >= 0:
            np.testing.assert_array_equal(y, reference.run(None, {"x": x, "pads": pads})[0])


def test_pad_reflect_longer_than_the_axis_mirrors_again():
    x = np.arange(3, dtype=np.int64)
    model = _runtime_pad_model("reflect", np.int64, [3])
    (y,) = tvmext.compile(model)(x, np.array([7, 6], np.int64))
    np.testing.assert_array_equal(y, np.pad(x, (7, 6), mode="reflect"))
    x1 = np.array([5], np.int64)  # one element: every pad repeats it, as np.pad
    model = _runtime_pad_model("reflect", np.int64, [1])
    np.testing.assert_array_equal(tvmext.compile(model)(x1, np.array([2, 1]))[0], [5] * 4)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.bool_])
def test_pad_runtime_value_and_axes(dtype, rng):
    """constant_value and axes read at run time; negative axes count from the end."""
    x = (rng.standard_normal((2, 3, 4)) * 10).astype(dtype)
    model = _runtime_pad_model("constant", dtype, [2, 3, 4], with_value=True, axes_count=2)
    module = tvmext.compile(model)
    value = np.array(1, dtype)
    for axes, pads in (([2, 0], [1, 2, 0, 1]), ([-2, -1], [0, -1, 3, 2])):
        begin, end = [0, 0, 0], [0, 0, 0]
        for i, a in enumerate(axes):
            begin[a], end[a] = pads[i], pads[2 + i]
        (y,) = module(x, np.array(pads, np.int64), value, np.array(axes, np.int64))
        np.testing.assert_array_equal(y, _numpy_pad(x, begin, end, "constant", value))


@pytest.mark.parametrize("mode", ["constant", "edge", "wrap"])
def test_pad_constant_pads_of_a_symbolic_input(mode, rng):
    """Pads known at compile time on an input whose first dimension is symbolic."""
    pads = numpy_helper.from_array(np.array([1, -1, 2, 2], np.int64), "pads")
    value = numpy_helper.from_array(np.array(7, np.int32), "value")
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode=mode)
    model = _model(
        node, [_info("x", np.int32, ["n", 4])], [_info("y", np.int32, ["m", 5])], 19, [pads, value]
    )
    module = tvmext.compile(model)
    for n in (2, 5):
        x = rng.integers(-9, 9, (n, 4)).astype(np.int32)
        (y,) = module(x)
        np.testing.assert_array_equal(y, _numpy_pad(x, [1, -1], [2, 2], mode, 7))


def test_pad_output_shape_read_by_later_nodes(rng):
    """Shape of a runtime-padded tensor is a tensor later arithmetic can use."""
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["y"]),
        helper.make_node("Shape", ["y"], ["s"]),
        helper.make_node("Add", ["s", "s"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [_info("x", np.float32, [2, 3]), _info("pads", np.int64, [4])],
        [_info("z", np.int64, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = rng.standard_normal((2, 3)).astype(np.float32)
    (z,) = tvmext.compile(model)(x, np.array([1, 0, 2, 4], np.int64))
    np.testing.assert_array_equal(z, [10, 14])


def _constant_pad_model(pads, mode="constant", shape=(2, 3), axes=None):
    inits = [numpy_helper.from_array(np.array(pads, np.int64), "pads")]
    names = ["x", "pads"]
    if axes is not None:
        inits.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
        names += ["", "axes"]
    node = helper.make_node("Pad", names, ["y"], mode=mode)
    return _model(
        node,
        [_info("x", np.float32, list(shape))],
        [_info("y", np.float32, ["a", "b"])],
        19,
        inits,
    )


@pytest.mark.parametrize(
    "pads, mode, shape, axes, words",
    [
        ([1, 1, 1, 1], "symmetric", (2, 3), None, "mode 'symmetric'"),
        ([1, 1, 1], "constant", (2, 3), None, "expected 2 per padded axis"),
        ([1, 1], "constant", (2, 3), [2], "out of range"),
        ([1, 1, 1, 1], "constant", (2, 3), [1, -1], "repeats an axis"),
        ([-2, 0, -1, 0], "constant", (2, 3), None, "removes more than"),
        ([1, 0, 0, 0], "edge", (0, 3), None, "no elements left"),
    ],
)
def test_pad_errors_name_the_input(pads, mode, shape, axes, words):
    with pytest.raises(ModelError, match=words):
        tvmext.compile(_constant_pad_model(pads, mode, shape, axes))


# -- CenterCropPad --------------------------------------------------------------------


def _crop_pad_model(dtype, shape, axes, out_shape, constant=None):
    attrs = {"axes": axes} if axes is not None else {}
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"], **attrs)
    count = len(axes) if axes is not None else len(shape)
    inputs = [_info("x", dtype, list(shape))]
    inits = []
    if constant is None:
        inputs.append(_info("shape", np.int64, [count]))
    else:
        inits.append(numpy_helper.from_array(np.array(constant, np.int64), "shape"))
    out_shape = out_shape or [f"d{i}" for i in range(len(shape))]
    return _model(node, inputs, [_info("y", dtype, out_shape)], 18, inits)


@pytest.mark.parametrize(
    "shape, axes, dtype, lengths",
    [
        # odd crop and odd pad (the extra element is at the end), even ones, nothing
        ((5, 6), None, np.float32, [[2, 9], [5, 3], [0, 6], [8, 8]]),
        ((4, 7, 3), [0, -2], np.int64, [[4, 0], [7, 2], [1, 7]]),
        ((4, 7, 3), [2], np.bool_, [[6], [1]]),
    ],
)
def test_center_crop_pad_matches_the_reference(shape, axes, dtype, lengths, rng):
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    runtime = _crop_pad_model(dtype, shape, axes, None)
    module, reference = tvmext.compile(runtime), ReferenceEvaluator(runtime)
    for window in lengths:
        expected = reference.run(None, {"x": x, "shape": np.array(window)})[0]
        (y,) = module(x, np.array(window, np.int64))
        np.testing.assert_array_equal(y, expected)
    constant = _crop_pad_model(dtype, shape, axes, list(expected.shape), lengths[-1])
    (y,) = tvmext.compile(constant)(x)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize(
    "axes, constant, words",
    [
        ([0, -2], [2, 2], "repeat an axis"),
        ([3], [2], "out of range"),
        ([0], [2, 2], "one length per axis"),
        ([0], [-1], "non-negative"),
    ],
)
def test_center_crop_pad_errors_name_the_input(axes, constant, words):
    with pytest.raises(ModelError, match=words):
        tvmext.compile(_crop_pad_model(np.float32, (4, 4), axes, None, constant))


# -- Col2Im ---------------------------------------------------------------------------


def _col2im_model(dtype, data_shape, image, block, constant, **attrs):
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)
    inputs = [_info("x", dtype, list(data_shape))]
    inits = []
    for name, values in (("image", image), ("block", block)):
        if constant:
            inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        else:
            inputs.append(_info(name, np.int64, [len(values)]))
    out = ["n", "c", *[f"d{i}" for i in range(len(image))]]
    return _model(node, inputs, [_info("y", dtype, out)], 18, inits)


def _blocks(image, block, dilations, pads, strides):
    k = len(image)
    return [
        (image[i] + pads[i] + pads[k + i] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1
        for i in range(k)
    ]


@pytest.mark.parametrize(
    "image, block, dilations, pads, strides, dtype, runtime",
    [
        ([7], [3], [2], [1, 0], [2], np.float64, True),
        ([5, 6], [2, 3], [1, 2], [0, 1, 2, 0], [2, 1], np.int32, True),
        ([5, 6], [2, 3], [1, 2], [0, 1, 2, 0], [2, 1], np.float64, False),
        ([3, 4, 3], [2, 2, 1], [1, 1, 1], [1, 0, 0, 0, 1, 1], [1, 2, 1], np.float32, False),
    ],
)
def test_col2im_matches_the_reference(image, block, dilations, pads, strides, dtype, runtime, rng):
    """Image and block shapes as runtime inputs or as constants."""
    attrs = {"dilations": dilations, "pads": pads, "strides": strides}
    length = int(np.prod(_blocks(image, block, dilations, pads, strides)))
    shape = (2, 3 * int(np.prod(block)), length)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    model = _col2im_model(dtype, shape, image, block, not runtime, **attrs)
    feeds = {"x": x, "image": np.array(image), "block": np.array(block)}
    if not runtime:
        feeds = {"x": x}
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    (y,) = tvmext.compile(model)(*[np.asarray(v, dtype=v.dtype) for v in feeds.values()])
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_col2im_float16_sums_in_float32(rng):
    x = rng.standard_normal((1, 8, 9)).astype(np.float16)
    model = _col2im_model(np.float16, x.shape, [4, 4], [2, 2], True)
    (y,) = tvmext.compile(model)(x)
    expected = ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})[0]
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, expected.astype(np.float16), rtol=1e-3)


@pytest.mark.parametrize(
    "data_shape, attrs, words",
    [
        ((1, 5, 9), {}, "a multiple of the block size 4"),
        ((1, 8, 8), {}, "holds 8 blocks; expected 9"),
        ((1, 8, 9), {"strides": [1]}, "expected 2 for 2 spatial axes"),
        ((1, 8, 9), {"dilations": [0, 1]}, "positive dilations"),
    ],
)
def test_col2im_errors_name_the_input(data_shape, attrs, words):
    model = _col2im_model(np.float32, data_shape, [4, 4], [2, 2], True, **attrs)
    with pytest.raises(ModelError, match=words):
        tvmext.compile(model)


# -- AffineGrid -----------------------------------------------------------------------


def _numpy_affine_grid(theta, spatial, align_corners):
    """Homogeneous (x, y[, z], 1) coordinates, x along the last axis, times theta."""

    def axis(n):
        i = np.arange(n, dtype=np.float64)
        if align_corners:
            return -1 + 2 * i / (n - 1) if n > 1 else np.full(n, -1.0)
        return -1 + (2 * i + 1) / n

    mesh = np.meshgrid(*[axis(n) for n in spatial], indexing="ij")
    homogeneous = np.stack([*reversed(mesh), np.ones(spatial)], axis=-1)
    grid = np.einsum("bjk,...k->b...j", theta.astype(np.float64), homogeneous)
    return grid.astype(theta.dtype)


@pytest.mark.parametrize("align_corners", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_grid_with_runtime_size(align_corners, dtype, rng):
    for rank, sizes in ((2, ([2, 3, 5, 6], [2, 1, 1, 4])), (3, ([2, 1, 3, 1, 4],))):
        theta = rng.standard_normal((2, rank, rank + 1)).astype(dtype)
        node = helper.make_node("AffineGrid", ["theta", "size"], ["y"], align_corners=align_corners)
        out = ["n", *[f"d{i}" for i in range(rank)], rank]
        model = _model(
            node,
            [_info("theta", dtype, list(theta.shape)), _info("size", np.int64, [rank + 2])],
            [_info("y", dtype, out)],
            20,
        )
        module = tvmext.compile(model)
        for size in sizes:
            (y,) = module(theta, np.array(size, np.int64))
            expected = _numpy_affine_grid(theta, size[2:], align_corners)
            np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
            if dtype == np.float32 and 1 not in size[2:]:
                reference = ReferenceEvaluator(model).run(None, {"theta": theta, "size": size})
                np.testing.assert_allclose(y, reference[0], rtol=1e-6, atol=1e-6)


def test_affine_grid_errors_name_the_input():
    node = helper.make_node("AffineGrid", ["theta", "size"], ["y"])
    size = numpy_helper.from_array(np.array([3, 1, 4, 4], np.int64), "size")
    model = _model(
        node,
        [_info("theta", np.float32, [2, 2, 3])],
        [_info("y", np.float32, [2, 4, 4, 2])],
        20,
        [size],
    )
    with pytest.raises(ModelError, match=r"expected N = 2 \(from theta\)"):
        tvmext.compile(model)
