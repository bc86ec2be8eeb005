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
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tvm
import tvm_ffi
from tvm import relax
from tvm.relax.dpl import DFPattern
from tvm.relax.transform import FusionPattern, PatternCheckContext

from tvmext.target.external import ExternalTarget, Partitioned

Check = Callable[[PatternCheckContext], str | None]


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

    def partition(self, mod: tvm.IRModule, host: tvm.target.Target) -> Partitioned:
        """Fuse what the table accepts, report every op's placement, run the codegen."""
        from tvmext.target.report import partition_report

        accepted: dict[relax.Var, str] = {}
        rejections: dict[relax.Var, list[str]] = {}
        patterns = [
            FusionPattern(
                row.name, row.pattern, row.annotations, self._checker(row, accepted, rejections)
            )
            for row in self.pattern_table()
        ]
        fused = relax.transform.FuseOpsByPattern(
            patterns, bind_constants=False, annotate_codegen=True
        )(mod)
        report = partition_report(mod, self.name, accepted, rejections)
        tvm_ffi.register_global_func(f"relax.ext.{self.name}", self._run_codegen, override=True)
        return Partitioned(relax.transform.RunCodegen()(fused), report, self.link_options())

    def _run_codegen(self, functions: Sequence[relax.Function], *_: Any) -> list[Any]:
        return self.codegen(list(functions))

    @staticmethod
    def _checker(
        row: PatternRow, accepted: dict[relax.Var, str], rejections: dict[relax.Var, list[str]]
    ) -> Callable[..., bool]:
        def check(ctx: PatternCheckContext) -> bool:
            reason = leaked_intermediate(ctx) or row.check(ctx)
            if reason is None:
                accepted.update((var, row.name) for var in ctx.matched_bindings)
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
