"""ONNX ``RNN``, ``GRU`` and ``LSTM``, which TVM's importer does not convert: the
recurrence unrolled over a static sequence length, every attribute of the spec
(direction, activations with alpha/beta, clip, layout, linear_before_reset,
input_forget) and the optional inputs (bias, sequence_lens, initial states, peepholes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tvm import relax, tirx

from tvmext.dims import static_shape
from tvmext.errors import ModelError
from tvmext.onnx.converters.helpers import const
from tvmext.onnx.registry import register_converter

Activation = Callable[[relax.Expr], relax.Expr]

# Activations that read alpha / beta, and the value of the ONNX op of that name when the
# node gives none (None: the op has no default, so the node must give one).
_ALPHA = {
    "affine": None,
    "leakyrelu": 0.01,
    "thresholdedrelu": 1.0,
    "scaledtanh": None,
    "hardsigmoid": 0.2,
    "elu": 1.0,
}
_BETA = {"affine": None, "scaledtanh": None, "hardsigmoid": 0.5}
_NAMES = (
    "relu",
    "tanh",
    "sigmoid",
    "affine",
    "leakyrelu",
    "thresholdedrelu",
    "scaledtanh",
    "hardsigmoid",
    "elu",
    "softsign",
    "softplus",
)


def _activation(name: str, alpha: float, beta: float, dtype: str) -> Activation:
    """The Relax function of one ONNX activation name (case-insensitive)."""
    op = relax.op

    def c(value: float) -> relax.Expr:
        return const(np.array(value, dtype=dtype))

    functions: dict[str, Activation] = {
        "relu": op.nn.relu,
        "tanh": op.tanh,
        "sigmoid": op.sigmoid,
        "affine": lambda x: op.add(op.multiply(x, c(alpha)), c(beta)),
        "leakyrelu": lambda x: op.where(op.less(x, c(0)), op.multiply(x, c(alpha)), x),
        "thresholdedrelu": lambda x: op.where(op.greater(x, c(alpha)), x, c(0)),
        "scaledtanh": lambda x: op.multiply(c(alpha), op.tanh(op.multiply(x, c(beta)))),
        "hardsigmoid": lambda x: op.minimum(
            op.maximum(op.add(op.multiply(x, c(alpha)), c(beta)), c(0)), c(1)
        ),
        "elu": lambda x: op.where(
            op.less(x, c(0)), op.multiply(c(alpha), op.subtract(op.exp(x), c(1))), x
        ),
        "softsign": lambda x: op.divide(x, op.add(c(1), op.abs(x))),
        # max(x, 0) + log(1 + exp(-|x|)): log(1 + exp(x)) without overflow.
        "softplus": lambda x: op.add(
            op.maximum(x, c(0)), op.log(op.add(c(1), op.exp(op.negative(op.abs(x)))))
        ),
    }
    return functions[name]


def _activations(
    node: str, attrs: dict[str, Any], defaults: Sequence[str], directions: int, dtype: str
) -> list[list[Activation]]:
    """Per direction, its activation functions. ``activation_alpha``/``beta`` are
    consumed in the order of the activations, by those that take them."""
    names = [
        n.decode() if isinstance(n, bytes) else str(n) for n in attrs.get("activations", defaults)
    ]
    per_direction = len(defaults)
    if len(names) == per_direction and directions == 2:
        names = names * 2
    if len(names) != per_direction * directions:
        raise ModelError(
            f"{node}: activations has {len(names)} entries, expected {per_direction} per "
            f"direction ({per_direction * directions} in all)"
        )
    alphas = list(attrs.get("activation_alpha", []))
    betas = list(attrs.get("activation_beta", []))
    result = []
    for name in names:
        key = name.lower()
        if key not in _NAMES:
            raise ModelError(
                f"{node}: activation {name!r} given, expected one of {', '.join(_NAMES)} (any case)"
            )
        values = []
        for table, given, attr in ((_ALPHA, alphas, "alpha"), (_BETA, betas, "beta")):
            if key not in table:
                values.append(0.0)
            elif given:
                values.append(float(given.pop(0)))
            elif (default := table[key]) is not None:
                values.append(default)
            else:
                raise ModelError(f"{node}: activation {name!r} needs an activation_{attr} value")
        result.append(_activation(key, values[0], values[1], dtype))
    if alphas or betas:
        raise ModelError(
            f"{node}: activation_alpha/activation_beta give more values than the "
            f"activations {names} take"
        )
    return [result[d * per_direction : (d + 1) * per_direction] for d in range(directions)]


class _Recurrence:
    """What one node's unrolling needs: its name, compute dtype, clip, gate count."""

    def __init__(self, node: str, gates: int, hidden: int, dtype: str, clip: float | None):
        self.node, self.gates, self.hidden, self.dtype, self.clip = (
            node,
            gates,
            hidden,
            dtype,
            clip,
        )

    def clipped(self, x: relax.Expr) -> relax.Expr:
        """The input of an activation, bounded by ``clip`` where the node gives one."""
        if self.clip is None:
            return x
        bound = const(np.array(self.clip, dtype=self.dtype))
        return relax.op.minimum(relax.op.maximum(x, relax.op.negative(bound)), bound)

    def gate(self, x: relax.Expr, index: int, count: int = 1) -> relax.Expr:
        """Gates ``index`` .. ``index + count`` of a [..., gates * hidden] tensor."""
        h = self.hidden
        return relax.op.strided_slice(x, axes=[-1], begin=[index * h], end=[(index + count) * h])


