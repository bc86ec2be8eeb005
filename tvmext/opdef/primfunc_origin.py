"""Which tvmext op a PrimFunc was lowered from, and with which attributes: recorded as
PrimFunc attributes at legalization, read by the lowering pipeline to apply the op's
own schedule."""

from __future__ import annotations

from typing import Any

import tvm

from tvmext.opdef.attrs import to_python

# PrimFunc attribute naming the TVM op (``relax.tvmext.<ns.name>``) it was lowered from.
OP_ATTR = "tvmext.op"
# PrimFunc attribute holding the op's attributes (a dict), for its schedule.
OP_ATTRS_ATTR = "tvmext.op_attrs"


def origin_attrs(tvm_name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """The PrimFunc attributes recording op ``tvm_name`` with ``attrs``."""
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()}
    return {OP_ATTR: tvm_name, OP_ATTRS_ATTR: plain}


def func_origin(func: tvm.tirx.PrimFunc) -> tuple[str | None, dict[str, Any]]:
    """The TVM op name and attributes a PrimFunc was lowered from, if any."""
    if func.attrs is None or OP_ATTR not in func.attrs:
        return None, {}
    name = str(func.attrs[OP_ATTR])
    raw = func.attrs.get(OP_ATTRS_ATTR, {})
    return name, {str(k): to_python(v) for k, v in dict(raw).items()}
