"""What a PyTorch custom op ``namespace::name`` becomes when a program is imported.

Two sources: an explicit mapping (``op.torch("vendor::name", attrs=None)``: a C++
extension's op or a ``torch.library.custom_op`` declared outside tvmext), and every
tvmext op itself, which :mod:`tvmext.torch` registers in PyTorch as
:func:`torch_qualname` of its name. Read by :mod:`tvmext.torch.program`; nothing here
imports PyTorch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tvmext.errors import OpDefinitionError
from tvmext.registry import Registry

_QUALNAME = re.compile(r"^[A-Za-z_]\w*::[A-Za-z_]\w*$")


@dataclass(frozen=True)
class TorchMapping:
    """One registration: the tvmext op a PyTorch op becomes, and how its non-tensor
    arguments are renamed into the op's attributes (``{torch_name: op_name}``)."""

    qualname: str
    op: Any
    attr_names: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""

    def op_attributes(self, torch_args: Mapping[str, Any]) -> dict[str, Any]:
        """The op's attributes for the PyTorch op's non-tensor arguments by name."""
        return {self.attr_names.get(k, k): v for k, v in torch_args.items()}


MAPPINGS: Registry[TorchMapping] = Registry("PyTorch op mapping", key_pattern=_QUALNAME)


def torch_qualname(op_name: str) -> str:
    """The PyTorch name of tvmext op ``op_name``: ``mylib.scaled_tanh`` is
    ``mylib::scaled_tanh`` (``torch.ops.mylib.scaled_tanh``); deeper names keep the last
    part as the name, ``a.b.c`` is ``a_b::c``."""
    namespace, _, name = op_name.rpartition(".")
    return f"{namespace.replace('.', '_')}::{name}"


def register(mapping: TorchMapping, *, replace: bool = False) -> None:
    """Add ``mapping``; a second one for the same PyTorch op is an error naming the
    first, unless ``replace=True``. An ATen op may be mapped too (one TVM has no
    converter for): a mapping is found by the op's full name, so it never replaces
    the converter of an op of another namespace with the same short name."""
    if not _QUALNAME.match(mapping.qualname):
        raise OpDefinitionError(
            f"op {mapping.op.name!r}: torch() needs a PyTorch op name 'namespace::name', "
            f"got {mapping.qualname!r}"
        )
    MAPPINGS.add(mapping.qualname, mapping, mapping.origin, replace=replace)


def lookup(qualname: str) -> TorchMapping | None:
    """The explicit mapping of PyTorch op ``qualname`` (``"vendor::name"``), or None."""
    return MAPPINGS.find(qualname)
