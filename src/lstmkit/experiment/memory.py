"""The long-range memory experiment: train RNN, GRU and LSTM with the same budget on the adding problem or
the copy task at several sequence lengths, and measure test error, time and input-gradient decay.

Owns the experiment's settings and its runner; the data is in data.py, the model and objective in model.py,
the figures in plots.py. Training goes through the shared engine (Trainer).
"""

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..config import CELLS, ModelConfig, TrainConfig
from ..errors import LstmkitError
from ..train import Trainer, check_new_output, write_folder
from ..train.runs import json_bytes
from ..utils.seed import set_seed
from .data import MEMORY_TASKS, FreshBatches, make_batch
from .model import MemoryModel, MemoryObjective, input_gradient_norms

_log = logging.getLogger(__name__)

GRADIENT_BATCH = 64  # test sequences used for the gradient-norm curves


@dataclass
class MemoryConfig:
    """Settings of ``lstmkit experiment memory``; every cell type gets the same budget."""

    task: str = "adding"                         # adding | copy
    cells: tuple[str, ...] = ("rnn", "gru", "lstm")
    lengths: tuple[int, ...] = (50, 100, 200, 400)
    hidden_size: int = 64                        # H of the single recurrent layer
    steps: int = 1200                            # optimizer steps per cell and length (at most)
    batch_size: int = 128
    lr: float = 1e-2                             # Adam
    grad_clip: float = 1.0
    evals: int = 24                              # validations per run (at most one per step); the best is tested
    solved_mse: float = 0.003                    # a run stops early once its validation MSE is below this (adding)
    solved_accuracy: float = 0.999               # ... or its validation accuracy above this (copy)
    val_size: int = 256
    test_size: int = 2000
    seed: int = 0
    quiet: bool = False                          # no progress bars

    def validate(self) -> None:
        if self.task not in MEMORY_TASKS:
            raise LstmkitError(f"task must be one of {', '.join(MEMORY_TASKS)}, got {self.task!r}")
        if not self.cells:
            raise LstmkitError("give at least one cell type (rnn, gru, lstm)")
        bad = [c for c in self.cells if c not in CELLS]
        if bad:
            raise LstmkitError(f"cells must be among {', '.join(CELLS)}, got {', '.join(map(repr, bad))}")
        if not self.lengths or any(n < 2 for n in self.lengths):
            raise LstmkitError(f"lengths must be integers of at least 2, got {list(self.lengths)}")
        for name in ("hidden_size", "steps", "batch_size", "evals", "val_size", "test_size"):
            value = getattr(self, name)
            if value < 1:
                raise LstmkitError(f"{name} must be a positive integer, got {value}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise LstmkitError(f"lr and grad_clip must be positive, got {self.lr} and {self.grad_clip}")


@dataclass
class MemoryResults:
    """What the experiment measured.

    Attributes:
        rows: one dict per (cell, length): cell, length, task, test_mse or test_accuracy, seconds, steps,
            and val (the best validation metric).
        gradients: per cell, the mean ||dL/dx_t|| at the longest length, (T,) as a list, index t.
        config: the settings used.
    """

    rows: list[dict[str, Any]]
    gradients: dict[str, list[float]] = field(default_factory=dict)
    config: MemoryConfig = field(default_factory=MemoryConfig)

    @property
    def metric(self) -> str:
        return "test_mse" if self.config.task == "adding" else "test_accuracy"


def _seed_for(seed: int, length: int, part: int) -> int:
    return (seed * 1_000_003 + length * 101 + part) % (2**63)


def train_one(config: MemoryConfig, cell: str, length: int) -> tuple[MemoryModel, dict[str, Any]]:
    """Trains one cell type at one length; returns the model (best validation weights) and its result row.

    Every cell type sees the same training batches, validation and test sets for a given seed and length. A run
    stops early once validation says the task is solved (``solved_mse`` / ``solved_accuracy``).
    """
    task = config.task
    val = make_batch(task, config.val_size, length, torch.Generator().manual_seed(_seed_for(config.seed, length, 1)))
    test = make_batch(task, config.test_size, length, torch.Generator().manual_seed(_seed_for(config.seed, length, 2)))
    set_seed(config.seed)
    model_cfg = ModelConfig(cell=cell, embed_dim=16, hidden_size=config.hidden_size, num_layers=1, dropout=0.0)
    model = MemoryModel(model_cfg, task)
    evals = min(config.evals, config.steps)
    per_eval = -(-config.steps // evals)                                # ceil: evals epochs cover the steps
    train_cfg = TrainConfig(
        epochs=evals, max_steps=config.steps, batch_size=config.batch_size, lr=config.lr,
        grad_clip=config.grad_clip, patience=None, restore_best=True, seed=_seed_for(config.seed, length, 0),
        device="cpu", quiet=config.quiet,
    )
    objective = MemoryObjective(task)

    def solved(val_metrics: dict[str, float]) -> bool:
        if task == "adding":
            return val_metrics["mse"] < config.solved_mse
        return val_metrics["accuracy"] > config.solved_accuracy

    trainer = Trainer(model, objective, train_cfg, stop_when=solved)
    started = time.perf_counter()
    fit = trainer.fit(FreshBatches(task, length, config.batch_size, per_eval), val)
    seconds = time.perf_counter() - started
    metrics = trainer.evaluate(test)
    key = "mse" if task == "adding" else "accuracy"
    row = {
        "cell": cell,
        "length": length,
        "task": task,
        f"test_{key}": round(metrics[key], 6),
        "seconds": round(seconds, 3),
        "steps": fit.state.step,
        f"val_{key}": round(fit.metrics["val"][key], 6),
    }
    _log.info("%s, length %d: test %s %.4f (%.0f s)", cell, length, key, metrics[key], seconds)
    return model, row


def run_memory(config: MemoryConfig, out: str | Path | None = None, overwrite: bool = False) -> MemoryResults:
    """Runs the experiment and, with ``out``, writes the folder: results.json (the rows), gradients.json,
    error_vs_length.png and gradient_vs_distance.png, all at once (atomically).

    Args:
        config: the settings (validated here).
        out: folder to write; refused if it exists unless ``overwrite``.

    Returns:
        The MemoryResults.
    """
    config.validate()
    if out is not None:
        check_new_output(Path(out), overwrite)
    rows, gradients = [], {}
    longest = max(config.lengths)
    runs = [(cell, length) for length in sorted(config.lengths) for cell in config.cells]
    bar = tqdm(runs, disable=True if config.quiet else None, unit="run", dynamic_ncols=True, leave=False)
    for cell, length in bar:
        bar.set_description(f"{cell} at length {length}")
        model, row = train_one(config, cell, length)
        rows.append(row)
        if length == longest:
            grad_batch = make_batch(
                config.task, GRADIENT_BATCH, length, torch.Generator().manual_seed(_seed_for(config.seed, length, 3))
            )
            norms = input_gradient_norms(model, grad_batch, MemoryObjective(config.task))
            gradients[cell] = [float(v) for v in norms]
    bar.close()
    results = MemoryResults(rows, gradients, config)
    if out is not None:
        write_results(Path(out), results)
    return results


def write_results(out: Path, results: MemoryResults) -> None:
    """Writes the experiment folder atomically (see run_memory)."""
    from .plots import plot_error_vs_length, plot_gradient_vs_distance

    settings = dataclasses.asdict(results.config)
    files = {
        "results.json": json_bytes(results.rows),
        "gradients.json": json_bytes({"length": max(results.config.lengths), "norms": results.gradients}),
        "config.json": json_bytes({"experiment": "memory", **settings}),
        "error_vs_length.png": lambda p: plot_error_vs_length(results, p),
        "gradient_vs_distance.png": lambda p: plot_gradient_vs_distance(results, p),
    }
    write_folder(out, files)
