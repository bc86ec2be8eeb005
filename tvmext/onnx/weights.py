"""Applying the weight conversions ops declare (:mod:`tvmext.opdef.param_conversion`)
while importing a model: constant weights are converted at compile time, TE
conversions of runtime weights become graph code that ``LiftTransformParams`` moves
into ``main_transform_params``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmext.errors import ModelError
from tvmext.lowering.pipeline import build
from tvmext.onnx.registry import OnnxOp


def _evaluate_te(fn: Callable[..., Any], array: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """Run a TE conversion on a NumPy array (compiled for this CPU)."""
    bb = relax.BlockBuilder()
    weight = relax.Var("w", relax.TensorType(list(array.shape), str(array.dtype)))
    with bb.function("main", [weight]):
        bb.emit_func_output(bb.emit_te(fn, weight, **attrs))
    executable = build(bb.get(), tvm.target.Target("llvm"))
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return np.asarray(vm["main"](tvm.runtime.tensor(array)).numpy())


def apply_conversions(
    bb: relax.BlockBuilder,
    op: OnnxOp,
    inputs: list[relax.Expr],
    attrs: Mapping[str, Any],
    label: str,
    runtime_weights: Collection[relax.Var] = (),
) -> list[relax.Expr]:
    """Apply ``op``'s declared conversions to its inputs. Constant weights are converted
    now; a TE conversion of a runtime weight (one of ``runtime_weights``) is emitted on
    it; a NumPy conversion of anything but a constant is an error naming the node."""
    for i, name in enumerate(op.tensor_names or ()):
        conversion = op.param_conversions.get(name)
        if conversion is None or i >= len(inputs):
            continue
        weight = inputs[i]
        if isinstance(weight, tvm.ir.GenericConst):
            array = weight.value.numpy()
            try:
                if conversion.kind == "te":
                    converted = _evaluate_te(conversion.fn, array, attrs)
                else:
                    converted = np.asarray(conversion.fn(array, **attrs))
            except Exception as err:
                raise ModelError(
                    f"{label}: converting weight {name!r} of shape {list(array.shape)} "
                    f"{array.dtype} for op {op.name!r} failed: {type(err).__name__}: {err}"
                ) from err
            inputs[i] = relax.const(converted, str(converted.dtype))
            continue
        is_runtime_weight = any(weight.same_as(w) for w in runtime_weights)
        if conversion.kind == "te" and is_runtime_weight:
            try:
                inputs[i] = bb.emit_te(conversion.fn, weight, **attrs)
            except Exception as err:
                raise ModelError(
                    f"{label}: the TE conversion of weight {name!r} for op {op.name!r} "
                    f"failed: {type(err).__name__}: {err}"
                ) from err
            continue
        if is_runtime_weight:
            raise ModelError(
                f"{label}: input {name!r} of op {op.name!r} is a runtime weight "
                f"(keep_params_in_input=True), but its declared conversion runs in NumPy at "
                f"compile time; declare it in TE (@op.convert_param({name!r}, kind='te')) "
                f"so that it runs once when the weights are bound, or compile with "
                f"keep_params_in_input=False"
            )
        raise ModelError(
            f"{label}: input {name!r} of op {op.name!r} is not a constant initializer, "
            f"but its declared conversion converts weights; store the weight as an "
            f"initializer"
        )
    return inputs
