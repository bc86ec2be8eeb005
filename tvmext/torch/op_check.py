"""The PyTorch side of ``tvmext.testing.check_op``: the op as ``torch.ops.<ns>.<name>``
gives the compiled op's outputs, and ``torch.library.opcheck`` accepts it (schema,
fake implementation against the real kernel, autograd registration, tracing by
``aot_autograd``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tvmext.opdef.declaration import CustomOp
from tvmext.opdef.torch_mapping import torch_qualname
from tvmext.torch.library import overload, register

# What torch.library.opcheck runs: all but its dynamic-shape AOT test, which compiles
# the op once more for every shape it tries.
_OPCHECK_TESTS = (
    "test_schema",
    "test_autograd_registration",
    "test_faketensor",
    "test_aot_dispatch_static",
)
# The eager kernel is the compiled op itself: only rounding may differ.
_RTOL, _ATOL = 1e-5, 1e-6


def torch_problems(
    op: CustomOp, arrays: Sequence[np.ndarray], attrs: dict[str, Any], outputs: Sequence[np.ndarray]
) -> list[str]:
    """What is wrong with ``op`` as a PyTorch op on ``arrays`` (empty: nothing)."""
    qualname = torch_qualname(op.name)
    try:
        function = overload(op)
    except AttributeError:  # declared before tvmext.torch was imported, and not since
        register(op)
        function = overload(op)
    tensors = [torch.from_numpy(np.array(a, copy=True)) for a in arrays]
    try:
        result = function(*tensors, **attrs)
    except Exception as err:
        return [f"torch.ops.{qualname.replace('::', '.')} failed: {type(err).__name__}: {err}"]
    got = list(result) if isinstance(result, tuple | list) else [result]
    problems = []
    for k, (tensor, want) in enumerate(zip(got, outputs, strict=False)):
        value = tensor.detach().numpy()
        if value.shape != want.shape or not np.allclose(value, want, _RTOL, _ATOL):
            problems.append(f"PyTorch output {k} differs from the compiled op's")
    differentiable = op.has_gradient
    args = tuple(t.requires_grad_(differentiable and t.is_floating_point()) for t in tensors)
    try:  # dynamic-shape tracing is checked by torch.export with Dims, not per op here
        torch.library.opcheck(function, args, attrs, test_utils=_OPCHECK_TESTS)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        problems.append(f"torch.library.opcheck: {type(err).__name__}: {first}")
    return problems
