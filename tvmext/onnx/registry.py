"""What an ONNX node ``domain::op_type`` (at an opset version) becomes.

Two kinds of entries: a tvmext op (``op.onnx(domain, op_type, since_version=1,
attrs=None)``), or a converter function (:func:`register_converter`) that builds Relax
directly, used to fix gaps in TVM's importer. Read by :mod:`tvmext.onnx.importer`.
Entries are kept in a :class:`~tvmext.registry.Registry` keyed
``domain::op_type@since_version``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tvmext.errors import OpDefinitionError
from tvmext.registry import Registry, caller_location


class OnnxOp(Protocol):
    """What the importer needs from an op an ONNX node maps to (a tvmext op)."""

    @property
    def name(self) -> str: ...

    @property
    def tensor_names(self) -> tuple[str, ...] | None: ...

    @property
    def param_conversions(self) -> Mapping[str, Any]: ...

    @property
    def attr_spec(self) -> Any: ...

    def call_relax(self, *args: Any, **attrs: Any) -> Any: ...


DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class OnnxMapping:
    """One registration: the op, from which opset on, and how attributes map."""

    domain: str
    op_type: str
    since_version: int
    op: OnnxOp
    attr_names: Mapping[str, str] = field(default_factory=dict)
    convert_attrs: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    origin: str = ""

    def op_attributes(self, onnx_attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The op's attributes for a node's ONNX attributes."""
        if self.convert_attrs is not None:
            return self.convert_attrs(dict(onnx_attrs))
        return {self.attr_names.get(k, k): v for k, v in onnx_attrs.items()}


@dataclass(frozen=True)
class OnnxConverter:
    """A converter function ``fn(bb, inputs, attrs, fallback) -> relax.Expr``.

    ``attrs`` holds the node's ONNX attributes plus ``_num_outputs``, the number of
    outputs the node declares. ``fallback()`` runs TVM's own converter for the node
    (default domain only); ``fallback(name=value, ...)`` runs it with those ONNX
    attributes replaced (given as TVM's converter reads them: strings as bytes).
    ``applies(node, consumers)``, when given, decides per node (with the op types that
    consume its outputs) whether this converter or TVM's handles it.
    """

    domain: str
    op_type: str
    since_version: int
    fn: Callable[..., Any]
    origin: str = ""
    applies: Callable[[Any, list[str]], bool] | None = None


Entry = OnnxMapping | OnnxConverter
MAPPINGS: Registry[Entry] = Registry("ONNX mapping", key_pattern=re.compile(r"^[\w.]*::\w+@\d+$"))


def normalize_domain(domain: str) -> str:
    """``ai.onnx`` and the empty string name the same (default) domain."""
    return "" if domain in DEFAULT_DOMAINS else domain


def _key(domain: str, op_type: str, since_version: int) -> str:
    return f"{normalize_domain(domain)}::{op_type}@{since_version}"


def register(mapping: Entry, *, replace: bool = False) -> None:
    """Add ``mapping``; a second one for the same (domain, op_type, version) that maps
    elsewhere is an error naming the first, unless ``replace=True``."""
    key = _key(mapping.domain, mapping.op_type, mapping.since_version)
    old = MAPPINGS.find(key)
    if old is not None and not replace and _target(old) != _target(mapping):
        raise OpDefinitionError(
            f"ONNX {mapping.domain or 'ai.onnx'}::{mapping.op_type} (since opset "
            f"{mapping.since_version}) already maps to {_target(old)} "
            f"(declared at {old.origin}); pass replace=True to redefine it"
        )
    MAPPINGS.add(key, mapping, mapping.origin, replace=True)


def describe(entry: Entry) -> str:
    """What ``entry`` converts to, for listings and errors."""
    return _target(entry)


def _target(entry: Entry) -> str:
    if isinstance(entry, OnnxMapping):
        return f"op {entry.op.name!r}"
    return f"converter {entry.fn.__module__}.{entry.fn.__qualname__}"


def register_converter(
    domain: str,
    op_type: str,
    since_version: int = 1,
    *,
    applies: Callable[[Any, list[str]], bool] | None = None,
    replace: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(bb, inputs, attrs, fallback)`` as the converter of ``domain::op_type``."""
    origin = caller_location(2)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        entry = OnnxConverter(domain, op_type, since_version, fn, origin, applies)
        register(entry, replace=replace)
        return fn

    return decorate


def _entries(domain: str, op_type: str | None = None) -> list[Entry]:
    d = normalize_domain(domain)
    found = [
        e.value
        for e in MAPPINGS
        if normalize_domain(e.value.domain) == d and op_type in (None, e.value.op_type)
    ]
    return sorted(found, key=lambda m: m.since_version)


def lookup(domain: str, op_type: str, opset: int) -> Entry | None:
    """The mapping with the largest ``since_version`` not above ``opset``."""
    chosen = None
    for entry in _entries(domain, op_type):
        if entry.since_version <= opset:
            chosen = entry
    return chosen


def registered(domain: str) -> list[str]:
    """The op types registered for ``domain``."""
    return sorted({e.op_type for e in _entries(domain)})


def all_mappings() -> list[Entry]:
    """Every registration, for listings."""
    return [e.value for e in MAPPINGS]
