"""Training: compiled steps, optimizers, losses, a Trainer and mode selection."""

from .compiled_step import CompiledStep
from .losses import GHMC, Loss, SigmoidBCE, SoftmaxCrossEntropy
from .metrics import accuracy, macro_f1, per_class_recall
from .mode_selector import ModeSelector
from .modes import BASIC, ONEDNN, OPTIMIZED, Mode
from .optimizers import SGD, Adam, Optimizer
from .step_program import StepProgram, init_params
from .train_state import Snapshot, TrainState
from .trainer import Trainer, one_hot

__all__ = [
    "BASIC",
    "GHMC",
    "ONEDNN",
    "OPTIMIZED",
    "SGD",
    "Adam",
    "CompiledStep",
    "Loss",
    "Mode",
    "ModeSelector",
    "Optimizer",
    "SigmoidBCE",
    "Snapshot",
    "SoftmaxCrossEntropy",
    "StepProgram",
    "TrainState",
    "Trainer",
    "accuracy",
    "init_params",
    "macro_f1",
    "one_hot",
    "per_class_recall",
]
