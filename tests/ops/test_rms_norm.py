"""tvmext.rms_norm through check_op: compute, gradient (x and weight), schedule, export."""

from __future__ import annotations

import pytest

from tvmext.ops import rms_norm
from tvmext.testing import check_op

pytestmark = pytest.mark.native  # check_op exports the op, linked by the C++ compiler


@pytest.mark.parametrize("shape", [(3, 16), (2, 5, 64), (4, 13), (8,)])
def test_check_op(rng, shape):
    x = rng.standard_normal(shape).astype("float32")
    w = rng.standard_normal(shape[-1]).astype("float32")
    check_op(rms_norm, x, w, eps=1e-5)


def test_float64(rng):
    check_op(rms_norm, rng.standard_normal((3, 8)), rng.standard_normal(8), eps=1e-3)


def test_compiles_for_cuda(rng):
    x = rng.standard_normal((4, 64)).astype("float32")
    check_op(rms_norm, x, x[0].copy(), targets=["cuda"])


def test_weight_of_the_wrong_length_is_an_error():
    import numpy as np

    import tvmext

    with pytest.raises(tvmext.ShapeError, match=r"input 'weight' has shape \[3\], expected \[8\]"):
        rms_norm(np.ones((4, 8), "float32"), np.ones(3, "float32"))
