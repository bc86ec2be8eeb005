"""What each oneDNN primitive's composite becomes in C++: the lines that build its op
(the body of the factory function :mod:`.codegen` wraps around them) and the arguments
it passes, in the order the ``runtime/ops.cc`` factory reads them. One emitter per row of
:mod:`.primitives`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tvm import relax

from tvmext.errors import CompileError
from tvmext.target.dnnl import layouts, patterns, symbolic

# Relax activation -> (oneDNN post-op kind, alpha): SiLU is oneDNN's swish,
# x * sigmoid(alpha * x), with alpha 1.
_ELTWISE = {
    "relax.nn.relu": ("tvmext_dnnl::kRelu", "0.f"),
    "relax.nn.gelu": ("tvmext_dnnl::kGeluErf", "0.f"),
    "relax.nn.gelu_tanh": ("tvmext_dnnl::kGeluTanh", "0.f"),
    "relax.sigmoid": ("tvmext_dnnl::kSigmoid", "0.f"),
    "relax.nn.silu": ("tvmext_dnnl::kSwish", "1.f"),
}
_BINARY = {"relax.add": "tvmext_dnnl::kAdd", "relax.multiply": "tvmext_dnnl::kMul"}


@dataclass
class Composite:
    """A composite function and the position of each of its params in the caller."""

    symbol: str
    name: str
    bindings: list[tuple[relax.Var, relax.Call]]
    param_index: dict[relax.Var, int]
    n_params: int
    param_shapes: list[tuple[int | symbolic.Dim, ...]]
    math: str = "tvmext_dnnl::kF32"  # what convolutions and matmuls multiply in
    # The caller's arguments the op reads (their positions), in the op's order.
    args: list[int] = field(default_factory=list)

    def arg(self, expr: relax.Expr) -> None:
        """Pass the caller's argument bound to ``expr`` (a param of the composite)."""
        if expr not in self.param_index:
            raise CompileError(f"{self.name} ({self.symbol}): {expr} is not a parameter")
        self.args.append(self.param_index[expr])


def _shape(expr: relax.Expr) -> tuple[int | symbolic.Dim, ...]:
    shape = symbolic.known_shape(expr)
    if shape is None:
        raise CompileError(f"dnnl codegen: {expr} has no known shape")
    return shape


def _float(value: float) -> str:
    """A C++ float literal; infinities (an open clip bound) as INFINITY."""
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return f"{float(value)!r}f"


def _ints(values: Sequence[int]) -> str:
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


class Setup:
    """The lines that build one op (the body of its factory function)."""

    def __init__(self, dynamic: bool = False) -> None:
        self.lines: list[str] = []
        self._count = 0
        self.dynamic = dynamic  # built once per shape: no function-local statics

    def desc(self, desc: layouts.Desc) -> str:
        self._count += 1
        name = f"d{self._count}"
        self.lines.append(f"const tvmext_dnnl::Desc {name} = {desc.cpp()};")
        return name

    def ints(self, values: Sequence[int]) -> str:
        self._count += 1
        name = f"i{self._count}"
        self.lines.append(f"const int64_t {name}[] = {_ints(values)};")
        return name

    def ret(self, expr: str) -> None:
        self.lines.append(f"return {expr};")

    def text(self) -> str:
        return "\n".join("  " + line for line in self.lines)


Emitter = Callable[[Composite, Setup], None]


def _post_ops(
    c: Composite, setup: Setup, view: layouts.View, root: int = 0, *, bias_ok: bool = True
) -> tuple[str, str]:
    """Emit the post-ops after the root (``c.bindings[root]``, up to a view of the result)
    and pass their inputs; with ``bias_ok``, a first add of one value per output channel
    becomes the primitive's bias. Returns (bias, post-op list)."""
    bias = "nullptr"
    entries: list[str] = []
    previous = c.bindings[root][0]
    chain = [(v, call) for v, call in c.bindings[root + 1 :] if call.op.name not in patterns.VIEWS]
    for position, (var, call) in enumerate(chain):
        name = call.op.name
        if name in _ELTWISE:
            kind, alpha = _ELTWISE[name]
            entries.append(f"{{{kind}, {alpha}, 0.f, {{}}}}")
        elif name == "relax.clip":
            lo, hi = (_float(a.value) for a in call.args[1:])
            entries.append(f"{{tvmext_dnnl::kClip, {lo}, {hi}, {{}}}}")
        elif name in _BINARY:
            other = call.args[1] if call.args[0].same_as(previous) else call.args[0]
            shape = _shape(other)
            if bias_ok and position == 0 and name == "relax.add" and view.is_bias(shape):
                channels = view.shape[view.layout.index("C")] if view.layout else shape[-1]
                bias_desc = (
                    layouts.plain((channels,)) if view.layout else view.desc(shape)
                )  # fmt: skip
                bias = "&" + setup.desc(bias_desc)
                c.args.insert(2, c.param_index[other])  # after src and weights
            else:
                entries.append(f"{{{_BINARY[name]}, 0.f, 0.f, {setup.desc(view.desc(shape))}}}")
                c.arg(other)
        else:
            raise CompileError(f"dnnl codegen: {c.name} has an unknown post-op {name}")
        previous = var
    if not entries:
        return bias, "nullptr, 0"
    storage = "const" if setup.dynamic else "static const"
    setup.lines.append(f"{storage} tvmext_dnnl::PostOp post[] = {{{', '.join(entries)}}};")
    return bias, f"post, {len(entries)}"


