"""Experiments that show what recurrent cells can and cannot learn: ``memory`` (adding problem, copy task).

Example:
    >>> from lstmkit.experiment import MemoryConfig, run_memory
    >>> results = run_memory(MemoryConfig(lengths=(50, 200)), out="runs/memory")
"""

from .tasks.memory import MemoryConfig, MemoryResults, run_memory, train_one
from .tasks.memory_data import COPY_SPAN, COPY_SYMBOLS, FreshBatches, adding_problem, copy_task, make_batch
from .tasks.memory_model import MemoryModel, MemoryObjective, input_gradient_norms

__all__ = [
    "COPY_SPAN",
    "COPY_SYMBOLS",
    "FreshBatches",
    "MemoryConfig",
    "MemoryModel",
    "MemoryObjective",
    "MemoryResults",
    "adding_problem",
    "copy_task",
    "input_gradient_norms",
    "make_batch",
    "run_memory",
    "train_one",
]
