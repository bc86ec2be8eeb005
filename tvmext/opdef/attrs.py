"""Op attributes: keyword-only parameters of a compute function, validated on every call.

An attribute's kind comes from its annotation, else from its default. Supported kinds
are ``float``, ``int``, ``bool``, ``str`` and ``tuple[int, ...]``. Attributes travel in
Relax calls as ``ir.DictAttrs`` and come back to Python through :meth:`AttrSpec.decode`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tvmext.errors import OpCallError, OpDefinitionError

Kind = type | tuple[type, ...]

_KIND_NAMES = {float: "float", int: "int", bool: "bool", str: "str"}
_INT_TUPLE = (int,)  # marker kind for tuple[int, ...]


def _kind_name(kind: Kind) -> str:
    return "tuple of ints" if kind == _INT_TUPLE else _KIND_NAMES[kind]  # type: ignore[index]


def _kind_of(op_name: str, param: inspect.Parameter) -> Kind:
    annotation = param.annotation
    if isinstance(annotation, str):
        annotation = {"float": float, "int": int, "bool": bool, "str": str}.get(
            annotation, annotation
        )
        if isinstance(annotation, str) and annotation.replace(" ", "") in (
            "tuple[int,...]",
            "Tuple[int,...]",
        ):
            return _INT_TUPLE
    if annotation in _KIND_NAMES:
        return annotation
    if getattr(annotation, "__origin__", None) is tuple:
        return _INT_TUPLE
    default = param.default
    for kind in (bool, int, float, str):
        if type(default) is kind:
            return kind
    if isinstance(default, tuple) and all(type(v) is int for v in default):
        return _INT_TUPLE
    raise OpDefinitionError(
        f"op {op_name!r}: attribute {param.name!r} needs a default of type float, int, "
        f"bool, str or tuple of ints (got {default!r})"
    )


@dataclass(frozen=True)
class Attr:
    """One declared attribute: its name, kind and default."""

    name: str
    kind: Kind
    default: Any

    def validate(self, op_name: str, value: Any) -> Any:
        """Return ``value`` normalized to this attribute's kind, or raise OpCallError."""
        kind = self.kind
        ok: bool
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif kind is str:
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, tuple | list) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            )
            value = tuple(value) if ok else value
        if not ok:
            raise OpCallError(
                f"op {op_name!r}: attribute {self.name!r} expects {_kind_name(kind)}, "
                f"got {value!r} ({type(value).__name__})"
            )
        return value


@dataclass(frozen=True)
class AttrSpec:
    """The ordered attributes of one op."""

    op_name: str
    attrs: tuple[Attr, ...]

    @classmethod
    def from_signature(cls, op_name: str, fn: Callable[..., Any]) -> tuple[list[str], AttrSpec]:
        """Split ``fn``'s signature into tensor parameters and keyword-only attributes."""
        params = list(inspect.signature(fn).parameters.values())
        tensors: list[str] = []
        attrs: list[Attr] = []
        for p in params:
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                if p.default is not p.empty:
                    raise OpDefinitionError(
                        f"op {op_name!r}: tensor parameter {p.name!r} has a default; "
                        f"attributes must be keyword-only (put them after '*')"
                    )
                tensors.append(p.name)
            elif p.kind is p.KEYWORD_ONLY:
                if p.default is p.empty:
                    raise OpDefinitionError(
                        f"op {op_name!r}: attribute {p.name!r} needs a default value"
                    )
                attr = Attr(p.name, _kind_of(op_name, p), p.default)
                attrs.append(Attr(attr.name, attr.kind, attr.validate(op_name, p.default)))
            else:
                raise OpDefinitionError(
                    f"op {op_name!r}: parameter {p.name!r} of kind {p.kind.description} "
                    f"is not supported; use positional tensors and keyword-only attributes"
                )
        return tensors, cls(op_name, tuple(attrs))

    def bind(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Validate user-given attributes and fill in defaults."""
        known = {a.name for a in self.attrs}
        unknown = sorted(set(given) - known)
        if unknown:
            raise OpCallError(
                f"op {self.op_name!r}: unknown attribute(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(known)) or 'none'}"
            )
        return {
            a.name: a.validate(self.op_name, given[a.name]) if a.name in given else a.default
            for a in self.attrs
        }

    def decode(self, dict_attrs: Any) -> dict[str, Any]:
        """Turn an ``ir.DictAttrs`` (or None) back into validated Python values."""
        raw: dict[str, Any] = {}
        if dict_attrs is not None:
            for key, value in dict_attrs.items():
                raw[str(key)] = to_python(value)
        return self.bind(raw)

    def encode(self, values: Mapping[str, Any]) -> Any:
        """Build the ``ir.DictAttrs`` carried by a Relax call."""
        import tvm

        encoded = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
        return tvm.ir.make_node("ir.DictAttrs", **encoded)


def to_python(value: Any) -> Any:
    """Convert a TVM attribute value (IntImm, FloatImm, StringImm, Array) to Python."""
    import tvm

    if isinstance(value, tvm.tirx.IntImm):
        return bool(value.value) if value.dtype == "bool" else int(value.value)
    if isinstance(value, tvm.tirx.FloatImm):
        return float(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, tvm.ir.StringImm):
        return str(value.value)
    if isinstance(value, bool | int | float):
        return value
    if hasattr(value, "__len__"):
        return tuple(to_python(v) for v in value)
    return value