def _convolution(c: Composite, setup: Setup, transposed: bool) -> None:
    """A 1-D, 2-D or 3-D convolution, or a transposed one (``padding`` holds the leading
    pads, then the trailing ones; a transposed convolution's ``output_padding`` extends
    its output, i.e. takes from its trailing pads)."""
    _, call = c.bindings[0]
    attrs = call.attrs
    data, weight = call.args
    c.arg(data)
    c.arg(weight)
    view = layouts.conv_view(call)
    src = setup.desc(layouts.in_layout(_shape(data), str(attrs.data_layout), view.logical))
    weights = layouts.conv_transpose_weights if transposed else layouts.conv_weights
    wei = setup.desc(weights(_shape(weight), str(attrs.kernel_layout), int(attrs.groups)))
    dst = setup.desc(view.out())
    pad = [int(p) for p in attrs.padding]
    n = len(pad) // 2
    trailing = pad[n:]
    if transposed:
        trailing = [p - int(e) for p, e in zip(trailing, attrs.output_padding, strict=True)]
    stride, pad_l = setup.ints(attrs.strides), setup.ints(pad[:n])
    pad_r, dilation = setup.ints(trailing), setup.ints(attrs.dilation)
    bias, post = _post_ops(c, setup, view)
    primitive = "deconvolution" if transposed else "convolution"
    setup.ret(
        f"tvmext_dnnl::{primitive}({src}, {wei}, {bias}, {dst}, {stride}, {pad_l}, {pad_r}, "
        f"{dilation}, {post}, {c.math})"
    )


def conv(c: Composite, setup: Setup) -> None:
    _convolution(c, setup, transposed=False)


def conv_transpose(c: Composite, setup: Setup) -> None:
    _convolution(c, setup, transposed=True)


def _matmul(c: Composite, setup: Setup, dense: bool) -> None:
    """A dense layer, or a batched matmul whose operands and result may be views (see
    :mod:`.primitives`): strided descriptors of the buffers underneath."""
    root = next(i for i, (_, call) in enumerate(c.bindings) if call.op.name == "relax.matmul")
    call = c.bindings[root][1]
    values = dict(c.bindings)
    after = [call for _, call in c.bindings[root + 1 :]]
    permute = next((v for v in after if v.op.name == "relax.permute_dims"), None)
    if dense:
        view = layouts.dense_view(call)
        a_shape = _shape(call.args[0])
        operands = [
            (call.args[0], layouts.plain((math.prod(a_shape[:-1]), a_shape[-1]))),
            (call.args[1], layouts.plain(_shape(call.args[1]))),
        ]
    else:
        axes = layouts.permute_axes(permute) if permute is not None else None
        view = layouts.matmul_view(call, axes)
        operands = [layouts.input_view(arg, values) for arg in call.args]
        operands = [(base, desc.padded(len(view.shape))) for base, desc in operands]
    for base, _ in operands:
        c.arg(base)
    src_name, wei_name = (setup.desc(desc) for _, desc in operands)
    dst = setup.desc(view.out())
    bias, post = _post_ops(c, setup, view, root)
    const = "true" if dense else "false"
    setup.ret(
        f"tvmext_dnnl::matmul({src_name}, {wei_name}, {bias}, {dst}, {const}, {post}, {c.math})"
    )


def dense(c: Composite, setup: Setup) -> None:
    _matmul(c, setup, dense=True)


def matmul(c: Composite, setup: Setup) -> None:
    _matmul(c, setup, dense=False)


def _int8_product(c: Composite, op: str) -> tuple[relax.Call, patterns.Int8Operand, str]:
    """The integer product ``op`` of ``c`` (see :mod:`.primitives`), its uint8/int8
    operand before the widening (read in place) and the C++ arguments saying whether
    that is signed and has a zero point; the tensors passed."""
    call = next(call for _, call in c.bindings if call.op.name == op)
    operand = patterns.int8_operand_of(call.args[0], dict(c.bindings))
    if operand is None:
        raise CompileError(f"dnnl codegen: {c.name} ({c.symbol}) has no int8 operand")
    c.arg(operand.data)
    c.arg(call.args[1])
    if operand.zero_point is not None:
        c.arg(operand.zero_point)
    signed = "true" if str(operand.data.ty.dtype) == "int8" else "false"
    zero_point = "false" if operand.zero_point is None else "true"
    return call, operand, f"{signed}, {zero_point}"


