"""Dimensions of a partition that are functions of its symbolic shape variables.

A model compiled once for any batch size or sequence length hands oneDNN tensors of
shape ``[batch, seq, 768]``. The layout code computes descriptors with ordinary Python
arithmetic and comparisons on dims; :class:`Dim` lets a symbolic dimension take part
(products, equality proved by TVM's arithmetic analyzer) and prints as the C++
expression that computes it at run time from its arguments' dims
(:func:`dimension_sources`): a dim ``batch * seq`` of an input is read as it is, and
the dims of the output and of other inputs are computed from those.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence

from tvm import relax, tirx
from tvm.sym.analyzer import Analyzer

from tvmext.dims import dim_analyzer, simplify_dim
from tvmext.errors import CompileError

# While C++ is emitted: each input dim and the C++ expression of its value.
_CPP_NAMES: contextvars.ContextVar[Sequence[tuple[tirx.PrimExpr, str]]] = contextvars.ContextVar(
    "cpp_names"
)


def dim(expr: tirx.PrimExpr | int) -> int | Dim:
    """A dimension: an int when it is a constant, else a :class:`Dim`."""
    if isinstance(expr, int):
        return expr
    expr = simplify_dim(expr)
    return int(expr.value) if isinstance(expr, tirx.IntImm) else Dim(expr)


def _expr(value: int | Dim) -> tirx.PrimExpr:
    return value.expr if isinstance(value, Dim) else tirx.IntImm("int64", int(value))


class Dim:
    """A symbolic dimension (``batch * 128``): arithmetic gives dims, ``==`` holds when
    the analyzer proves it, ``str`` is its C++ expression (inside :func:`cpp_names`)."""

    __slots__ = ("expr",)

    def __init__(self, expr: tirx.PrimExpr) -> None:
        self.expr = expr

    def __add__(self, other: int | Dim) -> int | Dim:
        return dim(self.expr + _expr(other))

    __radd__ = __add__

    def __sub__(self, other: int | Dim) -> int | Dim:
        return dim(self.expr - _expr(other))

    def __rsub__(self, other: int | Dim) -> int | Dim:
        return dim(_expr(other) - self.expr)

    def __mul__(self, other: int | Dim) -> int | Dim:
        return dim(self.expr * _expr(other))

    __rmul__ = __mul__

    def __floordiv__(self, other: int | Dim) -> int | Dim:
        return dim(tirx.floordiv(self.expr, _expr(other)))

    def __mod__(self, other: int | Dim) -> int | Dim:
        return dim(tirx.floormod(self.expr, _expr(other)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, int | Dim):
            return NotImplemented
        return Analyzer().can_prove_equal(simplify_dim(self.expr - _expr(other)), 0)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(str(self.expr))

    def _proved(self, condition: tirx.PrimExpr) -> bool:
        return bool(dim_analyzer(condition).can_prove(condition))

    # An order holds only where it is proved for every value of the variables.
    def __lt__(self, other: int | Dim) -> bool:
        return self._proved(self.expr < _expr(other))

    def __le__(self, other: int | Dim) -> bool:
        return self._proved(self.expr <= _expr(other))

    def __gt__(self, other: int | Dim) -> bool:
        return self._proved(self.expr > _expr(other))

    def __ge__(self, other: int | Dim) -> bool:
        return self._proved(self.expr >= _expr(other))

    def __int__(self) -> int:
        raise TypeError(f"dimension {self.expr} is symbolic; an integer is needed here")

    def __repr__(self) -> str:
        return str(self.expr)

    def __str__(self) -> str:
        names = _CPP_NAMES.get(None)
        if names is None:
            return str(self.expr)
        return _cpp(self.expr, names)


def known_shape(expr: relax.Expr) -> tuple[int | Dim, ...] | None:
    """The shape of a tensor expression of known rank and dimensions (static or
    symbolic), or None."""
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
        return None
    return tuple(dim(d) for d in ty.shape.values)


def is_static(shape: Sequence[int | Dim]) -> bool:
    return all(isinstance(d, int) for d in shape)


def dimension_sources(
    params: Sequence[Sequence[int | Dim]],
) -> dict[str, tuple[int, int, tirx.PrimExpr]]:
    """Each distinct symbolic dim of ``params`` (``seq``, ``batch * seq``), by its text:
    a (param, axis) that has it, where the generated code reads its value, and the dim."""
    sources: dict[str, tuple[int, int, tirx.PrimExpr]] = {}
    for index, shape in enumerate(params):
        for axis, d in enumerate(shape):
            if isinstance(d, Dim):
                sources.setdefault(str(d.expr), (index, axis, d.expr))
    return sources


def computable(d: int | Dim, sources: Mapping[str, tuple[int, int, tirx.PrimExpr]]) -> bool:
    """Whether ``d`` is a constant or an expression over the dims of ``sources`` (see
    :func:`dimension_sources`)."""
    if isinstance(d, int):
        return True
    try:
        _cpp(d.expr, [(expr, "_") for _, _, expr in sources.values()])
    except CompileError:
        return False
    return True


@contextlib.contextmanager
def cpp_names(names: Sequence[tuple[tirx.PrimExpr, str]]) -> Iterator[None]:
    """Print dims as C++ in this block: a dim equal to one of ``names`` (an input dim,
    see :func:`dimension_sources`) as its C++ name, others computed from them."""
    token = _CPP_NAMES.set(names)
    try:
        yield
    finally:
        _CPP_NAMES.reset(token)


_CPP_BINARY = {
    tirx.Add: "+",
    tirx.Sub: "-",
    tirx.Mul: "*",
    tirx.FloorDiv: "/",  # dims and their divisors are never negative
    tirx.FloorMod: "%",
}


def _cpp(expr: tirx.PrimExpr, names: Sequence[tuple[tirx.PrimExpr, str]]) -> str:
    if isinstance(expr, tirx.IntImm):
        return f"int64_t{{{int(expr.value)}}}"
    for known, name in names:
        if str(known) == str(expr) or Dim(known) == Dim(expr):
            return name
    if isinstance(expr, tirx.Var):
        raise CompileError(f"dnnl codegen: shape variable {expr.name} is not an input dim")
    for kind, symbol in _CPP_BINARY.items():
        if isinstance(expr, kind):
            return f"({_cpp(expr.a, names)} {symbol} {_cpp(expr.b, names)})"
    if isinstance(expr, tirx.Max | tirx.Min):
        fn = "std::max" if isinstance(expr, tirx.Max) else "std::min"
        return f"{fn}({_cpp(expr.a, names)}, {_cpp(expr.b, names)})"
    raise CompileError(f"dnnl codegen: cannot compute dimension {expr} in C++")
