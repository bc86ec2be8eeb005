"""Relax passes, registered per phase and target.

A pass entry is a factory returning a ``tvm.transform.Pass``; the compile pipeline has
one stage per phase, which runs the entries whose targets include the host target's
kind or one of the external targets of the target string (``"*"`` matches every
target), by priority and then registration order; tvmext's own passes take their phase
and priority from :mod:`tvmext.pass_order`, which lists them in the order they run. An
``inference_only`` pass is skipped when the pipeline compiles a training step. Phases:

* ``prepare``: the model as imported (e.g. BatchNorm is still one op);
* ``optimize``: inference simplification for every target;
* ``layout``: layouts and constant folding chosen for the targets, right before
  partitioning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator

from tvmext.errors import OpDefinitionError
from tvmext.pass_order import ORDER, PLACES
from tvmext.registry import Registry, caller_location

PHASES = tuple(ORDER)  # prepare, optimize, layout


@dataclass(frozen=True)
class PassEntry:
    """A registered pass: its factory, phase and the target kinds it is for."""

    name: str
    factory: Callable[[], tvm.transform.Pass]
    phase: str
    targets: tuple[str, ...]
    priority: int = 0
    inference_only: bool = False

    def applies_to(self, *targets: str) -> bool:
        """Whether this pass runs when compiling for any of ``targets``."""
        return "*" in self.targets or any(t in self.targets for t in targets)


PASSES: Registry[PassEntry] = Registry("pass")


def register_pass(
    name: str,
    *,
    phase: str | None = None,
    targets: Sequence[str] = ("*",),
    priority: int | None = None,
    inference_only: bool = False,
    replace: bool = False,
) -> Callable[[Callable[[], tvm.transform.Pass]], Callable[[], tvm.transform.Pass]]:
    """Register a pass factory under ``name`` for ``phase`` and ``targets`` (host kinds
    such as ``"llvm"`` or external targets such as ``"dnnl"``); within a phase, passes
    run by ascending ``priority`` (default ``"optimize"``, 0), then in registration
    order; ``inference_only`` passes (e.g. folding BatchNorm statistics) do not run on
    training steps. A pass :mod:`tvmext.pass_order` lists (tvmext's own, or one replacing
    it) takes its phase and priority from there."""
    if name in PLACES:
        if phase is not None or priority is not None:
            raise OpDefinitionError(
                f"pass {name!r}: its phase and priority are declared in tvmext.pass_order "
                f"({PLACES[name][0]}, {PLACES[name][1]}); register it without them"
            )
        phase, priority = PLACES[name]
    phase = "optimize" if phase is None else phase
    if phase not in PHASES:
        raise OpDefinitionError(f"pass {name!r}: unknown phase {phase!r}; phases: {PHASES}")
    origin = caller_location(2)
    entry_priority = 0 if priority is None else priority

    def register(factory: Callable[[], tvm.transform.Pass]) -> Callable[[], tvm.transform.Pass]:
        PASSES.add(
            name,
            PassEntry(name, factory, phase, tuple(targets), entry_priority, inference_only),
            origin,
            replace=replace,
        )
        return factory

    return register


def passes_for(phase: str, *targets: str) -> list[PassEntry]:
    """The registered passes of ``phase`` that apply to any of ``targets`` (the host
    kind and the external targets)."""
    found = [e.value for e in PASSES if e.value.phase == phase and e.value.applies_to(*targets)]
    return sorted(found, key=lambda e: e.priority)


def _each_function(mod: tvm.IRModule, rewrite: Callable[[relax.Function], Any]) -> tvm.IRModule:
    """A copy of ``mod`` with every Relax function rewritten: assigning into the module
    a pass was given would change the caller's module too (a test's reference, the
    input of an earlier ``--dump-ir`` stage)."""
    out = mod.clone()
    for gv, func in list(mod.functions_items()):
        if isinstance(func, relax.Function):
            out[gv] = rewrite(func)
    return out


def function_pass(
    name: str, rewrite: Callable[[relax.Function], relax.Function]
) -> tvm.transform.Pass:
    """A module pass named ``name`` that applies ``rewrite`` to every Relax function."""

    @tvm.transform.module_pass(opt_level=0, name=name)
    def run(mod: tvm.IRModule, _ctx: Any) -> tvm.IRModule:
        return _each_function(mod, rewrite)

    return run


class BindingReplacer(PyExprMutator):
    """A mutator base for :func:`mutator_pass` whose rewrites replace bound variables:
    every use visited after ``self.replaced[var] = expr`` reads ``expr`` instead of
    ``var``. Subclasses are decorated with ``tvm.relax.expr_functor.mutator``."""

    def __init__(self, mod: tvm.IRModule) -> None:
        super().__init__(mod)
        self.replaced: dict[relax.Var, relax.Expr] = {}

    def visit_var_(self, var: relax.Var) -> relax.Expr:
        return self.replaced.get(var, var)

    def visit_dataflow_var_(self, var: relax.DataflowVar) -> relax.Expr:
        return self.replaced.get(var, var)


def mutator_pass(name: str, mutator: Callable[[tvm.IRModule], Any]) -> tvm.transform.Pass:
    """A module pass named ``name`` that rewrites every Relax function with a fresh
    ``mutator(mod)`` (a ``PyExprMutator``), then drops the bindings nobody uses."""

    @tvm.transform.module_pass(opt_level=0, name=name)
    def run(mod: tvm.IRModule, _ctx: Any) -> tvm.IRModule:
        rewritten = _each_function(mod, lambda func: mutator(mod).visit_expr(func))
        return relax.transform.DeadCodeElimination()(rewritten)

    return run
