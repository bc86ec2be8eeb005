"""The oneDNN target: ``--target "dnnl, llvm"`` runs convolutions (1-D to 3-D), dense
layers, batched matmuls (with the reshapes/transposes around them as strided views),
pooling, means, softmax, layer norm, transposes and element-wise adds/multiplies between
them on oneDNN (Intel's and Arm's CPU library), with bias, activations, residual adds and
scales fused as post-ops, and integer convolutions and dense layers as int8 primitives;
the rest stays on TVM.
See ``tutorials/05_hardware_target.ipynb``.

Parts: :mod:`.primitives` (one row per oneDNN primitive, and the pattern table derived
from them), :mod:`.patterns` (the rows' patterns and checks), :mod:`.emitters` (the C++
that builds each primitive), :mod:`.layouts` (Relax tensors as oneDNN descriptors),
:mod:`.codegen` (C++ per composite, compiled), ``runtime/`` (the oneDNN calls),
:mod:`.library` (finding oneDNN), ``passes/`` (its graph passes, registered for
target ``"dnnl"`` when this package loads; :mod:`tvmext.pass_order` lists them in the
order they run). oneDNN's CPU engine runs on
GNU OpenMP (the ``onednn-cpu-gomp`` build, see :mod:`.library`) with as many threads as
the host has cores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tvm import relax

from tvmext.target.dnnl import codegen, library, passes, primitives
from tvmext.target.dnnl.library import find_onednn
from tvmext.target.external import register_target
from tvmext.target.pattern import PatternRow, PatternTarget


class DnnlTarget(PatternTarget):
    """oneDNN as an external target (fp32 or bf16, and int8 integer products; CPU)."""

    name = "dnnl"

    def pattern_table(self) -> Sequence[PatternRow]:
        """See :mod:`.primitives`."""
        return primitives.pattern_table()

    def codegen(self, functions: Sequence[relax.Function]) -> list[Any]:
        """See :mod:`.codegen`."""
        return codegen.codegen(functions)

    def link_options(self) -> tuple[str, ...]:
        """Link ``libdnnl.so`` with an RPATH to its folder."""
        return find_onednn().link_options()

    def implementations(self, functions: Sequence[relax.Function]) -> Mapping[str, str]:
        """oneDNN's implementation of each primitive a composite runs, asked of oneDNN on
        this CPU when the code is compiled (see :func:`.codegen.implementations`)."""
        return codegen.implementations(functions)

    def refusal(self, implementation: str) -> str | None:
        """A reference kernel left after splitting off post-ops, or a primitive oneDNN
        cannot create (see :func:`.codegen.refusal`)."""
        return codegen.refusal(implementation)

    def precision_refusal(self, precision: str) -> str | None:
        """fp32 anywhere; bf16 where oneDNN has bf16 kernels (AVX512-BF16, and AMX on
        CPUs that have it): elsewhere it would emulate bf16, slower than fp32."""
        if precision != "bf16":
            return super().precision_refusal(precision)
        isa = find_onednn().cpu_isa()
        if library.isa_includes(isa, "avx512_core_bf16"):
            return None
        return (
            f"bf16 needs a CPU with AVX512-BF16 (or AMX); oneDNN's instruction set here is "
            f"{library.isa_name(isa)}"
        )

    def int8_refusal(self) -> str | None:
        """oneDNN's int8 kernels are exact only with VNNI (see
        :func:`.library.has_exact_int8`)."""
        isa = find_onednn().cpu_isa()
        if library.has_exact_int8(isa):
            return None
        return (
            f"oneDNN's int8 kernels saturate on a CPU without VNNI; its instruction set "
            f"here is {library.isa_name(isa)}"
        )


TARGET = register_target(DnnlTarget())

__all__ = ["TARGET", "DnnlTarget", "passes"]
