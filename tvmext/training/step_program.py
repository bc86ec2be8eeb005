"""The Relax module of one training step: forward, loss, gradient and optimizer update.

``train_step(inputs..., target, lr, params..., optimizer_state..., loss_state...)`` returns
``(loss, params'..., optimizer_state'..., loss_state'...)``: one call of a compiled
function per batch, with everything that persists between steps passed in and out as
runtime tensors. The gradient comes from ``relax.transform.Gradient``, so custom ops
(through their ``.gradient``) and native layers (through their backward) train like
built-in ones. ``predict(inputs..., params...)`` is the model's forward at any batch size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tvm
from tvm import relax, tirx

from tvmext.dims import dims
from tvmext.errors import ModelError, ShapeError
from tvmext.training.compiled_step import CompiledStep
from tvmext.training.losses import Loss
from tvmext.training.modes import OPTIMIZED, Mode
from tvmext.training.optimizers import Optimizer
from tvmext.training.train_state import TrainState

_LOSS = "tvmext_loss"


def _forward_function(model: tvm.IRModule, func: str | None) -> tuple[str, relax.Function]:
    names = [gv.name_hint for gv, f in model.functions_items() if isinstance(f, relax.Function)]
    if func is None:
        func = next((n for n in ("forward", "main") if n in names), names[0] if names else None)
    if func not in names:
        raise ModelError(
            f"training: the model has no Relax function {func!r}; it has {sorted(names)}"
        )
    return str(func), model[func]


def init_params(shapes: Mapping[str, tuple[int, ...]], *, seed: int = 0) -> dict[str, np.ndarray]:
    """PyTorch's default initialisation of linear/conv layers: weights (rank >= 2)
    uniform in ±1/sqrt(fan_in), fan_in the product of all but the first dim; rank < 2
    parameters (biases, norms' scales) are zeros, except names ending in ``weight``/``gamma``
    or ``scale`` (ones)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        if len(shape) >= 2:
            bound = 1.0 / np.sqrt(max(int(np.prod(shape[1:])), 1))
            out[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
        elif name.endswith(("weight", "gamma", "scale")):
            out[name] = np.ones(shape, np.float32)
        else:
            out[name] = np.zeros(shape, np.float32)
    return out


class StepProgram:
    """A model (a Relax function whose first ``num_input`` parameters are data and the
    rest trainable weights, as ``relax.frontend.nn``'s ``export_tvm`` produces), a loss
    and an optimizer, built into one training-step function for ``batch_size`` rows.

    The logits must be (batch, classes); targets are one-hot float32 of that shape.
    """

    def __init__(
        self,
        model: tvm.IRModule,
        loss: Loss,
        optimizer: Optimizer,
        *,
        batch_size: int,
        func: str | None = None,
        num_input: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ShapeError(f"training: batch_size must be >= 1, got {batch_size}")
        self.loss, self.optimizer, self.batch_size = loss, optimizer, batch_size
        name, forward = _forward_function(model, func)
        if num_input is None:
            attrs = forward.attrs
            num_input = int(attrs["num_input"]) if attrs and "num_input" in attrs else 1
        if num_input != 1 or len(forward.params) < 2:
            raise ModelError(
                f"training: function {name!r} must take one data input followed by the "
                f"weights; it has {len(forward.params)} parameters with num_input={num_input}"
            )
        self.param_names = [p.name for p in forward.params[num_input:]]
        self.param_shapes: dict[str, tuple[int, ...]] = {}
        for p in forward.params[num_input:]:
            shape = dims(p.ty.shape)
            if not all(isinstance(d, int) for d in shape):
                raise ShapeError(f"training: parameter {p.name!r} has a symbolic shape {shape}")
            self.param_shapes[p.name] = tuple(int(d) for d in shape)
        self.module = self._build(forward, num_input)
        # Keyed by the mode and its passes' identities: Mode's equality ignores passes.
        self._compiled: dict[tuple[Mode, tuple[int, ...]], CompiledStep] = {}

    def _specialized(self, forward: relax.Function, num_input: int) -> relax.Function:
        """``forward`` with the batch dimension of the data inputs fixed to batch_size."""
        binding: dict[Any, int] = {}
        for p in forward.params[:num_input]:
            shape = p.ty.shape
            if shape is not None and len(shape) and isinstance(shape[0], tirx.Var):
                binding[shape[0]] = self.batch_size
        mod = tvm.IRModule({"f": forward})
        if binding:
            mod = relax.transform.BindSymbolicVars(binding, "f")(mod)
        return mod["f"]

    def _build(self, forward: relax.Function, num_input: int) -> tvm.IRModule:
        fixed = self._specialized(forward, num_input)
        out_shape = dims(fixed.ret_ty.shape) if isinstance(fixed.ret_ty, relax.TensorType) else None
        if out_shape is None or len(out_shape) != 2 or out_shape[0] != self.batch_size:
            raise ShapeError(
                f"training: the model must return logits (batch, classes) = "
                f"({self.batch_size}, C); it returns {fixed.ret_ty}"
            )
        self.num_classes = int(out_shape[1])
        bb = relax.BlockBuilder()
        private = bb.add_func(fixed.without_attr("global_symbol"), "tvmext_forward")
        data = [relax.Var(p.name, p.ty) for p in fixed.params[:num_input]]
        target = relax.Var("target", relax.TensorType(out_shape, "float32"))
        params = [relax.Var(p.name, p.ty) for p in fixed.params[num_input:]]
        loss_state = [
            relax.Var(f"loss_state{i}", relax.TensorType(a.shape, str(a.dtype)))
            for i, a in enumerate(self.loss.initial_state())
        ]
        with bb.function(_LOSS, [*data, target, *params, *loss_state]):
            with bb.dataflow():
                logits = bb.emit(relax.Call(private, [*data, *params]))
                loss, new_loss_state = self.loss.emit(bb, logits, target, loss_state)
                outputs = [bb.emit_output(e) for e in (loss, *new_loss_state)]
            bb.emit_func_output(relax.Tuple(outputs))
        bb.add_func(
            forward.without_attr("num_input").with_attr("global_symbol", "predict"), "predict"
        )
        mod = relax.transform.InlinePrivateFunctions()(bb.get())
        first = len(data) + 1
        weights = list(mod[_LOSS].params[first : first + len(params)])
        mod = relax.transform.Gradient(_LOSS, require_grads=weights, target_index=0)(mod)
        return self._add_step(mod, data, target, params, loss_state)

    def _add_step(
        self,
        mod: tvm.IRModule,
        data: list[relax.Var],
        target: relax.Var,
        params: list[relax.Var],
        loss_state: list[relax.Var],
    ) -> tvm.IRModule:
        bb = relax.BlockBuilder(mod)
        fresh = [relax.Var(v.name, v.ty) for v in (*data, target, *params, *loss_state)]
        n_data = len(data)
        f_data, f_target = fresh[:n_data], fresh[n_data]
        f_params = fresh[n_data + 1 : n_data + 1 + len(params)]
        f_loss_state = fresh[n_data + 1 + len(params) :]
        lr = relax.Var("lr", relax.TensorType((), "float32"))
        opt_init = self.optimizer.initial_state(
            [np.zeros(self.param_shapes[n], np.float32) for n in self.param_names]
        )
        opt_state = [
            relax.Var(f"opt_state{i}", relax.TensorType(a.shape, str(a.dtype)))
            for i, a in enumerate(opt_init)
        ]
        adjoint = mod.get_global_var(_LOSS + "_adjoint")
        for gv in (adjoint, mod.get_global_var(_LOSS)):
            mod[gv] = mod[gv].without_attr("global_symbol")
        with bb.function(
            "train_step", [*f_data, f_target, lr, *f_params, *opt_state, *f_loss_state]
        ):
            with bb.dataflow():
                result = bb.emit(relax.Call(adjoint, [*f_data, f_target, *f_params, *f_loss_state]))
                values, grads = (bb.emit(relax.TupleGetItem(result, i)) for i in (0, 1))
                loss = bb.emit(relax.TupleGetItem(values, 0))
                new_loss_state = [
                    bb.emit(relax.TupleGetItem(values, 1 + i)) for i in range(len(f_loss_state))
                ]
                grad_list = [bb.emit(relax.TupleGetItem(grads, i)) for i in range(len(params))]
                new_params, new_opt = self.optimizer.emit(bb, f_params, grad_list, opt_state, lr)
                outputs = [
                    bb.emit_output(e) for e in (loss, *new_params, *new_opt, *new_loss_state)
                ]
            bb.emit_func_output(relax.Tuple(outputs))
        mod = relax.transform.InlinePrivateFunctions()(bb.get())
        mod = relax.transform.DeadCodeElimination(["train_step", "predict"])(mod)
        return relax.transform.CanonicalizeBindings()(mod)

    def initial_state(
        self, params: Mapping[str, np.ndarray] | None = None, *, seed: int = 0
    ) -> TrainState:
        """A fresh state: ``params`` (default :func:`init_params`), zero optimizer and loss
        state. A missing, extra or misshapen parameter is a ShapeError naming it."""
        values = dict(params) if params is not None else init_params(self.param_shapes, seed=seed)
        missing = [n for n in self.param_names if n not in values]
        extra = [n for n in values if n not in self.param_shapes]
        if missing or extra:
            raise ShapeError(
                f"training: parameters missing {missing}, unexpected {extra}; "
                f"the model's parameters are {self.param_names}"
            )
        arrays = []
        for name in self.param_names:
            a = np.asarray(values[name], dtype=np.float32)
            if a.shape != self.param_shapes[name]:
                raise ShapeError(
                    f"training: parameter {name!r} has shape {list(a.shape)}, expected "
                    f"{list(self.param_shapes[name])}"
                )
            arrays.append(a)
        return TrainState.from_numpy(
            self.param_names,
            arrays,
            self.optimizer.initial_state(arrays),
            self.loss.initial_state(),
        )

    def compile(self, mode: Mode | None = None) -> CompiledStep:
        """The step (and ``predict``) compiled in ``mode`` (default: the optimized mode),
        once per program and mode: a compiled step keeps no training state, so every
        trainer of this program shares it."""
        mode = mode or OPTIMIZED
        key = (mode, tuple(id(p) for p in mode.passes))
        if key not in self._compiled:
            # The cached step holds ``mode``, so the ids in the key stay its passes'.
            self._compiled[key] = CompiledStep(self, mode)
        return self._compiled[key]
