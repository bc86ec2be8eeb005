"""Mode selection by convergence rate, on cases whose right answer is known by
construction: a mode that cannot learn (its compiled step ignores the learning rate), a
mode that diverges (NaN learning rate), and TVM's plain lowering against scheduled
kernels (same arithmetic, far slower)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tvm
from models import blobs, swish_mlp
from tvm import relax

from tvmext import TvmextError, training


def _lr_replaced_by(value: float) -> tvm.transform.Pass:
    """A compile pass that replaces ``train_step``'s learning rate with a constant."""

    @relax.expr_functor.mutator
    class Replace(relax.PyExprMutator):
        def __init__(self, lr: relax.Var) -> None:
            super().__init__()
            self.lr = lr

        def visit_var_(self, var: relax.Var) -> relax.Expr:
            return relax.const(value, "float32") if var.same_as(self.lr) else var

    @tvm.transform.module_pass(opt_level=0, name="ReplaceLearningRate")
    def run(mod: tvm.IRModule, _ctx: object) -> tvm.IRModule:
        mod = mod.clone()
        func = mod["train_step"]
        body = Replace(func.params[2]).visit_expr(func.body)
        mod["train_step"] = relax.Function(func.params, body, func.ret_ty, True, func.attrs)
        return mod

    return run


FROZEN = training.Mode("frozen", passes=(_lr_replaced_by(0.0),))
DIVERGING = training.Mode("diverging", passes=(_lr_replaced_by(math.nan),))


def _trainer(rng, modes, start, hidden=32, batch=16, **options):
    x, y = blobs(rng, 400)
    program = training.StepProgram(
        swish_mlp(hidden),
        training.SoftmaxCrossEntropy(),
        training.SGD(momentum=0.9),
        batch_size=batch,
    )
    selector = training.ModeSelector(
        modes, probe=(x[300:], y[300:]), stage_batches=6, warmup_batches=1, **options
    )
    trainer = training.Trainer(program, mode=start, lr=0.05, selector=selector, progress=False)
    return trainer, selector, x[:300], y[:300]


def test_a_mode_that_cannot_learn_loses_and_training_continues(rng, tmp_path):
    record = tmp_path / "decisions.json"
    modes = [FROZEN, training.OPTIMIZED, training.BASIC]
    trainer, selector, x, y = _trainer(rng, modes, FROZEN, record_path=str(record))
    trainer.fit(x, y, epochs=2)
    (decision,) = selector.decisions
    assert decision["previous"] == "frozen" and decision["winner"] != "frozen"
    frozen = decision["modes"]["frozen"]
    assert frozen["convergence"] == 0.0 and frozen["rate"] == 0.0
    assert decision["modes"][decision["winner"]]["convergence"] > 0
    # No restart: the stage's batches count, and the epoch goes on in the winning mode.
    assert trainer.state.step == 2 * (300 // 16)  # 6 stage batches in the first epoch
    assert trainer.history[0]["mode"] == decision["winner"]
    assert json.loads(record.read_text()) == json.loads(json.dumps(selector.decisions))
    for entry in decision["modes"].values():
        assert entry["seconds"] > 0 and entry["compile_seconds"] > 0


def test_divergence_falls_back_to_the_basic_mode(rng):
    modes = [DIVERGING, training.BASIC]
    trainer, selector, x, y = _trainer(rng, modes, DIVERGING)
    trainer.fit(x, y, epochs=1)
    (decision,) = selector.decisions
    assert decision["winner"] == "basic"
    assert "non-finite" in decision["reason"]
    assert decision["modes"]["diverging"]["finite"] is False
    assert all(np.isfinite(p.numpy()).all() for p in trainer.state.params)


def test_plain_lowering_against_scheduled_kernels(rng):
    # Same float32 arithmetic, so the same convergence; the decision then rests on the
    # measured times alone (plain lowering runs naive loops: about 40x slower here,
    # but tests assert no timings, only that the decision follows the measurement).
    modes = [training.BASIC, training.OPTIMIZED]
    trainer, selector, x, y = _trainer(rng, modes, training.BASIC, hidden=256, batch=48)
    trainer.fit(x, y, epochs=1)
    (decision,) = selector.decisions
    basic, optimized = decision["modes"]["basic"], decision["modes"]["optimized"]
    assert optimized["convergence"] == pytest.approx(basic["convergence"], rel=1e-3)
    faster = optimized["rate"] - basic["rate"] > selector.margin * abs(basic["rate"])
    assert decision["winner"] == ("optimized" if faster else "basic")
    assert trainer.mode.name == decision["winner"]


@pytest.mark.native
def test_accuracy_policy_and_parallel_processes(rng):
    modes = [FROZEN, training.OPTIMIZED]
    trainer, selector, x, y = _trainer(
        rng, modes, FROZEN, policy="accuracy", parallel=True, basic="optimized"
    )
    trainer.fit(x, y, epochs=1)
    (decision,) = selector.decisions
    assert decision["winner"] == "optimized"
    frozen = decision["modes"]["frozen"]
    assert frozen["probe_accuracy_after"] == frozen["probe_accuracy_before"]


def test_margin_keeps_the_current_mode():
    selector = training.ModeSelector(
        [training.BASIC, training.OPTIMIZED], probe=(np.zeros((1, 16)), np.zeros(1)), margin=0.1
    )

    def entry(rate: float) -> dict:
        return {"rate": rate, "finite": math.isfinite(rate)}

    assert selector._decide("basic", {"basic": entry(1.0), "optimized": entry(1.05)})[0] == "basic"
    assert (
        selector._decide("basic", {"basic": entry(1.0), "optimized": entry(1.2)})[0] == "optimized"
    )
    winner, reason = selector._decide(
        "optimized", {"basic": entry(1.0), "optimized": entry(math.nan)}
    )
    assert winner == "basic" and "non-finite" in reason


def test_selector_arguments_are_checked():
    probe = (np.zeros((1, 16)), np.zeros(1))
    with pytest.raises(TvmextError, match="basic mode 'basic' is not among"):
        training.ModeSelector([FROZEN, training.OPTIMIZED], probe=probe)
    with pytest.raises(TvmextError, match="policy 'speed'"):
        training.ModeSelector([training.BASIC, training.OPTIMIZED], probe=probe, policy="speed")
    with pytest.raises(TvmextError, match="two or more distinct modes"):
        training.ModeSelector([training.BASIC, training.BASIC], probe=probe)
