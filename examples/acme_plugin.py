"""A tvmext plugin: the custom layer ``com.acme::ShiftedSoftplus`` of the bundled model.

Load it with ``tvmext compile MODEL --plugin examples/acme_plugin.py`` or
``tvmext.compile(model, plugins=["examples/acme_plugin.py"])``.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

import tvmext


@tvmext.op("acme.shifted_softplus")
def shifted_softplus(x: te.Tensor, *, shift: float = 0.6931472) -> te.Tensor:
    """softplus(x) - shift, a smooth activation TVM does not ship."""
    zero, one = tirx.const(0, x.dtype), tirx.const(1, x.dtype)
    return te.compute(
        x.shape,
        lambda *i: (
            tirx.max(x[i], zero)
            + tirx.log(one + tirx.exp(-tirx.abs(x[i])))
            - tirx.const(shift, x.dtype)
        ),
        name="shifted_softplus",
    )


@shifted_softplus.gradient
def _shifted_softplus_grad(x: te.Tensor, y: te.Tensor, dy: te.Tensor, *, shift: float):
    return te.compute(x.shape, lambda *i: dy[i] * tirx.sigmoid(x[i]), name="shifted_softplus_dx")


@shifted_softplus.reference
def _shifted_softplus_reference(x: np.ndarray, *, shift: float) -> np.ndarray:
    return (np.logaddexp(0, x) - shift).astype(x.dtype)


shifted_softplus.onnx("com.acme", "ShiftedSoftplus")
