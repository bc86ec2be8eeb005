"""The pieces the rows of the oneDNN pattern table (:mod:`.primitives`) are made of:
patterns (post-ops, matmul operands read through views, widened integer operands)
and checks, each returning the reason a match is rejected (None to accept it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, wildcard
from tvm.relax.transform import PatternCheckContext

from tvmext.target.dnnl import layouts
from tvmext.target.dnnl.symbolic import computable, dimension_sources, is_static, known_shape

INT8_TYPES = ("uint8", "int8")
INT8_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}
ACTIVATIONS = (
    "relax.nn.relu",
    "relax.nn.gelu",
    "relax.nn.gelu_tanh",
    "relax.sigmoid",
    "relax.nn.silu",
)
BINARY = ("relax.add", "relax.multiply")
VIEWS = ("relax.permute_dims", "relax.reshape")


def post_op(prev: DFPattern) -> DFPattern:
    """One post-op applied to ``prev``: an activation, clip, or a binary add/multiply."""
    unary = [is_op(name)(prev) for name in ACTIVATIONS]
    unary.append(is_op("relax.clip")(prev, wildcard(), wildcard()))
    binary = [
        is_op(name)(a, b) for name in BINARY for a, b in ((prev, wildcard()), (wildcard(), prev))
    ]
    alternatives = [*unary, *binary]
    pattern = alternatives[0]
    for alt in alternatives[1:]:
        pattern = pattern | alt
    return pattern


def _tensor_reason(call: relax.Call, what: str) -> str | None:
    """Why oneDNN cannot take the tensors of ``call`` (dtype, known shape), if it cannot."""
    for expr in [call, *call.args]:
        if not isinstance(expr.ty, relax.TensorType):
            continue
        if str(expr.ty.dtype) != "float32":
            return f"{what} uses dtype {expr.ty.dtype}; the dnnl target takes float32 only"
        if known_shape(expr) is None:
            return f"{what} has an unknown shape; oneDNN needs its dims (static or symbolic)"
    return None


def float32_tensors(ctx: PatternCheckContext, root: relax.Call) -> str | None:
    """Why the match's tensors are not float32 of known dims: the root op first (the same
    reason for every row that tries it), then post-ops; then the symbolic dims, which the
    generated code computes from the inputs' shapes."""
    reason = _tensor_reason(root, root.op.name.removeprefix("relax."))
    calls = {
        var: value for var, value in ctx.matched_bindings.items() if isinstance(value, relax.Call)
    }
    for var, value in calls.items():
        if reason is None and not value.same_as(root):
            kind = "view" if value.op.name in VIEWS else "post-op"
            reason = _tensor_reason(value, f"{kind} {value.op.name} {var.name}")
    if reason is not None:
        return reason
    inputs = [
        arg
        for value in calls.values()
        for arg in value.args
        if isinstance(arg.ty, relax.TensorType)
        and arg not in calls
        and not any(arg.same_as(c) for c in calls.values())
    ]
    input_shapes = [known_shape(x) or () for x in inputs]
    sources = dimension_sources(input_shapes)
    for shape in [*input_shapes, *(known_shape(c) or () for c in calls.values())]:
        for d in shape:
            if not computable(d, sources):
                return (
                    f"its dim {d} is not a function of its inputs' dims "
                    f"({', '.join(sources) or 'all static'})"
                )
    return None


def post_ops_reason(ctx: PatternCheckContext, root: relax.Expr, view: layouts.View) -> str | None:
    """Every binary post-op input must broadcast to the output in ``view``'s dims."""
    out = known_shape(root)
    for var, value in ctx.matched_bindings.items():
        if not isinstance(value, relax.Call) or value.same_as(root):
            continue
        name = value.op.name
        if name == "relax.clip":
            if not all(isinstance(getattr(a, "value", None), int | float) for a in value.args[1:]):
                return f"clip {var.name}: bounds must be constants"
            continue
        if name not in BINARY:
            continue
        first_in_chain = value.args[0] in ctx.matched_bindings or value.args[0].same_as(root)
        other = value.args[1] if first_in_chain else value.args[0]
        if other in ctx.matched_bindings:
            return f"{name} {var.name}: both operands come from the fused chain"
        shape = known_shape(other)
        if shape is None or out is None:
            return f"{name} {var.name}: the other operand's shape is not static"
        reason = view.broadcast_reason(shape)
        if reason:
            return f"{name} {var.name}: {reason}"
    return None


