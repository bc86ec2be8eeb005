"""tvmext.ghmc_loss: mmdetection's GHM-C semantics, state over steps, gradient, edges."""

from __future__ import annotations

import numpy as np
import pytest

from tvmext.ops import ghmc_loss
from tvmext.testing import check_op

pytestmark = pytest.mark.native  # check_op exports the op, linked by the C++ compiler


def _data(rng, n=32, c=4, valid=0.9):
    pred = (rng.standard_normal((n, c)) * 2).astype(np.float32)
    target = (rng.random((n, c)) < 0.3).astype(np.float32)
    label_weight = (rng.random((n, c)) < valid).astype(np.float32)
    return pred, target, label_weight


def _reference(pred, target, label_weight, state, **attrs):
    attrs = {"bins": 10, "momentum": 0.0, "loss_weight": 1.0, **attrs}
    return ghmc_loss.reference_fn(pred, target, label_weight, state, **attrs)


@pytest.mark.parametrize(
    "attrs",
    [{}, {"bins": 30, "momentum": 0.75, "loss_weight": 2.0}],
    ids=["defaults", "coco"],
)
def test_check_op(rng, attrs):
    pred, target, label_weight = _data(rng)
    state = np.linspace(0, 5, attrs.get("bins", 10)).astype(np.float32)
    check_op(ghmc_loss, pred, target, label_weight, state, **attrs)


def test_state_over_several_steps_matches_numpy(rng):
    state = np.zeros(30, np.float32)
    ref_state = state.copy()
    for _ in range(4):
        pred, target, label_weight = _data(rng, n=64, c=8)
        loss, state = ghmc_loss(pred, target, label_weight, state, bins=30, momentum=0.75)
        ref_loss, ref_state = _reference(pred, target, label_weight, ref_state, bins=30,
                                         momentum=0.75)  # fmt: skip
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
        np.testing.assert_allclose(state, ref_state, rtol=1e-6)
    assert (state > 0).any()


def test_state_passes_through_without_momentum(rng):
    pred, target, label_weight = _data(rng)
    state = np.arange(10, dtype=np.float32)
    _, new_state = ghmc_loss(pred, target, label_weight, state)
    np.testing.assert_array_equal(new_state, state)


@pytest.mark.parametrize("bins", [10, 30])
def test_half_lands_in_numpys_bin(bins):
    """g = 0.5 exactly (pred = 0) must use the same bin edge as float32 NumPy."""
    pred = np.array([[0.0, 0.0, -0.2, 0.2, 3.0, -3.0]], np.float32)
    target = np.array([[0.0, 1.0, 0.0, 1.0, 1.0, 0.0]], np.float32)
    label_weight = np.ones_like(pred)
    state = np.zeros(bins, np.float32)
    loss, _ = ghmc_loss(pred, target, label_weight, state, bins=bins)
    np.testing.assert_allclose(loss, _reference(pred, target, label_weight, state, bins=bins)[0],
                               rtol=1e-6)  # fmt: skip


def test_all_elements_in_one_bin():
    pred = np.full((4, 3), 9.0, np.float32)  # sigmoid ~ 1, target 1: g ~ 0
    target = np.ones_like(pred)
    label_weight = np.ones_like(pred)
    loss, state = ghmc_loss(pred, target, label_weight, np.zeros(10, np.float32), momentum=0.5)
    ref_loss, ref_state = _reference(pred, target, label_weight, np.zeros(10, np.float32),
                                     momentum=0.5)  # fmt: skip
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(state, ref_state)
    assert state[0] == 6.0 and state[1:].sum() == 0  # 0.5 * 0 + 0.5 * 12


def test_no_valid_elements():
    pred = np.ones((3, 2), np.float32)
    zeros = np.zeros_like(pred)
    loss, state = ghmc_loss(pred, zeros, zeros, np.full(10, 2.0, np.float32), momentum=0.9)
    assert float(loss) == 0.0
    np.testing.assert_array_equal(state, np.full(10, 2.0, np.float32))


def test_extreme_logits():
    pred = np.array([[100.0, -100.0, 50.0, -50.0]], np.float32)
    target = np.array([[0.0, 1.0, 1.0, 0.0]], np.float32)
    label_weight = np.ones_like(pred)
    state = np.zeros(10, np.float32)
    loss, _ = ghmc_loss(pred, target, label_weight, state)
    ref, _ = _reference(pred, target, label_weight, state)
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, ref, rtol=1e-5)


def test_matches_a_pytorch_implementation(rng):
    """Test-only cross-check against mmdetection's GHMC written in PyTorch."""
    torch = pytest.importorskip("torch")
    pred, target, label_weight = _data(rng, n=48, c=5)
    bins, momentum = 30, 0.75
    acc_sum = torch.zeros(bins)
    state = np.zeros(bins, np.float32)
    for _ in range(2):
        x = torch.tensor(pred, requires_grad=True)
        t, lw = torch.tensor(target), torch.tensor(label_weight)
        edges = torch.arange(bins + 1).float() / bins
        edges[-1] += 1e-6
        g = torch.abs(x.sigmoid().detach() - t)
        valid = lw > 0
        tot = max(valid.float().sum().item(), 1.0)
        weights = torch.zeros_like(x)
        n = 0
        for i in range(bins):
            inds = (g >= edges[i]) & (g < edges[i + 1]) & valid
            num = inds.sum().item()
            if num > 0:
                acc_sum[i] = momentum * acc_sum[i] + (1 - momentum) * num
                weights[inds] = tot / acc_sum[i]
                n += 1
        if n > 0:
            weights = weights / n
        torch_loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(x, t, weights, reduction="sum")
            / tot
        )
        torch_loss.backward()
        loss, state = ghmc_loss(pred, target, label_weight, state, bins=bins, momentum=momentum)
        np.testing.assert_allclose(loss, torch_loss.item(), rtol=1e-5)
        np.testing.assert_allclose(state, acc_sum.numpy(), rtol=1e-6)
        pred = pred - 0.5 * x.grad.numpy()


def test_shapes_are_checked():
    import tvmext

    pred = np.zeros((4, 3), np.float32)
    with pytest.raises(tvmext.ShapeError, match=r"input 'target' has shape \[4, 2\]"):
        ghmc_loss(pred, np.zeros((4, 2), np.float32), pred, np.zeros(10, np.float32))
    with pytest.raises(tvmext.ShapeError, match=r"input 'state' has shape \[9\], expected \[10\]"):
        ghmc_loss(pred, pred, pred, np.zeros(9, np.float32))