def _requant(c: Composite, setup: Setup, requant: patterns.Requantization | None) -> str:
    """Pass the requantization's operands; the C++ pointer to its ``Requant``."""
    if requant is None:
        return "nullptr"
    bias = requant.bias if requant.bias is not None else requant.float_bias
    if bias is not None:
        c.arg(bias)
    for operand in (requant.scale, requant.out_scale, requant.out_zero_point):
        c.arg(operand)
    kind = (
        "tvmext_dnnl::kIntBias" if requant.bias is not None
        else "tvmext_dnnl::kFloatBias" if requant.float_bias is not None
        else "tvmext_dnnl::kNoBias"
    )  # fmt: skip
    scales = math.prod(int(d) for d in _shape(requant.scale))
    signed = "true" if requant.dtype == "int8" else "false"
    setup.lines.append(f"const tvmext_dnnl::Requant requant{{{kind}, {scales}, {signed}}};")
    return "&requant"


def dense_int8(c: Composite, setup: Setup) -> None:
    _dense_int8(c, setup, None)


def dense_int8_requant(c: Composite, setup: Setup) -> None:
    """:func:`dense_int8` with its requantization (:func:`.patterns.requantized`)."""
    _dense_int8(c, setup, patterns.requantization_of(c.bindings[-1][1], dict(c.bindings)))


def _dense_int8(c: Composite, setup: Setup, requant: patterns.Requantization | None) -> None:
    call, operand, flags = _int8_product(c, "relax.matmul")
    shape, (k, n) = _shape(operand.data), _shape(call.args[1])
    rows = math.prod(shape[:-1])
    src, wei, dst = (setup.desc(layouts.plain(s)) for s in ((rows, k), (k, n), (rows, n)))
    fused = _requant(c, setup, requant)
    setup.ret(f"tvmext_dnnl::dense_int8({src}, {flags}, {wei}, {dst}, {fused})")


def conv2d_int8(c: Composite, setup: Setup) -> None:
    """The uint8/int8 tensor read through its permutation to NHWC, if any."""
    _conv2d_int8(c, setup, None)


def conv2d_int8_requant(c: Composite, setup: Setup) -> None:
    """:func:`conv2d_int8` with its requantization (:func:`.patterns.requantized`): the
    uint8/int8 result written through its permutation, if any."""
    out = c.bindings[-1][1]
    _conv2d_int8(c, setup, patterns.requantization_of(out, dict(c.bindings)))


def _conv2d_int8(c: Composite, setup: Setup, requant: patterns.Requantization | None) -> None:
    call, operand, flags = _int8_product(c, "relax.nn.conv2d")
    attrs = call.attrs
    shape = _shape(operand.data)
    buffer = (
        layouts.plain(shape) if operand.axes is None else layouts.permuted_in(shape, operand.axes)
    )
    src = setup.desc(layouts.reordered(buffer, str(attrs.data_layout), "NCHW"))
    wei = setup.desc(
        layouts.conv_weights(_shape(call.args[1]), str(attrs.kernel_layout), int(attrs.groups))
    )
    view = layouts.conv_view(call)
    if requant is not None and requant.axes is not None:
        written = layouts.Desc(view.shape, layouts.permuted_out(view.shape, requant.axes))
        dst = setup.desc(layouts.reordered(written, view.layout, view.logical))
    else:
        dst = setup.desc(view.out())
    pad = [int(p) for p in attrs.padding]
    stride, pad_l = setup.ints(attrs.strides), setup.ints(pad[:2])
    pad_r, dilation = setup.ints(pad[2:]), setup.ints(attrs.dilation)
    fused = _requant(c, setup, requant)
    setup.ret(
        f"tvmext_dnnl::conv2d_int8({src}, {flags}, {wei}, {dst}, {stride}, "
        f"{pad_l}, {pad_r}, {dilation}, {fused})"
    )