def _matmul_t(x: relax.Expr, w: relax.Expr) -> relax.Expr:
    return relax.op.matmul(x, relax.op.permute_dims(w, [1, 0]))


def _run(
    bb: relax.BlockBuilder,
    op_type: str,
    inputs: list[relax.Expr | None],
    attrs: dict[str, Any],
    defaults: Sequence[str],
    gates: int,
) -> relax.Expr:
    """The shared unrolling: inputs checked, per direction the sequence stepped through
    (reversed for the reverse direction, within each batch entry's length), outputs
    in the node's layout."""
    op = relax.op
    node = op_type
    x, w, r = inputs[:3]
    bias, seq_lens, init_h, init_c, peep = [*inputs[3:8], None, None, None, None, None][:5]
    assert x is not None and w is not None and r is not None
    direction = attrs.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ModelError(
            f"{node}: direction {direction!r} given, expected 'forward', 'reverse' or "
            "'bidirectional'"
        )
    directions = 2 if direction == "bidirectional" else 1
    layout = attrs.get("layout", 0)
    if layout not in (0, 1):
        raise ModelError(f"{node}: layout {layout} given, expected 0 or 1")
    dtype = str(x.ty.dtype)
    if dtype not in ("float16", "float32", "float64"):
        raise ModelError(f"{node}: input X is {dtype}, expected float16, float32 or float64")
    # Halves are computed in float32 and rounded once per output.
    acc = "float32" if dtype == "float16" else dtype
    x_ty = x.ty
    if not isinstance(x_ty, relax.TensorType) or not isinstance(x_ty.shape, relax.ShapeExpr):
        raise ModelError(f"{node}: input X needs a known rank-3 shape, got {x_ty}")
    dims = list(x_ty.shape.values)
    if len(dims) != 3:
        raise ModelError(f"{node}: input X has rank {len(dims)}, expected 3")
    if layout == 1:
        dims = [dims[1], dims[0], dims[2]]
    if not isinstance(dims[0], tirx.IntImm):
        raise ModelError(
            f"{node}: the sequence length of input X is {dims[0]}, expected a static "
            "length (the recurrence is unrolled)"
        )
    steps, batch = int(dims[0]), dims[1]
    w_shape, r_shape = static_shape(w), static_shape(r)
    if w_shape is None or r_shape is None or len(w_shape) != 3 or len(r_shape) != 3:
        raise ModelError(f"{node}: inputs W and R need static rank-3 shapes, got {w.ty}, {r.ty}")
    hidden = r_shape[2]
    if attrs.get("hidden_size", hidden) != hidden:
        raise ModelError(
            f"{node}: hidden_size {attrs['hidden_size']} does not match R's last dimension {hidden}"
        )
    expected_w = [directions, gates * hidden, w_shape[2]]
    expected_r = [directions, gates * hidden, hidden]
    if w_shape != expected_w or r_shape != expected_r:
        raise ModelError(
            f"{node}: W is {w_shape} and R is {r_shape}, expected {expected_w} and "
            f"{expected_r} (direction {direction!r}, hidden_size {hidden})"
        )
    clip = attrs.get("clip")
    rec = _Recurrence(node, gates, hidden, acc, None if clip is None else float(clip))
    acts = _activations(node, attrs, defaults, directions, acc)

    def cast(e: relax.Expr) -> relax.Expr:
        e = bb.normalize(e)
        return op.astype(e, acc) if str(e.ty.dtype) != acc else e

    def time_major(e: relax.Expr) -> relax.Expr:
        return op.permute_dims(e, [1, 0, 2]) if layout == 1 else e

    def state(e: relax.Expr | None, name: str) -> relax.Expr:
        if e is None:
            return op.zeros(relax.ShapeExpr([directions, batch, hidden]), acc)
        return bb.emit(cast(time_major(e)))

    def check(e: relax.Expr | None, name: str, width: int) -> None:
        if e is not None and static_shape(e) not in (None, [directions, width]):
            raise ModelError(f"{node}: input {name} is {e.ty}, expected [{directions}, {width}]")

    check(bias, "B", 2 * gates * hidden)
    check(peep, "P", 3 * hidden)
    xs = bb.emit(cast(time_major(x)))  # [seq, batch, input]
    h0, c0 = state(init_h, "initial_h"), state(init_c, "initial_c")
    lens = None
    if seq_lens is not None:
        lens = bb.emit(op.astype(seq_lens, "int64"))
    ys, hs, cs = [], [], []
    for d in range(directions):
        w_d = bb.emit(cast(op.squeeze(op.strided_slice(w, [0], [d], [d + 1]), [0])))
        r_d = bb.emit(cast(op.squeeze(op.strided_slice(r, [0], [d], [d + 1]), [0])))
        if bias is None:
            wb = rb = const(np.zeros(gates * hidden, dtype=acc))
        else:
            b_d = bb.emit(cast(op.squeeze(op.strided_slice(bias, [0], [d], [d + 1]), [0])))
            wb = bb.emit(op.strided_slice(b_d, [0], [0], [gates * hidden]))
            rb = bb.emit(op.strided_slice(b_d, [0], [gates * hidden], [2 * gates * hidden]))
        p_d = None
        if peep is not None:
            p_d = bb.emit(cast(op.squeeze(op.strided_slice(peep, [0], [d], [d + 1]), [0])))
        backward = direction == "reverse" or d == 1
        seq = xs
        index = None
        if backward and lens is not None:
            # Reverse each batch entry's first len positions, keep the padding in place.
            t = const(np.arange(steps, dtype="int64").reshape(steps, 1))
            index = bb.emit(
                op.where(op.less(t, lens), op.subtract(op.subtract(lens, t), const(np.int64(1))), t)
            )
            seq = bb.emit(
                op.gather_elements(xs, op.broadcast_to(op.expand_dims(index, [2]), xs.ty.shape), 0)
            )
        projected = bb.emit(op.add(_matmul_t(seq, w_d), wb))  # [seq, batch, gates*hidden]
        h = bb.emit(op.squeeze(op.strided_slice(h0, [0], [d], [d + 1]), [0]))
        c = bb.emit(op.squeeze(op.strided_slice(c0, [0], [d], [d + 1]), [0]))
        order = range(steps - 1, -1, -1) if backward and lens is None else range(steps)
        outputs: dict[int, relax.Expr] = {}
        for t_i in order:
            x_t = op.squeeze(op.strided_slice(projected, [0], [t_i], [t_i + 1]), [0])
            new_h, new_c = _STEPS[op_type](rec, attrs, acts[d], x_t, h, c, r_d, rb, p_d)
            if lens is not None:
                valid = op.expand_dims(op.less(const(np.int64(t_i)), lens), [1])
                # A step past an entry's length keeps its state and outputs zeros.
                out = op.where(valid, new_h, const(np.zeros((), dtype=acc)))
                new_h, new_c = op.where(valid, new_h, h), op.where(valid, new_c, c)
            else:
                out = new_h
            h, c = bb.emit(new_h), bb.emit(new_c)
            outputs[t_i] = bb.emit(out)
        y = bb.emit(op.stack([outputs[t_i] for t_i in range(steps)], axis=0))
        if index is not None:
            y = bb.emit(
                op.gather_elements(y, op.broadcast_to(op.expand_dims(index, [2]), y.ty.shape), 0)
            )
        ys.append(y)
        hs.append(h)
        cs.append(c)
    y_all = op.stack(ys, axis=1)  # [seq, directions, batch, hidden]
    h_all, c_all = op.stack(hs, axis=0), op.stack(cs, axis=0)
    if layout == 1:
        y_all = op.permute_dims(y_all, [2, 0, 1, 3])
        h_all, c_all = op.permute_dims(h_all, [1, 0, 2]), op.permute_dims(c_all, [1, 0, 2])
    results = [bb.emit(op.astype(e, dtype)) for e in (y_all, h_all, c_all)]
    results = results[: attrs["_num_outputs"]]
    return relax.Tuple(results) if len(results) > 1 else results[0]


