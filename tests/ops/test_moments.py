"""tvmext.moments (two outputs) through check_op."""

from __future__ import annotations

import pytest

import tvmext
from tvmext.ops import moments
from tvmext.testing import check_op

pytestmark = pytest.mark.native  # check_op exports the op, linked by the C++ compiler


@pytest.mark.parametrize(
    ("shape", "n_axes"), [((4, 32), 1), ((2, 3, 16), 2), ((5, 7), 1), ((6,), 1)]
)
def test_check_op(rng, shape, n_axes):
    check_op(moments, rng.standard_normal(shape).astype("float32") + 3, n_axes=n_axes)


def test_n_axes_out_of_range_names_op_and_input(rng):
    with pytest.raises(
        tvmext.ShapeError,
        match=r"'tvmext.moments': attribute 'n_axes' must be "
        r"in 1..2 for input 'x' of rank 2, got 3",
    ):
        moments(rng.standard_normal((2, 3)), n_axes=3)


def test_compiles_for_cuda(rng):
    check_op(moments, rng.standard_normal((4, 32)).astype("float32"), targets=["cuda"])
