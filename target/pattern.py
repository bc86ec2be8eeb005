"""Pattern-table targets: what a vendor writes to plug a library into tvmext.

A target is a :class:`PatternTarget` subclass with three parts:

* a pattern table: :class:`PatternRow` rows, each a Relax dataflow pattern whose
  annotation ``"root"`` marks the op the row is about, and a check that returns
  ``None`` to accept a match or a *reason* (a sentence) to reject it;
* a codegen, :meth:`PatternTarget.codegen`, turning the composite functions that the
  rows matched into runtime modules (usually C++ against the vendor's API, compiled
  to an object and wrapped by ``tvm.runtime.load_static_library``);
* the linker options the exported artifact needs (:meth:`PatternTarget.link_options`).

:meth:`PatternTarget.partition` runs ``FuseOpsByPattern`` with the table (rows first
in the table win), records every rejection's reason against the ops it covered,
builds the :class:`~tvmext.target.report.PartitionReport` and runs the
codegen. Patterns live in the target's own table, never in TVM's global pattern
registry.

A target may also say how its library runs each composite
(:meth:`PatternTarget.implementations`, shown in the report) and refuse some for it
(:meth:`PatternTarget.refusal`, e.g. oneDNN's reference kernels): partitioning then
runs again with every match of the same signature (row, ops, attributes, shapes; see
:func:`match_signature`) rejected for that reason, so those ops stay on TVM and the
report says why.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tvm
import tvm_ffi
from tvm import relax
from tvm.relax.dpl import DFPattern
from tvm.relax.transform import FusionPattern, PatternCheckContext

from tvmext.target.external import PRECISION_ATTR, ExternalTarget, Partitioned

Check = Callable[[PatternCheckContext], str | None]
Signature = tuple[str, tuple[tuple[str, ...], ...]]

# Refusals change the partition, which may bring up new matches to refuse; each round
# refuses at least one new signature, and real models settle in one or two.
MAX_REFUSAL_ROUNDS = 8


@dataclass(frozen=True)
class PatternRow:
    """One row of a target's pattern table.

    ``name`` is ``"<target>.<what>"`` and becomes the composite function's name;
    ``annotations`` must hold ``"root"``, the op the row offloads; ``check`` returns
    ``None`` to accept a match or the reason it cannot be offloaded.
    """

    name: str
    pattern: DFPattern
    annotations: Mapping[str, DFPattern]
    check: Check


def leaked_intermediate(ctx: PatternCheckContext) -> str | None:
    """The reason a match cannot be fused when an intermediate result is used outside it."""
    matched = set(ctx.matched_bindings.keys())
    final = ctx.value_to_bound_var.get(ctx.matched_expr)
    for var in matched:
        if var.same_as(final):
            continue
        outside = [u for u in ctx.var_usages.get(var, []) if u not in matched]
        if outside:
            return f"the intermediate {var.name} is also used by {outside[0].name}"
        if not isinstance(var, relax.DataflowVar):  # an output of its dataflow block
            return f"the intermediate {var.name} is also an output of the function"
    return None


def match_signature(row: str, calls: Iterable[relax.Call]) -> Signature:
    """What decides how a library runs a match, values aside: its row and, per op, the
    op, its attributes and the types of what it reads and writes."""
    ops = (
        (str(c.op.name), str(c.attrs), *(str(a.ty) for a in c.args), str(c.ty))
        for c in calls
        if isinstance(c.op, tvm.ir.Op)
    )
    return row, tuple(sorted(ops))


def composite_signature(wrapper: relax.Function) -> Signature:
    """:func:`match_signature` of the composite function that ``wrapper`` (a function
    handed to the codegen) calls."""
    values = {b.var: b.value for block in wrapper.body.blocks for b in block.bindings}
    call = next(v for v in values.values() if isinstance(v, relax.Call))
    inner = values.get(call.op, call.op)
    calls = [b.value for block in inner.body.blocks for b in block.bindings]
    return match_signature(
        str(inner.attrs["Composite"]), (c for c in calls if isinstance(c, relax.Call))
    )


class PatternTarget(ExternalTarget):
    """An external target defined by a pattern table and a codegen."""

    @abc.abstractmethod
    def pattern_table(self) -> Sequence[PatternRow]:
        """The rows, most specific (longest) first."""

    @abc.abstractmethod
    def codegen(self, functions: Sequence[relax.Function]) -> list[Any]:
        """Runtime modules implementing ``functions`` (each has ``global_symbol`` and
        calls one composite function named after its row)."""

    def link_options(self) -> tuple[str, ...]:
        """Options for linking the exported ``.so`` (libraries the codegen calls)."""
        return ()

    def implementations(self, functions: Sequence[relax.Function]) -> Mapping[str, str]:
        """{global symbol: how the library runs it} for the functions (as :meth:`codegen`
        gets them), shown in the report; empty by default."""
        return {}

    def refusal(self, implementation: str) -> str | None:
        """Why a function the library would run this way must stay on TVM after all
        (e.g. a slow fallback kernel), or None; never by default."""
        return None

    def partition(self, mod: tvm.IRModule, host: tvm.target.Target) -> Partitioned:
        """Fuse what the table accepts and the target does not refuse, report every op's
        placement, run the codegen."""
        from tvmext.target.report import partition_report

        refused: dict[Signature, str] = {}
        for _ in range(MAX_REFUSAL_ROUNDS):
            accepted: dict[relax.Var, Signature] = {}
            rejections: dict[relax.Var, list[str]] = {}
            patterns = [
                FusionPattern(
                    row.name,
                    row.pattern,
                    row.annotations,
                    self._checker(row, accepted, rejections, refused),
                )
                for row in self.pattern_table()
            ]
            fused = _with_precision(
                relax.transform.FuseOpsByPattern(
                    patterns, bind_constants=False, annotate_codegen=True
                )(mod),
                self.name,
            )
            functions = [
                f
                for _, f in fused.functions_items()
                if isinstance(f, relax.Function)
                and f.attrs is not None
                and f.attrs.get("Codegen") == self.name
            ]
            found = self.implementations(functions)
            runs = {
                composite_signature(f): found.get(str(f.attrs["global_symbol"]), "")
                for f in functions
            }
            new = {sig: reason for sig, how in runs.items() if (reason := self.refusal(how))}
            if not new.keys() - refused.keys():
                break
            refused.update(new)
        report = partition_report(
            mod,
            self.name,
            {var: sig[0] for var, sig in accepted.items()},
            rejections,
            {var: runs.get(sig, "") for var, sig in accepted.items()},
        )
        tvm_ffi.register_global_func(f"relax.ext.{self.name}", self._run_codegen, override=True)
        # a model with nothing offloaded needs none of the library's link options
        options = self.link_options() if functions else ()
        return Partitioned(relax.transform.RunCodegen()(fused), report, options)

    def _run_codegen(self, functions: Sequence[relax.Function], *_: Any) -> list[Any]:
        return self.codegen(list(functions))

    @staticmethod
    def _checker(
        row: PatternRow,
        accepted: dict[relax.Var, Signature],
        rejections: dict[relax.Var, list[str]],
        refused: Mapping[Signature, str],
    ) -> Callable[..., bool]:
        def check(ctx: PatternCheckContext) -> bool:
            reason = leaked_intermediate(ctx) or row.check(ctx)
            calls = [v for v in ctx.matched_bindings.values() if isinstance(v, relax.Call)]
            signature = match_signature(row.name, calls)
            if reason is None:
                reason = refused.get(signature)
            if reason is None:
                accepted.update((var, signature) for var in ctx.matched_bindings)
                return True
            root = ctx.value_to_bound_var.get(ctx.annotated_expr["root"])
            for var in ctx.matched_bindings:
                text = (
                    reason if root is None or var.same_as(root) else f"with {root.name}: {reason}"
                )
                found = rejections.setdefault(var, [])
                if text not in found:
                    found.append(text)
            return False

        return check


def _with_precision(mod: tvm.IRModule, codegen: str) -> tvm.IRModule:
    """``mod`` with its precision attribute (if any) copied onto the functions handed to
    ``codegen``, where the codegen reads it."""
    precision = mod.attrs.get(PRECISION_ATTR) if mod.attrs is not None else None
    if precision is None:
        return mod
    for gv, f in mod.functions_items():
        if isinstance(f, relax.Function) and f.attrs and f.attrs.get("Codegen") == codegen:
            mod[gv] = f.with_attr(PRECISION_ATTR, precision)
    return mod
