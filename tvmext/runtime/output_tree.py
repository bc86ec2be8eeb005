"""The structure of a model's outputs (a tuple, a list, a dict, nested), kept in the
artifact so that a module compiled from PyTorch returns what the model returned.

A tree is JSON: ``null`` is one output (the next of the flat list), ``{"tuple": [...]}``
and ``{"list": [...]}`` hold subtrees in order, ``{"dict": [[keys], [subtrees]]}`` a
mapping (also a ``transformers`` ``ModelOutput``, whose fields PyTorch's pytree lists
the same way). Nothing here imports PyTorch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OutputTree:
    """The JSON tree of a model's outputs; :meth:`unflatten` rebuilds them."""

    tree: Any

    @classmethod
    def from_pytree(cls, spec: Any) -> OutputTree:
        """The tree of a PyTorch pytree ``TreeSpec`` (read by duck typing)."""
        return cls(_from_spec(spec))

    @classmethod
    def from_json(cls, text: str) -> OutputTree:
        return cls(json.loads(text))

    def to_json(self) -> str:
        return json.dumps(self.tree)

    @property
    def leaves(self) -> int:
        """How many flat outputs the tree holds."""
        return _count(self.tree)

    def unflatten(self, outputs: Sequence[Any]) -> Any:
        """``outputs`` (flat, in order) in the tree's structure."""
        return _build(self.tree, iter(outputs))


def _from_spec(spec: Any) -> Any:
    children = [_from_spec(c) for c in spec.children()]
    if spec.is_leaf():
        return None
    kind = spec.type
    if kind is list:
        return {"list": children}
    keys = spec.context
    named = isinstance(keys, list | tuple) and len(keys) == len(children)
    if named and all(isinstance(k, str) for k in keys):  # dicts, ModelOutput fields
        return {"dict": [list(keys), children]}
    return {"tuple": children}  # tuples, named tuples and other containers


def _count(tree: Any) -> int:
    if tree is None:
        return 1
    ((kind, value),) = tree.items()
    return sum(_count(t) for t in (value[1] if kind == "dict" else value))


def _build(tree: Any, flat: Any) -> Any:
    if tree is None:
        return next(flat)
    ((kind, value),) = tree.items()
    if kind == "dict":
        return {k: _build(t, flat) for k, t in zip(value[0], value[1], strict=True)}
    items = [_build(t, flat) for t in value]
    return items if kind == "list" else tuple(items)
