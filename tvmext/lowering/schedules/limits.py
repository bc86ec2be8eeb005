"""Size guard for schedules: what LLVM can compile in bounded time.

LLVM's compile time grows with the code a schedule makes it see: a loop vectorized
over more lanes than a few registers hold becomes a gather or a scalarized sequence
of that many elements, and unrolling multiplies its body. One such schedule (a GEMV
vectorized 128 wide around a reduction loop, unrolled) took LLVM seven minutes for
one kernel. Every schedule tvmext picks by rule is checked here before it is
accepted; one that exceeds a limit is dropped for the next, simpler rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir, tirx

from tvmext.lowering.schedules.helpers import vector_lanes

# A vectorized loop may span this many SIMD registers (the matmul micro-kernel's
# widest tile uses four).
MAX_VECTOR_REGISTERS = 4
# Scalar operations in one unrolled body: unrolled extents times vector lanes.
MAX_UNROLLED_ELEMENTS = 1024
_UNROLL_PRAGMA = "pragma_auto_unroll_max_step"


@dataclass(frozen=True)
class SizeViolation:
    """Why a schedule is too large: the loop and what it exceeds."""

    loop: str
    reason: str

    def __str__(self) -> str:
        return f"loop {self.loop}: {self.reason}"


def _extent(loop: tirx.For) -> int | None:
    return int(loop.extent) if isinstance(loop.extent, tirx.IntImm) else None


def child_statements(stmt: object) -> list[object]:
    """The statements directly inside ``stmt`` (a block's init and body, a loop's body, ...)."""
    if isinstance(stmt, tirx.SeqStmt):
        return list(stmt.seq)
    if isinstance(stmt, s_tir.SBlockRealize):
        return [stmt.block]
    if isinstance(stmt, s_tir.SBlock):
        return [s for s in (stmt.init, stmt.body) if s is not None]
    if isinstance(stmt, tirx.IfThenElse):
        return [s for s in (stmt.then_case, stmt.else_case) if s is not None]
    body = getattr(stmt, "body", None)
    return [body] if isinstance(body, tirx.Stmt) else []


def size_violation(func: tirx.PrimFunc, target: tvm.target.Target) -> SizeViolation | None:
    """The first loop of ``func`` whose vector width or unrolled size exceeds the
    limits for ``target``, or None."""
    max_lanes = MAX_VECTOR_REGISTERS * vector_lanes(target, "float32")

    def visit(stmt: object, unrolled: int, vectorized: bool) -> SizeViolation | None:
        if isinstance(stmt, tirx.For):
            extent = _extent(stmt)
            name = stmt.loop_var.name
            if stmt.kind == tirx.ForKind.VECTORIZED:
                if extent is None or extent > max_lanes:
                    return SizeViolation(
                        name, f"vectorized over {stmt.extent} lanes (limit {max_lanes})"
                    )
                unrolled *= extent
                vectorized = True
            elif stmt.kind == tirx.ForKind.UNROLLED or _UNROLL_PRAGMA in stmt.annotations:
                step = extent
                if _UNROLL_PRAGMA in stmt.annotations:
                    step = int(stmt.annotations[_UNROLL_PRAGMA])
                unrolled *= step if step is not None else MAX_UNROLLED_ELEMENTS + 1
            elif vectorized and extent != 1:
                return SizeViolation(name, "a loop inside a vectorized loop")
            if unrolled > MAX_UNROLLED_ELEMENTS:
                return SizeViolation(
                    name, f"unrolls to {unrolled} elements (limit {MAX_UNROLLED_ELEMENTS})"
                )
        for child in child_statements(stmt):
            found = visit(child, unrolled, vectorized)
            if found is not None:
                return found
        return None

    return visit(func.body, 1, False)
