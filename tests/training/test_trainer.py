"""Trainer: fitting, evaluation, metrics, checkpoints and resuming."""

from __future__ import annotations

import numpy as np
import pytest
from models import blobs, swish_mlp

from tvmext import ShapeError, training


@pytest.fixture(scope="module")
def program() -> training.StepProgram:
    """One program for every test: its trainers share its compiled steps."""
    return training.StepProgram(
        swish_mlp(), training.SoftmaxCrossEntropy(), training.Adam(), batch_size=16
    )


def test_fit_learns_separable_blobs(program, rng):
    x, y = blobs(rng, 400)
    trainer = training.Trainer(program, lr=1e-2, progress=False)
    history = trainer.fit(x[:300], y[:300], epochs=5, validation=(x[300:], y[300:]))
    assert [h["epoch"] for h in history] == [0, 1, 2, 3, 4]
    assert history[-1]["loss"] < history[0]["loss"] / 3
    assert history[-1]["val_accuracy"] > 0.9
    assert trainer.state.step == 5 * (300 // 16)
    scores = trainer.evaluate(x[300:], y[300:])
    assert scores["accuracy"] == history[-1]["val_accuracy"]


def test_resume_from_checkpoint_matches_uninterrupted(program, tmp_path, rng):
    x, y = blobs(rng, 160)
    straight = training.Trainer(program, lr=5e-3, seed=4, progress=False)
    straight.fit(x, y, epochs=4)
    first = training.Trainer(program, lr=5e-3, seed=4, progress=False, checkpoint_dir=tmp_path)
    first.fit(x, y, epochs=2)
    resumed = training.Trainer(program, lr=5e-3, seed=4, progress=False)
    resumed.state.load(tmp_path / "last.npz")
    assert resumed.step is straight.step  # one compiled step, each trainer its own state
    assert resumed.state.epoch == 2
    resumed.fit(x, y, epochs=4)
    for a, b in zip(resumed.state.params, straight.state.params, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_learning_rate_schedule_and_switch_keep_the_state(program, rng):
    x, y = blobs(rng, 64)
    trainer = training.Trainer(program, lr=lambda epoch: 0.0 if epoch == 0 else 1e-2)
    before = trainer.state.params_numpy()
    trainer.fit(x, y, epochs=1)
    np.testing.assert_array_equal(trainer.state.params_numpy()["fc1.weight"], before["fc1.weight"])
    trainer.switch(training.BASIC)
    assert trainer.mode.name == "basic"
    trainer.fit(x, y, epochs=2)
    assert trainer.history[-1]["mode"] == "basic"
    assert not np.array_equal(trainer.state.params_numpy()["fc1.weight"], before["fc1.weight"])


def test_metrics_match_scikit_learn(rng):
    from sklearn.metrics import f1_score, recall_score

    true, pred = rng.integers(0, 6, 200), rng.integers(0, 5, 200)
    pred[:50] = true[:50]
    assert training.macro_f1(pred, true, 6) == pytest.approx(f1_score(true, pred, average="macro"))
    np.testing.assert_allclose(
        training.per_class_recall(pred, true, 6), recall_score(true, pred, average=None)
    )


def test_fit_rejects_mismatched_data(program, rng):
    x, y = blobs(rng, 40)
    trainer = training.Trainer(program, progress=False)
    with pytest.raises(ShapeError, match="40 inputs but 39 labels"):
        trainer.fit(x, y[:-1], epochs=1)
    with pytest.raises(ShapeError, match="less than one batch of 16"):
        trainer.fit(x[:10], y[:10], epochs=1)
