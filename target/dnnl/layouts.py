"""How Relax tensors appear to oneDNN: logical dims plus the strides of the buffer.

oneDNN names the dims of a convolution N, C, H, W (weights O, I, H, W, grouped
G, O/G, I/G, H, W) whatever the memory order; a buffer in NHWC is then described by
strides. A :class:`View` maps the output of a root op, and every tensor a post-op
broadcasts onto it, to such descriptors. :func:`input_view` and :func:`permuted_out`
describe ``permute_dims``/``reshape`` around a matmul as strides of the buffer
underneath, so that those ops need no copy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from tvm import relax

from tvmext.target.dnnl.symbolic import Dim, known_shape

MAX_RANK = 6
Size: TypeAlias = int | Dim  # a dimension or stride: static, or symbolic (see .symbolic)


@dataclass(frozen=True)
class Desc:
    """A oneDNN memory descriptor: logical dims and element strides."""

    dims: tuple[Size, ...]
    strides: tuple[Size, ...]

    def padded(self, rank: int) -> Desc:
        """With leading dims of 1 up to ``rank`` (broadcast batch dims)."""
        extra = rank - len(self.dims)
        outer = self.dims[0] * self.strides[0] if self.dims else 1
        return Desc((1,) * extra + self.dims, (outer,) * extra + self.strides)

    def cpp(self) -> str:
        """As a ``tvmext_dnnl::Desc`` initializer."""
        return (
            f"{{{len(self.dims)}, {{{', '.join(map(str, self.dims))}}}, "
            f"{{{', '.join(map(str, self.strides))}}}}}"
        )


def row_major(shape: Sequence[Size]) -> tuple[Size, ...]:
    """Element strides of a dense row-major buffer of ``shape``."""
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    return tuple(strides)


def plain(shape: Sequence[Size]) -> Desc:
    """A dense row-major tensor, dims as they are."""
    return Desc(tuple(shape), row_major(shape))


def in_layout(shape: Sequence[Size], layout: str, logical: str) -> Desc:
    """A row-major buffer of ``shape`` in ``layout`` (``"NHWC"``), with dims reordered
    to ``logical`` (``"NCHW"``)."""
    return reordered(plain(shape), layout, logical)


def reordered(desc: Desc, layout: str, logical: str) -> Desc:
    """``desc``, whose dims are in ``layout``, with its dims reordered to ``logical``."""
    order = [layout.index(axis) for axis in logical]
    return Desc(tuple(desc.dims[i] for i in order), tuple(desc.strides[i] for i in order))


SPATIAL = {1: "W", 2: "HW", 3: "DHW"}  # a 1-D, 2-D or 3-D convolution's spatial dims


def spatial_axes(rank: int) -> str:
    """The spatial dims of a rank-``rank`` convolution or pooling tensor (``"HW"``)."""
    return SPATIAL[rank - 2]


def conv_weights(shape: Sequence[Size], layout: str, groups: int) -> Desc:
    """Convolution weights in ``layout`` as oneDNN's (G,) O, I, spatial dims."""
    desc = in_layout(shape, layout, "OI" + spatial_axes(len(shape)))
    if groups == 1:
        return desc
    (o, *rest), (so, *rest_strides) = desc.dims, desc.strides
    return Desc((groups, o // groups, *rest), ((o // groups) * so, so, *rest_strides))


def conv_transpose_weights(shape: Sequence[Size], layout: str, groups: int) -> Desc:
    """Transposed-convolution weights in ``layout`` (``"IOHW"``: input channels, then the
    output channels of one group) as oneDNN's deconvolution weights (G,) O, I, spatial."""
    desc = in_layout(shape, layout, "OI" + spatial_axes(len(shape)))
    if groups == 1:
        return desc
    (o, i, *rest), (so, si, *rest_strides) = desc.dims, desc.strides
    return Desc((groups, o, i // groups, *rest), ((i // groups) * si, so, si, *rest_strides))


def permute_axes(call: relax.Call) -> list[int]:
    """The axes of a ``permute_dims`` call (reversed when not given)."""
    rank = len(_shape(call))
    axes = call.attrs.axes
    return list(range(rank - 1, -1, -1)) if axes is None else [int(a) % rank for a in axes]


def op_name(call: relax.Expr | None) -> str:
    """The name of ``call``'s op ("" for anything else)."""
    op = getattr(call, "op", None)
    return str(getattr(op, "name", ""))


def input_view(
    expr: relax.Expr, values: Mapping[relax.Expr, relax.Expr]
) -> tuple[relax.Expr, Desc]:
    """The tensor whose buffer ``expr`` reads, and ``expr``'s descriptor in that buffer.

    ``values`` maps the bound variables of a matched chain to their calls; through them
    ``permute_dims(reshape(t))``, ``permute_dims(t)`` and ``reshape(t)`` read ``t``'s
    contiguous buffer with strides; anything else is its own plain buffer.
    """
    axes = None
    call = values.get(expr)
    if op_name(call) == "relax.permute_dims":
        assert isinstance(call, relax.Call)
        axes, expr = permute_axes(call), call.args[0]
        call = values.get(expr)
    buffer_shape = _shape(expr)
    if op_name(call) == "relax.reshape":
        assert isinstance(call, relax.Call)
        expr = call.args[0]
    if axes is None:
        return expr, Desc(buffer_shape, row_major(buffer_shape))
    return expr, permuted_in(buffer_shape, axes)


def permuted_in(shape: Sequence[Size], axes: Sequence[int]) -> Desc:
    """``permute_dims(t, axes)`` of a contiguous ``t`` of ``shape``, as a strided
    descriptor of ``t``'s buffer."""
    strides = row_major(shape)
    return Desc(tuple(shape[a] for a in axes), tuple(strides[a] for a in axes))


def permuted_out(shape: Sequence[Size], axes: Sequence[int]) -> tuple[Size, ...]:
    """Strides that write a result of ``shape`` straight into the contiguous buffer of
    ``permute_dims(result, axes)``."""
    dense = row_major([shape[a] for a in axes])
    strides = [0] * len(shape)
    for position, axis in enumerate(axes):
        strides[axis] = dense[position]
    return tuple(strides)


@dataclass(frozen=True)
class View:
    """The output of a root op as oneDNN sees it, and how inputs broadcast onto it.

    ``shape`` is the Relax output shape, ``layout``/``logical`` reorder its dims (both
    empty for plain tensors), ``rows`` folds the leading dims of a dense layer into one
    and ``out_strides``, when given, are those of the buffer the output is written to.
    """

    shape: tuple[Size, ...]
    layout: str = ""
    logical: str = ""
    rows: bool = False
    out_strides: tuple[Size, ...] = ()

    def out(self) -> Desc:
        """The output's descriptor."""
        if self.out_strides:
            return Desc(self.shape, self.out_strides)
        return self.desc(self.shape)

    def broadcast_reason(self, shape: Sequence[Size]) -> str | None:
        """Why a tensor of ``shape`` cannot be broadcast onto the output (None if it can)."""
        if len(shape) > len(self.shape):
            return f"shape {list(shape)} has more dims than the output {list(self.shape)}"
        padded = (1,) * (len(self.shape) - len(shape)) + tuple(shape)
        for got, want in zip(padded, self.shape, strict=True):
            if got not in (1, want):
                return f"shape {list(shape)} does not broadcast to {list(self.shape)}"
        lead = padded[:-1]
        if self.rows and any(d != 1 for d in lead) and lead != self.shape[:-1]:
            return f"shape {list(shape)} broadcasts over part of the rows of {list(self.shape)}"
        return None

    def desc(self, shape: Sequence[Size]) -> Desc:
        """The descriptor of a tensor of ``shape`` broadcast onto the output."""
        padded = (1,) * (len(self.shape) - len(shape)) + tuple(shape)
        if self.rows:
            rows = math.prod(padded[:-1])
            return plain((rows, padded[-1]))
        if self.layout:
            return in_layout(padded, self.layout, self.logical)
        return plain(padded)

    def is_bias(self, shape: Sequence[Size]) -> bool:
        """Whether ``shape`` is one value per output channel (a native bias)."""
        padded = (1,) * (len(self.shape) - len(shape)) + tuple(shape)
        channel = self.layout.index("C") if self.layout else len(self.shape) - 1
        return all(d == 1 for i, d in enumerate(padded) if i != channel) and (
            padded[channel] == self.shape[channel]
        )


def _shape(expr: relax.Expr) -> tuple[int | Dim, ...]:
    shape = known_shape(expr)
    if shape is None:
        raise ValueError(f"{expr} has no known shape")
    return shape


def conv_view(call: relax.Call) -> View:
    """A convolution's output in its ``out_layout``, logical N, C, spatial dims."""
    shape = _shape(call)
    return View(shape, str(call.attrs.out_layout), "NC" + spatial_axes(len(shape)))


def dense_view(call: relax.Call) -> View:
    """A dense layer's output, leading dims folded into rows."""
    return View(_shape(call), rows=True)


def matmul_view(call: relax.Call, out_axes: Sequence[int] | None = None) -> View:
    """A batched matmul's output, dims as they are; written permuted by ``out_axes``."""
    shape = _shape(call)
    return View(shape, out_strides=permuted_out(shape, out_axes) if out_axes else ())


def binary_view(call: relax.Call) -> View:
    """An add/multiply's output, dims as they are."""
    return View(known_shape(call) or ())
