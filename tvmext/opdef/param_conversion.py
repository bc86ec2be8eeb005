"""Weight conversions that ops declare with ``op.convert_param(input_name, kind=...)``.

A weight arrives in the standard (ONNX) format; the op's kernel may want another
layout or dtype. A conversion is written either in NumPy (``kind="numpy"``, run at
compile time on constant weights) or in TE (``kind="te"``, ``fn(w: te.Tensor, **attrs)
-> te.Tensor``). A TE conversion of a constant weight is evaluated at compile time
too; of a runtime weight (``keep_params_in_input=True``) it becomes graph code on the
parameter, which ``relax.transform.LiftTransformParams`` moves into
``main_transform_params``, run once when the weights are bound (see
:meth:`tvmext.Module.set_params`), not per call. The importer applies them
(:mod:`tvmext.onnx.weights`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("numpy", "te")


@dataclass(frozen=True)
class ParamConversion:
    """One declared conversion: the function and the language it is written in."""

    fn: Callable[..., Any]
    kind: str
