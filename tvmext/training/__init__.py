"""Training: compiled steps, optimizers, losses, a Trainer and mode selection."""

from tvmext.training.compiled_step import CompiledStep
from tvmext.training.losses import GHMC, Loss, SigmoidBCE, SoftmaxCrossEntropy
from tvmext.training.metrics import accuracy, macro_f1, per_class_recall
from tvmext.training.mode_selector import ModeSelector
from tvmext.training.modes import BASIC, ONEDNN, OPTIMIZED, Mode
from tvmext.training.optimizers import SGD, Adam, Optimizer
from tvmext.training.step_program import StepProgram, init_params
from tvmext.training.train_state import Snapshot, TrainState
from tvmext.training.trainer import Trainer, one_hot

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