def pool(c: Composite, setup: Setup) -> None:
    """1-D, 2-D or 3-D max or average pooling; a ``ceil_mode`` window past the end is a
    larger trailing pad."""
    _, call = c.bindings[0]
    attrs = call.attrs
    (data,) = call.args
    c.arg(data)
    layout = str(attrs.layout)
    in_shape, out_shape = _shape(data), _shape(call)
    axes = layouts.spatial_axes(len(in_shape))
    src = setup.desc(layouts.in_layout(in_shape, layout, "NC" + axes))
    dst = setup.desc(layouts.in_layout(out_shape, layout, "NC" + axes))
    kernel = [int(k) for k in attrs.pool_size]
    strides = [int(s) for s in attrs.strides]
    dilation = [int(d) for d in attrs.dilation]
    pad = [int(p) for p in attrs.padding]
    n = len(axes)
    pad_r = [
        max(pad[n + i], (out_shape[ax] - 1) * strides[i] + (kernel[i] - 1) * dilation[i] + 1
            - in_shape[ax] - pad[i])
        for i, ax in enumerate(layout.index(a) for a in axes)
    ]  # fmt: skip
    if call.op.name.startswith("relax.nn.max_pool"):
        kind = "kMaxPool"
    else:
        kind = "kAvgPoolWithPadding" if bool(attrs.count_include_pad) else "kAvgPoolWithoutPadding"
    args = [setup.ints(v) for v in (kernel, strides, pad[:n], pad_r, dilation)]
    setup.ret(f"tvmext_dnnl::pooling(tvmext_dnnl::{kind}, {src}, {dst}, {', '.join(args)})")


def mean(c: Composite, setup: Setup) -> None:
    """A reduction, or for H and W of NHWC an average pooling over the whole image."""
    _, call = c.bindings[0]
    (data,) = call.args
    c.arg(data)
    shape = _shape(data)
    if patterns.is_spatial_mean(call):
        n, h, w, ch = shape
        src = setup.desc(layouts.in_layout(shape, "NHWC", "NCHW"))
        dst = setup.desc(layouts.in_layout((n, 1, 1, ch), "NHWC", "NCHW"))
        args = [setup.ints(v) for v in ((h, w), (1, 1), (0, 0), (0, 0), (1, 1))]
        kind = "tvmext_dnnl::kAvgPoolWithoutPadding"
        setup.ret(f"tvmext_dnnl::pooling({kind}, {src}, {dst}, {', '.join(args)})")
        return
    rank = len(shape)
    axes = range(rank) if call.attrs.axis is None else [int(a) % rank for a in call.attrs.axis]
    reduced = tuple(1 if i in axes else d for i, d in enumerate(shape))
    src, dst = setup.desc(layouts.plain(shape)), setup.desc(layouts.plain(reduced))
    setup.ret(f"tvmext_dnnl::reduce_mean({src}, {dst})")


def resize2d(c: Composite, setup: Setup) -> None:
    _, call = c.bindings[0]
    data = call.args[0]
    c.arg(data)
    layout = str(call.attrs.layout)
    src = setup.desc(layouts.in_layout(_shape(data), layout, "NCHW"))
    dst = setup.desc(layouts.in_layout(_shape(call), layout, "NCHW"))
    linear = "true" if str(call.attrs.method) == "linear" else "false"
    setup.ret(f"tvmext_dnnl::resampling({linear}, {src}, {dst})")


def binary(c: Composite, setup: Setup) -> None:
    """An add or multiply; the operand of the output's shape is oneDNN's src0."""
    _, call = c.bindings[0]
    out = _shape(call)
    full, other = call.args if _shape(call.args[0]) == out else reversed(call.args)
    c.arg(full)
    c.arg(other)
    view = layouts.binary_view(call)
    src0, src1 = setup.desc(layouts.plain(out)), setup.desc(view.desc(_shape(other)))
    _, post = _post_ops(c, setup, view, bias_ok=False)
    kind = _BINARY[call.op.name]
    setup.ret(f"tvmext_dnnl::binary({kind}, {src0}, {src1}, {setup.desc(view.out())}, {post})")


def transpose(c: Composite, setup: Setup) -> None:
    """``permute_dims`` as a oneDNN reorder from a strided view of the input."""
    _, call = c.bindings[0]
    (data,) = call.args
    c.arg(data)
    src = setup.desc(layouts.permuted_in(_shape(data), layouts.permute_axes(call)))
    setup.ret(f"tvmext_dnnl::reorder({src}, {setup.desc(layouts.plain(_shape(call)))})")


def softmax(c: Composite, setup: Setup) -> None:
    _, call = c.bindings[0]
    (data,) = call.args
    c.arg(data)
    shape = _shape(data)
    desc = setup.desc(layouts.plain(shape))
    log = "true" if call.op.name == "relax.nn.log_softmax" else "false"
    axis = int(call.attrs.axis) % len(shape)
    setup.ret(f"tvmext_dnnl::softmax({desc}, {desc}, {axis}, {log})")


def layer_norm(c: Composite, setup: Setup) -> None:
    _, call = c.bindings[0]
    for arg in call.args:
        c.arg(arg)
    desc = setup.desc(layouts.plain(_shape(call.args[0])))
    setup.ret(f"tvmext_dnnl::layer_norm({desc}, {desc}, {_float(float(call.attrs.epsilon))})")
