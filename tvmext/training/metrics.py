"""Classification metrics on predicted and true class ids (NumPy)."""

from __future__ import annotations

import numpy as np


def accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Fraction of rows whose predicted class is the true class."""
    return float((pred == true).mean()) if len(true) else 0.0


def per_class_recall(pred: np.ndarray, true: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class accuracy (recall): correct / present for each class; NaN if absent."""
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        present = true == c
        if present.any():
            out[c] = float((pred[present] == c).mean())
    return out


def macro_f1(pred: np.ndarray, true: np.ndarray, num_classes: int) -> float:
    """Unweighted mean over classes of F1 (a class with no support and no prediction is
    left out, as scikit-learn does with ``zero_division`` for absent labels)."""
    scores = []
    for c in range(num_classes):
        tp = int(((pred == c) & (true == c)).sum())
        fp = int(((pred == c) & (true != c)).sum())
        fn = int(((pred != c) & (true == c)).sum())
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0
