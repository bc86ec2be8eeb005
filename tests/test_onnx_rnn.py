"""RNN, GRU and LSTM converters against the ONNX reference evaluator (and, for
sequence_lens, which the reference ignores, against runs on the truncated sequence)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import tvmext
from tvmext.errors import ModelError

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_ELEM = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}


def _model(op_type, names, shapes, dtype, outputs, **attrs):
    elem = _ELEM[dtype]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT32 if n == "lens" else elem, s)
        for n, s in zip(names, shapes, strict=True)
        if n
    ]
    node = helper.make_node(op_type, list(names), outputs, **attrs)
    outs = [
        helper.make_tensor_value_info(o, elem, [None] * (4 if o == "y" else 3)) for o in outputs
    ]
    graph = helper.make_graph([node], "g", inputs, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def _weights(rng, op_type, directions, hidden, size, dtype):
    g = _GATES[op_type]
    w = rng.uniform(-0.5, 0.5, (directions, g * hidden, size)).astype(dtype)
    r = rng.uniform(-0.5, 0.5, (directions, g * hidden, hidden)).astype(dtype)
    b = rng.uniform(-0.5, 0.5, (directions, 2 * g * hidden)).astype(dtype)
    return w, r, b


@pytest.mark.parametrize(
    ("op_type", "attrs"),
    [
        ("RNN", {"direction": "bidirectional", "layout": 1}),
        ("RNN", {"activations": ["Affine"], "activation_alpha": [0.5], "activation_beta": [0.1]}),
        ("GRU", {"linear_before_reset": 1, "direction": "reverse"}),
        ("GRU", {"direction": "bidirectional", "layout": 1}),
        ("LSTM", {"direction": "bidirectional"}),
        ("LSTM", {"layout": 1, "direction": "reverse"}),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_the_reference(op_type, attrs, dtype, rng):
    directions = 2 if attrs.get("direction") == "bidirectional" else 1
    seq, batch, size, hidden = 4, 3, 5, 6
    layout = attrs.get("layout", 0)
    x_shape = (batch, seq, size) if layout else (seq, batch, size)
    h_shape = (batch, directions, hidden) if layout else (directions, batch, hidden)
    x = rng.standard_normal(x_shape).astype(dtype)
    w, r, b = _weights(rng, op_type, directions, hidden, size, dtype)
    h0 = rng.standard_normal(h_shape).astype(dtype)
    names = ["x", "w", "r", "b", "", "h0"]
    values = [x, w, r, b, h0]
    outputs = ["y", "y_h"]
    if op_type == "LSTM":
        names += ["c0", "p"]
        values += [rng.standard_normal(h_shape).astype(dtype)]
        values += [rng.uniform(-0.5, 0.5, (directions, 3 * hidden)).astype(dtype)]
        outputs += ["y_c"]
    shapes = [list(v.shape) for v in values]
    shapes.insert(4, [])
    model = _model(op_type, names, shapes, dtype, outputs, hidden_size=hidden, **attrs)
    feeds = dict(zip([n for n in names if n], values, strict=True))
    want = ReferenceEvaluator(model).run(None, feeds)
    got = tvmext.compile(model)(*values)
    for g, e in zip(got, want, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("op_type", ["RNN", "GRU", "LSTM"])
def test_sequence_lens_stop_each_batch_entry(op_type, direction, rng):
    """An entry of length L gives what its first L steps alone give, then zeros."""
    seq, batch, size, hidden = 5, 3, 2, 4
    lens = np.array([5, 2, 3], dtype=np.int32)
    x = rng.standard_normal((seq, batch, size)).astype(np.float32)
    w, r, b = _weights(rng, op_type, 1, hidden, size, np.float32)
    model = _model(
        op_type,
        ["x", "w", "r", "b", "lens"],
        [list(x.shape), list(w.shape), list(r.shape), list(b.shape), [batch]],
        np.float32,
        ["y", "y_h"],
        hidden_size=hidden,
        direction=direction,
    )
    y, y_h = tvmext.compile(model)(x, w, r, b, lens)
    plain = _model(
        op_type, ["x", "w", "r", "b"], [None] * 4, np.float32, ["y", "y_h"], direction=direction
    )
    reference = ReferenceEvaluator(plain)
    for i, n in enumerate(lens):
        want_y, want_h = reference.run(None, {"x": x[:n, i : i + 1], "w": w, "r": r, "b": b})
        np.testing.assert_allclose(y[:n, :, i : i + 1], want_y, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(y[n:, :, i], 0)
        np.testing.assert_allclose(y_h[:, i : i + 1], want_h, rtol=1e-4, atol=1e-6)


def test_symbolic_sequence_length_is_refused():
    model = _model("RNN", ["x", "w", "r"], [["T", 2, 3], [1, 4, 3], [1, 4, 4]], np.float32, ["y"])
    with pytest.raises(ModelError, match="static"):
        tvmext.compile(model)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"direction": "sideways"}, "direction 'sideways'"),
        ({"activations": ["Swish"]}, "activation 'Swish'"),
        ({"activations": ["Affine"]}, "activation_alpha"),
        ({"hidden_size": 7}, "hidden_size 7"),
    ],
)
def test_bad_attributes_name_what_was_expected(attrs, message):
    model = _model(
        "RNN", ["x", "w", "r"], [[2, 2, 3], [1, 4, 3], [1, 4, 4]], np.float32, ["y"], **attrs
    )
    with pytest.raises(ModelError, match=message):
        tvmext.compile(model)
