"""The task registry: every job by its one name. A new task is one module defining a ``Task`` instance and
one line in ``_MODULES``; the command line, ``lstmkit.load``, inspect and the contract tests find it here.

Task modules are imported on first use, so that ``import lstmkit`` stays light.
"""

import importlib
from pathlib import Path
from typing import Any

from ..errors import LstmkitError
from ..train.runs import read_run_config
from .base import Task

# task name -> (module under lstmkit.tasks, the name of its Task instance)
_MODULES = {
    "textgen": ("text_generation", "TEXTGEN"),
    "forecast": ("forecasting", "FORECAST"),
    "classify": ("text_classification", "CLASSIFY"),
    "memory": ("memory", "MEMORY"),
    "speech": ("speech", "SPEECH"),
}

TASK_NAMES = tuple(_MODULES)


def get(name: str) -> Task:
    """The task registered as ``name``."""
    if name not in _MODULES:
        raise LstmkitError(f"unknown task {name!r}; registered tasks: {', '.join(TASK_NAMES)}")
    module, attribute = _MODULES[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)


def all_tasks() -> list[Task]:
    return [get(name) for name in TASK_NAMES]


def task_of(folder: str | Path) -> Task:
    """The task that made a run folder (its config.json's "task")."""
    return get(read_run_config(folder)["task"])


def load(folder: str | Path) -> Any:
    """The predictor of any run folder, whatever its task: ``.predict(...)``, ``.model``, ``.config``,
    ``.metrics``."""
    return task_of(folder).load(folder)