Step = Callable[..., tuple[relax.Expr, relax.Expr]]


def _rnn_step(
    rec: _Recurrence,
    attrs: dict[str, Any],
    acts: list[Activation],
    x_t: relax.Expr,
    h: relax.Expr,
    c: relax.Expr,
    r: relax.Expr,
    rb: relax.Expr,
    p: relax.Expr | None,
) -> tuple[relax.Expr, relax.Expr]:
    """``H = f(x W^T + h R^T + Wb + Rb)``."""
    return acts[0](rec.clipped(relax.op.add(relax.op.add(x_t, _matmul_t(h, r)), rb))), c


def _gru_step(
    rec: _Recurrence,
    attrs: dict[str, Any],
    acts: list[Activation],
    x_t: relax.Expr,
    h: relax.Expr,
    c: relax.Expr,
    r: relax.Expr,
    rb: relax.Expr,
    p: relax.Expr | None,
) -> tuple[relax.Expr, relax.Expr]:
    """Update gate z, reset gate r, candidate from the reset state (or, with
    linear_before_reset, the reset applied after the recurrent product)."""
    op = relax.op
    f, g = acts
    r_zr = op.strided_slice(r, [0], [0], [2 * rec.hidden])
    zr = op.add(op.add(rec.gate(x_t, 0, 2), _matmul_t(h, r_zr)), rec.gate(rb, 0, 2))
    z, reset = f(rec.clipped(rec.gate(zr, 0))), f(rec.clipped(rec.gate(zr, 1)))
    r_h = op.strided_slice(r, [0], [2 * rec.hidden], [3 * rec.hidden])
    rb_h = rec.gate(rb, 2)
    if attrs.get("linear_before_reset", 0):
        recurrent = op.multiply(reset, op.add(_matmul_t(h, r_h), rb_h))
    else:
        recurrent = op.add(_matmul_t(op.multiply(reset, h), r_h), rb_h)
    candidate = g(rec.clipped(op.add(rec.gate(x_t, 2), recurrent)))
    one = const(np.array(1, dtype=rec.dtype))
    return op.add(op.multiply(op.subtract(one, z), candidate), op.multiply(z, h)), c


