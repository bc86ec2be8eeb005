"""Fold a transpose of a transpose into one transpose, or none when they cancel.

Layout passes leave ``permute_dims(permute_dims(x, a), b)`` behind wherever an op
between two NHWC convolutions was moved to the NHWC side
(``tvmext.clip_before_transpose`` does this for ReLU6): NHWC -> NCHW -> NHWC, two full
copies of an activation that give it back unchanged. ``permute_dims(x, a)`` has axis
``i`` from ``x``'s axis ``a[i]``, so the pair is ``permute_dims(x, [a[b[i]] ...])``,
and ``x`` itself when that is the identity.

Precondition: both transposes name their axes (``axes=None``, a full reversal, is left
as it is). Runs in the ``layout`` phase, after the passes that move ops across
transposes.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, wildcard

from tvmext.pass_registry import function_pass, register_pass


def _patterns() -> tuple[dict[str, DFPattern], DFPattern]:
    parts = {"inner": is_op("relax.permute_dims")(wildcard())}
    parts["outer"] = is_op("relax.permute_dims")(parts["inner"])
    return parts, parts["outer"]


def _fold(expr: relax.Expr, matches: dict[DFPattern, relax.Expr], parts: dict[str, Any]) -> Any:
    inner, outer = matches[parts["inner"]], matches[parts["outer"]]
    if inner.attrs.axes is None or outer.attrs.axes is None:
        return expr
    a = [int(i) for i in inner.attrs.axes]
    axes = [a[int(i)] for i in outer.attrs.axes]
    if axes == list(range(len(axes))):
        return inner.args[0]
    return relax.op.permute_dims(inner.args[0], axes)


@register_pass("tvmext.fold_transpose_pairs", targets=("*",))
def fold_transpose_pairs() -> tvm.transform.Pass:
    """Rewrite ``permute_dims(permute_dims(x, a), b)`` to one ``permute_dims`` (or ``x``)."""
    parts, pattern = _patterns()

    return function_pass(
        "tvmext.FoldTransposePairs",
        lambda func: relax.dpl.rewrite_call(pattern, lambda e, m: _fold(e, m, parts), func),
    )
