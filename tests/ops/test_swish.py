"""tvmext.swish through check_op: compute, gradient, schedule, export."""

from __future__ import annotations

import numpy as np
import pytest

from tvmext.ops import swish
from tvmext.testing import check_op

pytestmark = pytest.mark.native  # check_op exports the op, linked by the C++ compiler


@pytest.mark.parametrize("shape", [(7,), (4, 33), (2, 3, 64)])
@pytest.mark.parametrize("beta", [1.0, 1.7])
def test_check_op(rng, shape, beta):
    check_op(swish, rng.standard_normal(shape).astype("float32"), beta=beta)


def test_float64_uses_exact_exp(rng):
    check_op(swish, rng.standard_normal((5, 8)), beta=0.5)


def test_large_magnitudes_do_not_overflow():
    x = np.array([-1e4, -90.0, -10.0, 0.0, 10.0, 90.0, 1e4], "float32")
    np.testing.assert_allclose(
        swish(x),
        [0, 0, -10 / (1 + np.exp(10)), 0, 10 / (1 + np.exp(-10)), 90, 1e4],
        rtol=1e-5,
        atol=1e-6,
    )


def test_compiles_for_cuda(rng):
    check_op(swish, rng.standard_normal((4, 32)).astype("float32"), targets=["cuda"])
