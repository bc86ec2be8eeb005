"""Analysis: for every op of ``main``, its cost and where it went after partitioning.

Built from the module as it was before ``FuseOpsByPattern`` and what the target's
pattern checks saw: an op that went into a composite function is placed on the
external target (with the pattern's name), any other op stays on TVM with the
reasons the target's checks gave, or with "no <target> pattern" when no row matched.

Cost model: FLOPs count a multiply-add as 2 (convolutions, matmul), a pooling window
element as 1, and 1 per output element for every other op; bytes are the sizes of
the op's tensor inputs plus its output. Ops of symbolic shape count neither (their
cost depends on the shapes of each run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import tvm
from tvm import relax

from tvmext.dims import dims, static_shape


@dataclass(frozen=True)
class OpPlacement:
    """One op: its binding, output shape, cost, where it runs and why."""

    var: str
    op: str
    shape: tuple[int | str, ...] | None  # symbolic dims by name ("batch", "seq * 4")
    flops: int
    bytes: int
    placement: str
    detail: str
    implementation: str = ""  # how the external target's library runs it, if it says


@dataclass(frozen=True)
class PartitionReport:
    """The placements of a compiled model's ops, printable as a table."""

    target: str
    ops: tuple[OpPlacement, ...]

    def flops_on(self, placement: str) -> int:
        """Total FLOPs of the ops placed on ``placement`` (a target name or ``"tvm"``)."""
        return sum(o.flops for o in self.ops if o.placement == placement)

    def offloaded_fraction(self) -> float:
        """Share of the model's FLOPs that run on the external target."""
        total = sum(o.flops for o in self.ops)
        return self.flops_on(self.target) / total if total else 0.0

    def __str__(self) -> str:
        lines = [
            f"{'binding':14} {'op':22} {'shape':18} {'MFLOP':>9} {'KiB':>8}  placement",
        ]
        for o in self.ops:
            shape = "?" if o.shape is None else "x".join(str(d).replace(" ", "") for d in o.shape)
            how = f" [{o.implementation}]" if o.implementation else ""
            lines.append(
                f"{o.var:14} {o.op:22} {shape:18} {o.flops / 1e6:9.3f} {o.bytes / 1024:8.1f}  "
                f"{o.placement}: {o.detail}{how}"
            )
        lines.append(
            f"{self.target} runs {sum(o.placement == self.target for o in self.ops)} of "
            f"{len(self.ops)} ops, {100 * self.offloaded_fraction():.1f}% of "
            f"{sum(o.flops for o in self.ops) / 1e6:.2f} MFLOP"
        )
        return "\n".join(lines)


def shown_shape(expr: relax.Expr) -> tuple[int | str, ...] | None:
    """The shape of a tensor expression as the report shows it (symbolic dims by name),
    or None when it is not known."""
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or not isinstance(ty.shape, relax.ShapeExpr):
        return None
    return tuple(dims(ty.shape.values))


def _bytes(expr: relax.Expr) -> int:
    shape = static_shape(expr)
    if shape is None:
        return 0
    return math.prod(shape) * tvm.runtime.DataType(str(expr.ty.dtype)).bits // 8


def op_cost(call: relax.Call) -> tuple[int, int]:
    """(FLOPs, bytes) of one op call, by the cost model of this module."""
    out = static_shape(call)
    tensors = [a for a in call.args if isinstance(a.ty, relax.TensorType)]
    moved = sum(_bytes(a) for a in tensors) + _bytes(call)
    if out is None:
        return 0, moved
    n_out = math.prod(out)
    name = call.op.name if isinstance(call.op, tvm.ir.Op) else ""
    weight = static_shape(call.args[1]) if len(call.args) > 1 else None
    if name in ("relax.nn.conv1d", "relax.nn.conv2d", "relax.nn.conv3d") and weight is not None:
        layout = str(call.attrs.kernel_layout)
        per_output = math.prod(weight) // weight[layout.index("O")]
        return 2 * n_out * per_output, moved
    if name in ("relax.nn.conv1d_transpose", "relax.nn.conv2d_transpose") and weight is not None:
        return 2 * math.prod(static_shape(call.args[0]) or ()) * math.prod(weight[1:]), moved
    if name == "relax.matmul":
        a = static_shape(call.args[0])
        return (2 * n_out * a[-1] if a else 0), moved
    if name.startswith(("relax.nn.max_pool", "relax.nn.avg_pool")):
        return n_out * math.prod(int(k) for k in call.attrs.pool_size), moved
    return n_out, moved


def _op_bindings(mod: tvm.IRModule) -> list[tuple[relax.Var, relax.Call]]:
    """The op calls of every Relax function of ``mod`` (``main`` of a model; ``train_step``
    and ``predict`` of a training step), functions in name order."""
    out = []
    for _, func in sorted(mod.functions_items(), key=lambda item: item[0].name_hint):
        if not isinstance(func, relax.Function) or not isinstance(func.body, relax.SeqExpr):
            continue
        out += [
            (b.var, b.value)
            for block in func.body.blocks
            for b in block.bindings
            if isinstance(b, relax.VarBinding) and isinstance(b.value, relax.Call)
        ]
    return out


def partition_report(
    mod: tvm.IRModule,
    target: str,
    fused: Mapping[relax.Var, str],
    rejections: Mapping[relax.Var, Sequence[str]],
    implementations: Mapping[relax.Var, str] | None = None,
) -> PartitionReport:
    """The report of ``mod``'s functions as they were before ``FuseOpsByPattern`` for
    ``target``: ``fused`` maps the bindings that went into composite functions to the
    pattern's name, ``rejections`` maps bindings to the reasons checks gave,
    ``implementations`` the fused ones to how the library runs them."""
    ops: list[OpPlacement] = []
    for var, call in _op_bindings(mod):
        if not isinstance(call.op, tvm.ir.Op):
            continue
        flops, moved = op_cost(call)
        how = (implementations or {}).get(var, "")
        shape = shown_shape(call)
        if var in fused:
            placement, detail = target, fused[var]
            if shape is not None and any(isinstance(d, str) for d in shape):
                detail += " (dynamic: made for each shape a run brings)"
        else:
            reasons = rejections.get(var)
            placement = "tvm"
            detail = "; ".join(reasons) if reasons else f"no {target} pattern matches it"
        ops.append(OpPlacement(var.name, call.op.name, shape, flops, moved, placement, detail, how))
    return PartitionReport(target, tuple(ops))


def everything_on_tvm(mod: tvm.IRModule, target: str, reason: str) -> PartitionReport:
    """The report of ``mod`` when ``target`` took nothing, every op with ``reason``."""
    ops = [v for v, call in _op_bindings(mod) if isinstance(call.op, tvm.ir.Op)]
    return partition_report(mod, target, {}, {var: [reason] for var in ops})