def _channel_layouts(rank: int) -> tuple[str, str]:
    """The layouts oneDNN reads without a reorder: channels first or last (NCHW, NHWC)."""
    spatial = layouts.spatial_axes(rank)
    return f"NC{spatial}", f"N{spatial}C"


def check_conv(call: relax.Call) -> str | None:
    attrs = call.attrs
    what = call.op.name.removeprefix("relax.nn.")
    rank = len(known_shape(call.args[0]) or ())
    if rank not in (3, 4, 5):
        return f"{what} of a rank-{rank} tensor"
    wanted = _channel_layouts(rank)
    if str(attrs.data_layout) not in wanted or str(attrs.out_layout) not in wanted:
        return f"{what} layout {attrs.data_layout}->{attrs.out_layout} is not {' or '.join(wanted)}"
    weights = "OI" + layouts.spatial_axes(rank)
    if sorted(str(attrs.kernel_layout)) != sorted(weights):
        return f"{what} kernel layout {attrs.kernel_layout} is not a permutation of {weights}"
    return None


def check_conv_transpose(call: relax.Call) -> str | None:
    """:func:`check_conv`, and an ``output_padding`` within the trailing pads (it takes
    from them)."""
    reason = check_conv(call)
    if reason is not None:
        return reason
    pads = [int(p) for p in call.attrs.padding]
    trailing = pads[len(pads) // 2 :]
    extra = [int(p) for p in call.attrs.output_padding]
    if any(p < e for p, e in zip(trailing, extra, strict=True)):
        what = call.op.name.removeprefix("relax.nn.")
        return f"{what} with output_padding {extra} beyond its trailing padding {trailing}"
    return None


def check_dense(call: relax.Call) -> str | None:
    a, b = (known_shape(x) for x in call.args)
    if a is None or b is None:
        return None  # reported by the dtype/shape check
    if len(b) != 2 or len(a) < 2:
        return f"matmul of shapes {list(a)} x {list(b)}: dense needs x[..., K] @ W[K, N]"
    return None


def check_matmul(call: relax.Call) -> str | None:
    a, b = (known_shape(x) for x in call.args)
    if a is None or b is None:
        return None
    if len(a) < 2 or len(b) < 2 or max(len(a), len(b)) > layouts.MAX_RANK:
        return f"matmul of shapes {list(a)} x {list(b)}: oneDNN needs ranks 2..{layouts.MAX_RANK}"
    for da, db in zip(a[-3::-1], b[-3::-1], strict=False):
        if da != db and 1 not in (da, db):
            return f"matmul batch dims {list(a[:-2])} and {list(b[:-2])} do not broadcast"
    return None


def _spatial_static(shapes: list[relax.Expr], layout: str) -> bool:
    """Whether the spatial dims of ``shapes`` (tensors in ``layout``) are static (pooling
    windows and pads are computed from them)."""
    axes = [i for i, axis in enumerate(layout) if axis not in "NC"]
    known = [known_shape(x) or () for x in shapes]
    return all(len(s) == len(layout) and is_static([s[i] for i in axes]) for s in known)


def check_pool(call: relax.Call) -> str | None:
    attrs = call.attrs
    wanted = _channel_layouts(len(known_shape(call.args[0]) or "NCW"))
    if str(attrs.layout) not in wanted or str(attrs.out_layout) != str(attrs.layout):
        return f"pooling layout {attrs.layout}->{attrs.out_layout} is not {' or '.join(wanted)}"
    if not _spatial_static([call.args[0], call], str(attrs.layout)):
        return "pooling over symbolic spatial dims"
    if bool(attrs.ceil_mode) and call.op.name.startswith("relax.nn.avg_pool"):
        return "average pooling with ceil_mode counts padding differently in oneDNN"
    return None


def check_layer_norm(call: relax.Call) -> str | None:
    attrs = call.attrs
    rank = len(known_shape(call.args[0]) or ())
    axes = [int(a) % rank for a in attrs.axes] if rank else []
    if axes != [rank - 1]:
        return f"layer_norm over axes {list(attrs.axes)}; oneDNN normalizes the last axis only"
    if not (bool(attrs.center) and bool(attrs.scale)):
        return "layer_norm without scale and shift"
    return None


def check_mean(call: relax.Call) -> str | None:
    rank = len(known_shape(call.args[0]) or ())
    axes = sorted(int(a) % rank for a in call.attrs.axis) if rank and call.attrs.axis else []
    if axes and axes != list(range(rank - len(axes), rank)) and not is_spatial_mean(call):
        return (
            f"mean over axes {axes} of a rank-{rank} tensor: oneDNN reduces leading or "
            f"middle axes with its reference kernel (slow); only trailing axes, and H and W "
            f"of an NHWC tensor (as average pooling), are offloaded"
        )
    return None


def is_spatial_mean(call: relax.Call) -> bool:
    """A mean over H and W of an NHWC tensor (global average pooling), which oneDNN's
    pooling computes with its jit kernel."""
    rank = len(known_shape(call.args[0]) or ())
    return (
        rank == 4
        and sorted(int(a) % rank for a in call.attrs.axis or ()) == [1, 2]
        and _spatial_static([call.args[0]], "NHWC")
    )


def check_resize(call: relax.Call) -> str | None:
    """oneDNN resamples linearly with half-pixel centres (PyTorch's align_corners=False)
    and to the nearest pixel as PyTorch's "nearest" does at integer upscales."""
    attrs = call.attrs
    layout, method = str(attrs.layout), str(attrs.method)
    mode = str(attrs.coordinate_transformation_mode)
    if layout not in ("NCHW", "NHWC"):
        return f"resize2d layout {layout} is not NCHW or NHWC"
    src, dst = known_shape(call.args[0]), known_shape(call)
    if src is None or dst is None:
        return None  # reported by the dtype/shape check
    axes = [layout.index("H"), layout.index("W")]
    if method == "linear":
        half_pixel = mode == "half_pixel" or (
            mode == "pytorch_half_pixel" and all(dst[a] > 1 for a in axes)
        )
        return None if half_pixel else f"linear resize2d with {mode} coordinates"
    upscale = all(dst[a] % src[a] == 0 for a in axes)
    floor = mode == "asymmetric" and str(attrs.rounding_method) == "floor"
    if method == "nearest_neighbor" and floor and upscale:
        return None
    return (
        f"resize2d {method} ({mode}, rounding {attrs.rounding_method}) from {list(src)} to "
        f"{list(dst)}: oneDNN takes linear with half-pixel centres, and nearest at integer "
        f"upscales with asymmetric coordinates rounded down"
    )


def check_transpose(call: relax.Call) -> str | None:
    shape = known_shape(call.args[0]) or ()
    moved = [a for a in layouts.permute_axes(call) if shape[a] != 1]
    if moved == sorted(moved):
        return "permute_dims moves only dims of size 1: a reshape, no data moves"
    return None


def check_binary(call: relax.Call) -> str | None:
    out = known_shape(call)
    shapes = [known_shape(arg) for arg in call.args]
    if any(isinstance(arg, tvm.ir.expr.Constant) for arg in call.args):
        return "an operand is a constant: TVM fuses it into the kernel before or after"
    if out is None or None in shapes:
        return None  # reported by the dtype/shape check
    if out not in shapes:
        return (
            f"operands of shapes {[list(s) for s in shapes if s]} both broadcast: oneDNN's "
            f"binary needs one of the output's shape {list(out)}"
        )
    return None


def int8_operand() -> DFPattern:
    """An integer product's operand: ``astype(x, "int32")``, minus a constant zero point
    or not, maybe through a ``permute_dims`` (the NHWC layout)."""
    widened = is_op("relax.astype")(wildcard())
    value = is_op("relax.subtract")(widened, is_const()) | widened
    return is_op("relax.permute_dims")(value) | value


@dataclass(frozen=True)
class Int8Operand:
    """What :func:`int8_operand` matched: the tensor, its zero point, the permutation."""

    data: relax.Expr
    widened: relax.Call
    zero_point: relax.Expr | None
    axes: list[int] | None


def int8_operand_of(expr: relax.Expr, values: dict[relax.Var, relax.Expr]) -> Int8Operand | None:
    """Follow ``expr`` through the bindings ``values`` of a matched chain."""
    call = values.get(expr)
    axes = None
    if layouts.op_name(call) == "relax.permute_dims":
        assert isinstance(call, relax.Call)
        axes, expr = layouts.permute_axes(call), call.args[0]
        call = values.get(expr)
    zero_point = None
    if layouts.op_name(call) == "relax.subtract":
        assert isinstance(call, relax.Call)
        zero_point, expr = call.args[1], call.args[0]
        call = values.get(expr)
    if layouts.op_name(call) != "relax.astype":
        return None
    assert isinstance(call, relax.Call)
    return Int8Operand(call.args[0], call, zero_point, axes)


def _dtype(expr: relax.Expr) -> str:
    return str(expr.ty.dtype) if isinstance(expr.ty, relax.TensorType) else "?"


def requantized(product: DFPattern) -> DFPattern:
    """An integer product's int32 sum as DequantizeLinear then QuantizeLinear leave it:
    ``astype(clip(round((astype(product [+ bias], f32) * scale [+ float_bias]) /
    out_scale) + out_zero_point, lo, hi) [permuted], uint8 | int8)``, every operand a
    constant (a convolution's bias is quantized, a MatMul's Add after it is not)."""
    summed = is_op("relax.add")(product, is_const()) | product
    scaled = is_op("relax.multiply")(is_op("relax.astype")(summed), is_const())
    biased = is_op("relax.add")(scaled, is_const()) | scaled
    rounded = is_op("relax.round")(is_op("relax.divide")(biased, is_const()))
    shifted = is_op("relax.add")(rounded, is_const())
    clipped = is_op("relax.clip")(shifted, wildcard(), wildcard())
    return is_op("relax.astype")(is_op("relax.permute_dims")(clipped) | clipped)


@dataclass(frozen=True)
class Requantization:
    """What :func:`requantized` matched: the product and the requantization's operands."""

    product: relax.Call
    bias: relax.Expr | None  # int32, added to the sum
    float_bias: relax.Expr | None  # float32, added after the scale
    scale: relax.Expr
    out_scale: relax.Expr
    out_zero_point: relax.Expr
    bounds: tuple[float, float] | None  # the clip's, when they are constants
    axes: list[int] | None  # the permutation of the result, if any
    dtype: str  # uint8 or int8
    widened_to: str  # the type the sum is cast to before the scale


def requantization_of(out: relax.Expr, values: dict[relax.Var, relax.Expr]) -> Requantization:
    """Follow a chain :func:`requantized` matched back from its result ``out`` through
    the bindings ``values``."""

    def arg(call: relax.Expr, op: str, i: int = 0) -> relax.Expr:
        if layouts.op_name(call) != op:
            raise ValueError(f"{call} is not {op}")
        assert isinstance(call, relax.Call)
        inner = call.args[i]
        return values.get(inner, inner)

    cast = out
    inner = arg(cast, "relax.astype")
    axes = None
    if layouts.op_name(inner) == "relax.permute_dims":
        assert isinstance(inner, relax.Call)
        axes = layouts.permute_axes(inner)
        inner = arg(inner, "relax.permute_dims")
    clip = inner
    assert isinstance(clip, relax.Call)
    # constant bounds are FloatImm/IntImm, whose value is a Python number
    low, high = (getattr(bound, "value", None) for bound in clip.args[1:])
    bounds = None
    if isinstance(low, int | float) and isinstance(high, int | float):
        bounds = (float(low), float(high))
    shift = arg(clip, "relax.clip")
    rounded = arg(shift, "relax.add")
    divided = arg(rounded, "relax.round")
    scaled = arg(divided, "relax.divide")
    float_bias = None
    if layouts.op_name(scaled) == "relax.add":
        assert isinstance(scaled, relax.Call)
        float_bias, scaled = scaled.args[1], values.get(scaled.args[0], scaled.args[0])
    widened = arg(scaled, "relax.multiply")
    summed = arg(widened, "relax.astype")
    assert isinstance(widened, relax.Call)
    bias = None
    if layouts.op_name(summed) == "relax.add":
        assert isinstance(summed, relax.Call)
        bias, summed = summed.args[1], values.get(summed.args[0], summed.args[0])
    assert isinstance(summed, relax.Call) and isinstance(shift, relax.Call)
    assert isinstance(divided, relax.Call) and isinstance(scaled, relax.Call)
    assert isinstance(cast, relax.Call)
    return Requantization(
        summed, bias, float_bias, scaled.args[1], divided.args[1], shift.args[1], bounds,
        axes, str(cast.attrs.dtype), str(widened.attrs.dtype),
    )  # fmt: skip


def _values(expr: relax.Expr | None, dtype: str) -> np.ndarray | None:
    """A constant's values if it has ``dtype``."""
    if not isinstance(expr, tvm.ir.GenericConst) or _dtype(expr) != dtype:
        return None
    return expr.value.numpy()


def requant_reason(ctx: PatternCheckContext, out: relax.Call) -> str | None:
    """Why a requantized integer convolution or dense layer (:func:`requantized`) cannot
    be oneDNN's int8 primitive with its requantization fused, if it cannot: the
    product's own reasons, then the requantization's (int8 or uint8 result over the
    type's whole range, biases and scales one or one per output channel, one output scale
    and zero point)."""
    r = requantization_of(out, dict(ctx.matched_bindings.items()))
    conv = r.product.op.name == "relax.nn.conv2d"
    reason = int8_tensors(ctx, r.product) or (check_conv if conv else check_dense)(r.product)
    if reason:
        return reason
    view = layouts.conv_view(r.product) if conv else layouts.dense_view(r.product)

    def per_channel(values: np.ndarray | None) -> bool:
        return values is not None and (
            view.broadcast_reason(values.shape) is None and view.is_bias(values.shape)
        )

    if r.axes is not None and not conv:
        return "a requantized dense layer's result is permuted; oneDNN writes its rows in place"
    if r.widened_to != "float32":
        return f"the sum is cast to {r.widened_to} before the scale, not float32"
    if r.bias is not None and r.float_bias is not None:
        return "the requantization has two biases"
    if r.bias is not None and not per_channel(_values(r.bias, "int32")):
        return "the bias before the requantization is not int32, one value per output channel"
    if r.float_bias is not None and not per_channel(_values(r.float_bias, "float32")):
        return "the bias after the scale is not float32, one value per output channel"
    if r.dtype not in INT8_RANGES or r.bounds != tuple(map(float, INT8_RANGES[r.dtype])):
        return (
            f"requantized to {r.dtype} clipped to {r.bounds}; oneDNN saturates to the whole "
            f"range of uint8 or int8"
        )
    scale = _values(r.scale, "float32")
    one = scale is not None and scale.size == 1 and view.broadcast_reason(scale.shape) is None
    if scale is None or not (one or per_channel(scale)):
        return "the requantization's scale is not one float32 or one per output channel"
    out_scale, zero_point = _values(r.out_scale, "float32"), _values(r.out_zero_point, "float32")
    if out_scale is None or out_scale.size != 1 or not out_scale.reshape(()) > 0:
        return "the output scale is not one positive float32"
    if zero_point is None or zero_point.size != 1:
        return "the output zero point is not one float32"
    value, (lo, hi) = float(zero_point.reshape(())), r.bounds
    if not math.isfinite(value) or value != round(value) or not lo <= value <= hi:
        return f"the output zero point {value} is not an integer of {r.dtype}"
    return None


def int8_tensors(ctx: PatternCheckContext, call: relax.Call) -> str | None:
    """Why the tensors of an integer conv2d/matmul ``call`` are not those of oneDNN's int8
    primitive, if they are not."""
    what = call.op.name.removeprefix("relax.")
    if str(call.attrs.out_dtype) != "int32":
        return f"integer {what} accumulates in {call.attrs.out_dtype}; oneDNN's sums into int32"
    operand = int8_operand_of(call.args[0], dict(ctx.matched_bindings.items()))
    if operand is None:
        return f"integer {what}: its data is not astype(x, int32) of a uint8/int8 x"
    if _dtype(operand.data) not in INT8_TYPES or str(operand.widened.attrs.dtype) != "int32":
        return (
            f"integer {what} of a {_dtype(operand.data)} tensor widened to "
            f"{operand.widened.attrs.dtype}; oneDNN takes uint8 or int8 widened to int32"
        )
    zero_point = operand.zero_point
    zero_shape = known_shape(zero_point) if zero_point is not None else ()
    if zero_point is not None and (
        _dtype(zero_point) != "int32" or zero_shape is None or math.prod(zero_shape) != 1
    ):
        return f"integer {what}: the zero point is not one int32 value"
    if operand.axes is not None and what == "matmul":
        return "integer matmul of a permuted operand"
    weights = call.args[1]
    if _dtype(weights) != "int32" or known_shape(weights) is None:
        return f"integer {what}: the weights are not an int32 constant"
    values = weights.value.numpy()
    if values.size and (values.min() < -128 or values.max() > 127):
        return (
            f"integer {what}: weights range over [{values.min()}, {values.max()}], not int8 "
            f"values; oneDNN's integer products take int8 weights"
        )
    if not is_static(known_shape(operand.data) or (0, None)) or not is_static(
        known_shape(call) or (0, None)
    ):
        return f"integer {what} has a symbolic or unknown shape; it needs static shapes"
    return None


def in_view() -> DFPattern:
    """A matmul operand read in place: ``permute_dims(reshape(t))``, ``permute_dims(t)``,
    ``reshape(t)`` or ``t`` itself."""
    reshape = is_op("relax.reshape")(wildcard(), wildcard())
    permuted = is_op("relax.permute_dims")
    return (
        permuted(reshape)
        | permuted(wildcard())
        | is_op("relax.reshape")(wildcard(), wildcard())
        | wildcard()
    )


def _permuted_post_ops(
    ctx: PatternCheckContext, root: relax.Call, shape: tuple[int, ...]
) -> str | None:
    """oneDNN 3.13's matmul (the SYCL ``onednn`` wheel, selectable with
    ``$TVMEXT_ONEDNN_ROOT``) crashes on a binary post-op broadcast over some dims of a
    permuted result; a scalar, one value per column or a full tensor work. The check
    holds for every build, so that an artifact's partitioning does not depend on it."""
    for var, value in ctx.matched_bindings.items():
        if not isinstance(value, relax.Call) or value.op.name not in BINARY:
            continue
        first_in_chain = value.args[0] in ctx.matched_bindings or value.args[0].same_as(root)
        other = known_shape(value.args[1] if first_in_chain else value.args[0]) or ()
        padded = (1,) * (len(shape) - len(other)) + tuple(other)
        if padded != shape and any(d != 1 for d in padded[:-1]):
            return (
                f"{value.op.name} {var.name}: an operand of shape {list(other)} broadcast "
                f"over part of a permuted matmul result crashes oneDNN 3.13"
            )
    return None


def views_reason(ctx: PatternCheckContext, call: relax.Call, in_views: bool) -> str | None:
    """Views must keep a unit stride in the last dim of the output and in one of the two
    innermost dims of each operand (else oneDNN runs its reference matmul); an in-view
    row needs a view to absorb."""
    out = ctx.annotated_expr.get("out")
    if out is not None:
        shape = known_shape(call) or ()
        strides = layouts.permuted_out(shape, layouts.permute_axes(out))
        if strides[-1] != 1:
            return (
                f"permute_dims {list(layouts.permute_axes(out))} of the matmul's result moves "
                f"its last axis; oneDNN writes rows with a unit stride only"
            )
        reason = (
            _permuted_post_ops(ctx, call, shape) if strides != layouts.row_major(shape) else None
        )
        if reason:
            return reason
    values = dict(ctx.matched_bindings.items())
    absorbed = False
    for position, arg in enumerate(call.args):
        base, desc = layouts.input_view(arg, values)
        absorbed |= not base.same_as(arg)
        if 1 not in desc.strides[-2:]:
            return (
                f"matmul operand {position} as a view has strides {list(desc.strides)}: no "
                f"unit stride in its two innermost dims, oneDNN would use its reference kernel"
            )
    if in_views and not absorbed:
        return "no reshape or permute_dims feeds the matmul"
    return None


def tvm_neighbour(ctx: PatternCheckContext, call: relax.Call) -> str | None:
    """Why a transpose or an element-wise add/multiply stays on TVM: an input comes from
    a TVM op, and TVM fuses it into that op's kernel; between oneDNN calls (or after a
    model input, before a oneDNN call) one more oneDNN call costs less than a TVM kernel,
    which also hands the cores from oneDNN's threads to TVM's and back."""
    for value, var in ctx.value_to_bound_var.items():
        op = getattr(value, "op", None)
        if any(var.same_as(arg) for arg in call.args) and isinstance(op, tvm.ir.Op):
            return f"its input comes from the TVM op {op.name}, which TVM fuses it into"
    return None
