"""The oneDNN primitives the dnnl target runs, one :class:`Primitive` row each, and the
pattern table derived from them: which Relax ops (and post-op chains) run on oneDNN.

A row holds everything about its primitive: the root op's pattern, its checks (which
return the reason a match is rejected), the post-ops and views it may absorb, and the
emitter of the C++ that builds it (:mod:`.emitters`), and the runtime functions that
C++ calls (``calls``: declared in ``runtime/tvmext_dnnl/ops.h``, defined in
``runtime/ops.cc``). Each row gives the pattern table its rows, named
``dnnl.<key>[_out_view|_in_view][_post<n>]``; :data:`BY_ROW` maps those names (the
composite functions' names) back to the primitive, so that the codegen finds each
composite's emitter by its row.

Post-ops are fused into the primitive (oneDNN ``post_ops``): element-wise activations
(ReLU, GELU, sigmoid, SiLU, clip) and binary add/multiply of a tensor broadcast to the
output (bias, residual, scale). A chain of ``n`` post-ops is its own row
(``dnnl.conv2d_post2``), longest first, so that a rejected long chain falls back to a
shorter one.

A batched matmul also absorbs the ``reshape``/``permute_dims`` that split and merge
attention heads: its inputs may be ``permute_dims(reshape(t))``, ``permute_dims(t)``
or ``reshape(t)``, and its result (after the post-ops) may be written through
``permute_dims`` (and a ``reshape``), all as strided oneDNN descriptors of the
buffers underneath (rows ``dnnl.matmul_out_view_post<n>`` and
``dnnl.matmul_in_view_post<n>``, tried before the plain ``dnnl.matmul_post<n>``).
Any other ``permute_dims`` that moves data, of a model input or of a oneDNN result, is
a oneDNN reorder (``dnnl.transpose``), and an add or multiply of two such tensors that
no post-op absorbed (squeeze-excitation's ``[1,H,W,C] * [1,1,1,C]``, a residual sum) is
a oneDNN binary (``dnnl.multiply``, ``dnnl.add``, with post-ops): one oneDNN call costs
less here than a TVM kernel between oneDNN calls.

Integer convolutions and dense layers (ONNX ConvInteger and MatMulInteger, and the
integer rewrite of QDQ models) are ``conv2d``/``matmul`` with ``out_dtype="int32"`` of
``astype(x, "int32") - zero_point`` by int32 weights: where ``x`` is uint8 or int8 and
the constant weights hold int8 values, they run as oneDNN's int8 primitives
(``dnnl.conv2d_int8``, ``dnnl.dense_int8``), the zero point subtracted by oneDNN and the
int32 sum exact, as TVM's. Their requantization (a QDQ model's QuantizeLinear after
them, :func:`.patterns.requantized`) runs inside the primitive too
(``dnnl.conv2d_int8_requant``, ``dnnl.dense_int8_requant``: oneDNN's weights and
destination scales, f32 bias, destination zero point and uint8/int8 result), so no int32
tensor and no float one is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tvm import relax
from tvm.relax.dpl import DFPattern, is_const, is_op, wildcard
from tvm.relax.transform import PatternCheckContext

from tvmext.target.dnnl import emitters, layouts, patterns
from tvmext.target.pattern import Check, PatternRow

MAX_POST_OPS = 4
CONVOLUTIONS = ("relax.nn.conv1d", "relax.nn.conv2d", "relax.nn.conv3d")
TRANSPOSED_CONVOLUTIONS = ("relax.nn.conv1d_transpose", "relax.nn.conv2d_transpose")
POOLS = tuple(f"relax.nn.{kind}_pool{n}d" for kind in ("max", "avg") for n in (1, 2, 3))


@dataclass(frozen=True)
class Primitive:
    """One oneDNN primitive: what it matches and accepts, and the C++ that builds it."""

    key: str  # its rows are dnnl.<key>...
    pattern: Callable[[], DFPattern]  # the root op, annotated "root"
    check: Callable[[relax.Call], str | None]  # of the root op
    emit: emitters.Emitter
    # The tvmext_dnnl:: functions (runtime/tvmext_dnnl/ops.h) its emitted C++ calls.
    calls: tuple[str, ...]
    # The root's output as oneDNN sees it, which binary post-ops broadcast onto.
    layout: Callable[[relax.Call], layouts.View] | None = None
    max_post_ops: int = 0
    # The root reading its operands through views: rows _out_view, _in_view (tried first).
    view_pattern: Callable[[], DFPattern] | None = None
    # An input from a TVM op keeps it on TVM (see patterns.tvm_neighbour).
    yields_to_tvm: bool = False
    # The check of every tensor the match reads (dtype, shapes).
    tensors: Callable[[PatternCheckContext, relax.Call], str | None] = patterns.float32_tensors


def _accept(call: relax.Call) -> str | None:
    return None


def _conv(
    op: str, check: Callable[[relax.Call], str | None], emit: emitters.Emitter, call: str
) -> Primitive:
    return Primitive(
        op.removeprefix("relax.nn."), lambda: is_op(op)(wildcard(), is_const()), check, emit,
        (call,), layout=layouts.conv_view, max_post_ops=MAX_POST_OPS,
    )  # fmt: skip


def _pool(op: str) -> Primitive:
    return Primitive(
        op.removeprefix("relax.nn."), lambda: is_op(op)(wildcard()), patterns.check_pool,
        emitters.pool, ("pooling",),
    )  # fmt: skip


def _binary(name: str) -> Primitive:
    return Primitive(
        name, lambda: is_op(f"relax.{name}")(wildcard(), wildcard()), patterns.check_binary,
        emitters.binary, ("binary",), layout=layouts.binary_view,
        max_post_ops=MAX_POST_OPS, yields_to_tvm=True,
    )  # fmt: skip


def _int8(
    name: str,
    op: str,
    check: Callable[[relax.Call], str | None],
    emit: emitters.Emitter,
    emit_requantized: emitters.Emitter,
) -> tuple[Primitive, Primitive]:
    """An integer product by int8 weights, with its requantization first (its pattern
    contains the bare product's)."""

    def product() -> DFPattern:
        return is_op(op)(patterns.int8_operand(), is_const())

    calls = (f"{name}_int8",)  # with a Requant for the first
    return (
        Primitive(
            f"{name}_int8_requant", lambda: patterns.requantized(product()), _accept,
            emit_requantized, calls, tensors=patterns.requant_reason,
        ),
        Primitive(
            f"{name}_int8", product, check, emit, calls, tensors=patterns.int8_tensors
        ),
    )  # fmt: skip


# In the order the pattern table tries them.
PRIMITIVES = (
    *_int8("conv2d", "relax.nn.conv2d", patterns.check_conv, emitters.conv2d_int8,
           emitters.conv2d_int8_requant),
    *_int8("dense", "relax.matmul", patterns.check_dense, emitters.dense_int8,
           emitters.dense_int8_requant),
    *(
        _conv(op, patterns.check_conv, emitters.conv, "convolution")
        for op in CONVOLUTIONS
    ),
    *(
        _conv(op, patterns.check_conv_transpose, emitters.conv_transpose, "deconvolution")
        for op in TRANSPOSED_CONVOLUTIONS
    ),
    # runtime/ops.cc runs it as a 1x1 convolution where oneDNN's matmul is gemm-based
    Primitive(
        "dense", lambda: is_op("relax.matmul")(wildcard(), is_const()), patterns.check_dense,
        emitters.dense, ("matmul",), layout=layouts.dense_view,
        max_post_ops=MAX_POST_OPS,
    ),
    Primitive(
        "matmul", lambda: is_op("relax.matmul")(wildcard(), wildcard()), patterns.check_matmul,
        emitters.matmul, ("matmul",), layout=layouts.matmul_view,
        max_post_ops=MAX_POST_OPS,
        view_pattern=lambda: is_op("relax.matmul")(patterns.in_view(), patterns.in_view()),
    ),
    *(_pool(op) for op in POOLS),
    Primitive(
        "mean", lambda: is_op("relax.mean")(wildcard()), patterns.check_mean, emitters.mean,
        ("reduce_mean", "pooling"),  # pooling over H and W of NHWC
    ),
    Primitive(
        "resize2d", lambda: is_op("relax.image.resize2d")(wildcard(), wildcard()),
        patterns.check_resize, emitters.resize2d, ("resampling",),
    ),
    # over an axis but the last oneDNN 3.2 has only its reference kernel: the compile-time
    # check of its implementation (codegen.refusal) keeps those on TVM
    Primitive(
        "softmax", lambda: is_op("relax.nn.softmax")(wildcard()), _accept, emitters.softmax,
        ("softmax",),
    ),
    Primitive(
        "log_softmax", lambda: is_op("relax.nn.log_softmax")(wildcard()), _accept,
        emitters.softmax, ("softmax",),
    ),
    Primitive(
        "layer_norm", lambda: is_op("relax.nn.layer_norm")(wildcard(), wildcard(), wildcard()),
        patterns.check_layer_norm, emitters.layer_norm, ("layer_norm",),
    ),
    # after the rows whose post-ops absorb adds and multiplies; an element-wise op next
    # to a TVM op stays on TVM, which fuses it
    _binary("multiply"),
    _binary("add"),
    # last: by then the rows above have grouped what oneDNN runs
    Primitive(
        "transpose", lambda: is_op("relax.permute_dims")(wildcard()), patterns.check_transpose,
        emitters.transpose, ("reorder",), yields_to_tvm=True,
    ),
)  # fmt: skip


def _variants(p: Primitive) -> list[tuple[str, str, int]]:
    """(row name, views, post-ops) of each row of ``p``, in table order: with views
    first (``"out"``: the result written permuted, inputs maybe views too; ``"in"``: an
    input a view), each longest post-op chain first."""
    views = ("out", "in", "") if p.view_pattern is not None else ("",)
    return [
        (f"dnnl.{p.key}" + (f"_{v}_view" if v else "") + (f"_post{n}" if n else ""), v, n)
        for v in views
        for n in range(p.max_post_ops, -1, -1)
    ]


# The primitive of each row, and so of each composite function (named by its row).
BY_ROW = {name: p for p in PRIMITIVES for name, _, _ in _variants(p)}


def _chain(root: DFPattern, n_post: int) -> DFPattern:
    pattern = root
    for _ in range(n_post):
        pattern = patterns.post_op(pattern)
    return pattern


def _check(p: Primitive, views: str, n_post: int) -> Check:
    def check(ctx: PatternCheckContext) -> str | None:
        call = ctx.annotated_expr["root"]
        reason = p.tensors(ctx, call) or p.check(call)
        if reason is None and p.yields_to_tvm:
            reason = patterns.tvm_neighbour(ctx, call)
        if reason is None and views:
            reason = patterns.views_reason(ctx, call, in_views=views == "in")
        if reason is None and p.layout is not None and n_post:
            reason = patterns.post_ops_reason(ctx, call, p.layout(call))
        return reason

    return check


def _row(p: Primitive, name: str, views: str, n_post: int) -> PatternRow:
    root = (p.view_pattern or p.pattern)() if views else p.pattern()
    pattern = _chain(root, n_post)
    annotations = {"root": root}
    if views == "out":
        permuted = is_op("relax.permute_dims")(pattern)
        annotations["out"] = permuted
        pattern = is_op("relax.reshape")(permuted, wildcard()) | permuted
    return PatternRow(name, pattern, annotations, _check(p, views, n_post))


def pattern_table() -> list[PatternRow]:
    """All rows, primitive by primitive."""
    return [_row(p, *variant) for p in PRIMITIVES for variant in _variants(p)]
