"""The generic training engine: knows losses and batches, not tasks."""

from .engine import EpochSource, FitResult, Objective, Trainer, TrainState
from .runs import check_new_output, read_run_config, write_folder

__all__ = [
    "EpochSource",
    "FitResult",
    "Objective",
    "TrainState",
    "Trainer",
    "check_new_output",
    "read_run_config",
    "write_folder",
]
