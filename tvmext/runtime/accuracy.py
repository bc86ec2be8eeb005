"""The accuracy report of a reduced-precision artifact: its outputs against the fp32
artifact's on the same inputs.

Per output: the largest absolute difference, the relative error (that difference over
the fp32 output's largest magnitude: an element-wise ratio is meaningless where the
reference is near zero), the cosine similarity of the two outputs flattened, and for
outputs with a class axis (rank 2, ``[batch, classes]``) how often the top-1 classes
agree and how often fp32's top-1 class is among the reduced artifact's top 5.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from tvmext.errors import CompileError

# The exported artifact's symbol that holds the report as JSON (a C string).
ARTIFACT_SYMBOL = "tvmext_accuracy_report"


@dataclass(frozen=True)
class OutputAccuracy:
    """How far one output of the reduced-precision artifact is from fp32's."""

    index: int
    max_abs_error: float
    rel_error: float
    cosine: float
    top1: float | None = None  # agreement, for outputs with a class axis
    top5: float | None = None


@dataclass(frozen=True)
class AccuracyReport:
    """The outputs' accuracy of an artifact compiled in ``precision``, measured on
    ``inputs`` (where they came from: a file, or random)."""

    precision: str
    inputs: str
    outputs: tuple[OutputAccuracy, ...]

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over all outputs."""
        return max((o.rel_error for o in self.outputs), default=0.0)

    def check(self, bound: float | None) -> None:
        """A CompileError naming the outputs over ``bound`` (a relative error), if any."""
        if bound is None:
            return
        over = [o for o in self.outputs if not o.rel_error <= bound]
        if over:
            worst = ", ".join(f"output_{o.index} {o.rel_error:.3g}" for o in over)
            raise CompileError(
                f"{self.precision} results are further from fp32 than --max-rel-error "
                f"{bound:g} allows: relative error {worst}; no artifact written (compile "
                f"in fp32, or allow a larger error)\n{self}"
            )

    def to_json(self) -> str:
        """The report as JSON (what the artifact embeds)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AccuracyReport:
        """The report :meth:`to_json` wrote."""
        data = json.loads(text)
        outputs = tuple(OutputAccuracy(**o) for o in data["outputs"])
        return cls(data["precision"], data["inputs"], outputs)

    def __str__(self) -> str:
        lines = [
            f"accuracy of {self.precision} against fp32 on {self.inputs}:",
            f"  {'output':<10}{'max abs err':>13}{'rel err':>11}{'cosine':>11}"
            f"{'top-1':>8}{'top-5':>8}",
        ]
        for o in self.outputs:
            top = "".join(f"{v:>8.3f}" if v is not None else f"{'-':>8}" for v in (o.top1, o.top5))
            lines.append(
                f"  {'output_' + str(o.index):<10}{o.max_abs_error:>13.3e}{o.rel_error:>11.3e}"
                f"{o.cosine:>11.6f}{top}"
            )
        return "\n".join(lines)


def _top_agreement(reference: np.ndarray, result: np.ndarray) -> tuple[float, float]:
    """(top-1 agreement, share of rows whose reference top-1 is in the result's top 5)."""
    ref_top = np.argmax(reference, axis=-1)
    k = min(5, reference.shape[-1])
    result_top = np.argsort(-result, axis=-1, kind="stable")[:, :k]
    top1 = float(np.mean(result_top[:, 0] == ref_top))
    top5 = float(np.mean(np.any(result_top == ref_top[:, None], axis=1)))
    return top1, top5


def compare(
    precision: str, inputs: str, reference: Sequence[np.ndarray], results: Sequence[np.ndarray]
) -> AccuracyReport:
    """The report of ``results`` against the fp32 ``reference`` outputs."""
    outputs = []
    for index, (ref, res) in enumerate(zip(reference, results, strict=True)):
        ref64, res64 = np.asarray(ref, np.float64), np.asarray(res, np.float64)
        diff = np.abs(res64 - ref64)
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(ref64).max()) if ref64.size else 0.0
        rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        norms = float(np.linalg.norm(ref64) * np.linalg.norm(res64))
        cosine = float(np.dot(ref64.ravel(), res64.ravel()) / norms) if norms > 0 else 1.0
        top1 = top5 = None
        if ref64.ndim == 2 and ref64.shape[-1] >= 2 and np.issubdtype(ref.dtype, np.floating):
            top1, top5 = _top_agreement(ref64, res64)
        outputs.append(OutputAccuracy(index, max_abs, rel, cosine, top1, top5))
    return AccuracyReport(precision, inputs, tuple(outputs))
