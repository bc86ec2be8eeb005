"""Which tvmext op an ONNX node ``domain::op_type`` (at an opset version) becomes.

Filled by ``op.onnx(domain, op_type, since_version=1, attrs=None)``; read by the
domain-aware importer (:mod:`tvmext.onnx_import`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import OpDefinitionError

if TYPE_CHECKING:
    from .custom_op import CustomOp

DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class OnnxMapping:
    """One registration: the op, from which opset on, and how attributes map."""

    domain: str
    op_type: str
    since_version: int
    op: CustomOp
    attr_names: Mapping[str, str] = field(default_factory=dict)
    convert_attrs: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    origin: str = ""

    def op_attributes(self, onnx_attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The op's attributes for a node's ONNX attributes."""
        if self.convert_attrs is not None:
            return self.convert_attrs(dict(onnx_attrs))
        return {self.attr_names.get(k, k): v for k, v in onnx_attrs.items()}


_MAPPINGS: dict[tuple[str, str], list[OnnxMapping]] = {}


def normalize_domain(domain: str) -> str:
    """``ai.onnx`` and the empty string name the same (default) domain."""
    return "" if domain in DEFAULT_DOMAINS else domain


def register(mapping: OnnxMapping, *, replace: bool = False) -> None:
    """Add ``mapping``; a second op for the same (domain, op_type, version) is an error."""
    key = (normalize_domain(mapping.domain), mapping.op_type)
    entries = _MAPPINGS.setdefault(key, [])
    for old in list(entries):
        if old.since_version == mapping.since_version:
            if not replace and old.op.name != mapping.op.name:
                raise OpDefinitionError(
                    f"ONNX {mapping.domain or 'ai.onnx'}::{mapping.op_type} (since opset "
                    f"{mapping.since_version}) already maps to op {old.op.name!r} "
                    f"(declared at {old.origin}); pass replace=True to redefine it"
                )
            entries.remove(old)
    entries.append(mapping)
    entries.sort(key=lambda m: m.since_version)


def lookup(domain: str, op_type: str, opset: int) -> OnnxMapping | None:
    """The mapping with the largest ``since_version`` not above ``opset``."""
    entries = _MAPPINGS.get((normalize_domain(domain), op_type), [])
    chosen = None
    for entry in entries:
        if entry.since_version <= opset:
            chosen = entry
    return chosen


def registered(domain: str) -> list[str]:
    """The op types registered for ``domain``."""
    d = normalize_domain(domain)
    return sorted(op_type for (dom, op_type) in _MAPPINGS if dom == d)


def all_mappings() -> list[OnnxMapping]:
    """Every registration, for listings."""
    return [m for entries in _MAPPINGS.values() for m in entries]