def _lstm_step(
    rec: _Recurrence,
    attrs: dict[str, Any],
    acts: list[Activation],
    x_t: relax.Expr,
    h: relax.Expr,
    c: relax.Expr,
    r: relax.Expr,
    rb: relax.Expr,
    p: relax.Expr | None,
) -> tuple[relax.Expr, relax.Expr]:
    """Gates i, o, f, c (in that order), peepholes i, o, f; ``input_forget`` couples
    the forget gate to ``1 - i``."""
    op = relax.op
    f, g, h_act = acts
    gates = op.add(op.add(x_t, _matmul_t(h, r)), rb)

    def peephole(pre: relax.Expr, k: int, cell: relax.Expr) -> relax.Expr:
        return pre if p is None else op.add(pre, op.multiply(rec.gate(p, k), cell))

    i = f(rec.clipped(peephole(rec.gate(gates, 0), 0, c)))
    if attrs.get("input_forget", 0):
        forget = op.subtract(const(np.array(1, dtype=rec.dtype)), i)
    else:
        forget = f(rec.clipped(peephole(rec.gate(gates, 2), 2, c)))
    cell = op.add(op.multiply(forget, c), op.multiply(i, g(rec.clipped(rec.gate(gates, 3)))))
    o = f(rec.clipped(peephole(rec.gate(gates, 1), 1, cell)))
    return op.multiply(o, h_act(rec.clipped(cell))), cell


_STEPS: dict[str, Step] = {"RNN": _rnn_step, "GRU": _gru_step, "LSTM": _lstm_step}


def _converter(op_type: str, defaults: Sequence[str], gates: int) -> Callable[..., relax.Expr]:
    def convert(
        bb: relax.BlockBuilder,
        inputs: list[relax.Expr | None],
        attrs: dict[str, Any],
        fallback: Callable[[], relax.Expr],
    ) -> relax.Expr:
        return _run(bb, op_type, inputs, attrs, defaults, gates)

    convert.__doc__ = f"ONNX {op_type}, unrolled over its static sequence length."
    convert.__qualname__ = convert.__name__ = op_type.lower()
    return convert


for _op_type, _defaults, _gates in (
    ("RNN", ("Tanh",), 1),
    ("GRU", ("Sigmoid", "Tanh"), 3),
    ("LSTM", ("Sigmoid", "Tanh", "Tanh"), 4),
):
    register_converter("", _op_type, 7)(_converter(_op_type, _defaults, _gates))
