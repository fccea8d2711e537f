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
from torch import Tensor
from tqdm.auto import tqdm

from ..config import CELLS, ModelConfig, TrainConfig, setting
from ..errors import LstmkitError
from ..train import Trainer, check_new_output, write_folder
from ..train.checkpoint import load_weights, save_tensors
from ..train.runs import json_bytes, read_json
from ..utils.seed import set_seed
from .base import Example, Task
from .memory_data import MEMORY_TASKS, FreshBatches, make_batch
from .memory_model import MemoryModel, MemoryObjective, input_gradient_norms

_log = logging.getLogger(__name__)

GRADIENT_BATCH = 64  # test sequences used for the gradient-norm curves


@dataclass
class MemoryConfig:
    """Settings of ``lstmkit experiment memory``; every cell type gets the same budget."""

    task: str = setting("adding", "the memory problem", choices=MEMORY_TASKS)
    cells: tuple[str, ...] = setting(("rnn", "gru", "lstm"), "comma-separated cell types", choices=CELLS)
    lengths: tuple[int, ...] = setting((50, 100, 200, 400), "comma-separated sequence lengths (copy: delays)")
    hidden_size: int = setting(64, "units of the single recurrent layer")
    steps: int = setting(1200, "optimizer steps per cell type and length (at most)")
    batch_size: int = setting(128, "sequences per step")
    lr: float = setting(1e-2, "Adam learning rate")
    grad_clip: float = setting(1.0, "max global gradient norm")
    evals: int = setting(24, "validations per run (at most one per step); the best is tested")
    solved_mse: float = setting(0.003, "a run stops once its validation MSE is below this (adding)")
    solved_accuracy: float = setting(0.999, "a run stops once its validation accuracy is above this (copy)")
    val_size: int = setting(256, "validation sequences")
    test_size: int = setting(2000, "test sequences")
    seed: int = setting(0, "random seed")
    quiet: bool = setting(False, "no progress bars")

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
class MemoryRun:
    """The memory experiment's whole configuration, as config.json stores it."""

    task: str = "memory"
    experiment: MemoryConfig = field(default_factory=MemoryConfig)

    def validate(self) -> None:
        self.experiment.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sections(self) -> dict[str, Any]:
        return {"experiment": self.experiment}


@dataclass
class MemoryResults:
    """What the experiment measured.

    Attributes:
        rows: one dict per (cell, length): cell, length, task, test_mse or test_accuracy, seconds, steps,
            and val (the best validation metric).
        gradients: per cell, the mean ||dL/dx_t|| at the longest length, (T,) as a list, index t.
        config: the settings used.
        models: the trained model of each (cell, length), named "cell-length".
        path: the folder the results were written to, if any.
    """

    rows: list[dict[str, Any]]
    gradients: dict[str, list[float]] = field(default_factory=dict)
    config: MemoryConfig = field(default_factory=MemoryConfig)
    models: dict[str, MemoryModel] = field(default_factory=dict)
    path: Path | None = None

    @property
    def metric(self) -> str:
        return "test_mse" if self.config.task == "adding" else "test_accuracy"

    @property
    def metrics(self) -> dict[str, Any]:
        return {"rows": self.rows, "gradients": self.gradients}

    @property
    def model(self) -> MemoryModel:
        """The LSTM (else the last cell type) trained at the longest length."""
        longest = max(self.config.lengths)
        cell = "lstm" if "lstm" in self.config.cells else self.config.cells[-1]
        return self.models[f"{cell}-{longest}"]

    @torch.no_grad()
    def predict(self, inputs: Tensor, cell: str | None = None, length: int | None = None) -> Tensor:
        """Outputs of the model of ``cell`` trained at ``length`` (default: ``model``) on a batch of inputs
        (adding: (B, T, 2); copy: ids (B, T))."""
        model = self.model if cell is None else self.models[f"{cell}-{length or max(self.config.lengths)}"]
        return model.eval()(inputs)


def _seed_for(seed: int, length: int, part: int) -> int:
    return (seed * 1_000_003 + length * 101 + part) % (2**63)


def _model_config(config: MemoryConfig, cell: str) -> ModelConfig:
    return ModelConfig(cell=cell, embed_dim=16, hidden_size=config.hidden_size, num_layers=1, dropout=0.0)


def train_one(config: MemoryConfig, cell: str, length: int) -> tuple[MemoryModel, dict[str, Any]]:
    """Trains one cell type at one length; returns the model (best validation weights) and its result row.

    Every cell type sees the same training batches, validation and test sets for a given seed and length. A run
    stops early once validation says the task is solved (``solved_mse`` / ``solved_accuracy``).
    """
    task = config.task
    val = make_batch(task, config.val_size, length, torch.Generator().manual_seed(_seed_for(config.seed, length, 1)))
    test = make_batch(task, config.test_size, length, torch.Generator().manual_seed(_seed_for(config.seed, length, 2)))
    set_seed(config.seed)
    model = MemoryModel(_model_config(config, cell), task)
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
    if fit.state.stop_reason == "interrupted":
        raise KeyboardInterrupt  # a cut-short run is not a result: the folder keeps the finished ones
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


def _model_name(cell: str, length: int) -> str:
    return f"{cell}-{length}"


def _folder_files(results: MemoryResults, complete: bool) -> dict[str, Any]:
    """The experiment folder's files: done runs' rows, gradients and weights, and, once complete, the plots."""
    from .memory_plots import plot_error_vs_length, plot_gradient_vs_distance

    files: dict[str, Any] = {
        "config.json": json_bytes(MemoryRun(experiment=results.config).to_dict()),
        "results.json": json_bytes(results.rows),
        "gradients.json": json_bytes({"length": max(results.config.lengths), "norms": results.gradients}),
        "progress.json": json_bytes({"complete": complete, "runs_done": len(results.rows),
                                     "runs": len(results.config.cells) * len(results.config.lengths)}),
        **{f"models/{name}.safetensors": (lambda p, m=model: save_tensors(p, m.state_dict()))
           for name, model in results.models.items()},
    }
    if complete:
        files["error_vs_length.png"] = lambda p: plot_error_vs_length(results, p)
        files["gradient_vs_distance.png"] = lambda p: plot_gradient_vs_distance(results, p)
    return files


def _read_results(folder: Path, config: MemoryConfig) -> MemoryResults:
    """The runs a folder holds (complete or not), with their models."""
    rows = read_json(folder / "results.json", "results.json")
    gradients = read_json(folder / "gradients.json", "gradients.json")["norms"]
    models = {}
    for row in rows:
        model = MemoryModel(_model_config(config, row["cell"]), config.task)
        load_weights(model, folder / "models" / f"{_model_name(row['cell'], row['length'])}.safetensors")
        models[_model_name(row["cell"], row["length"])] = model.eval()
    return MemoryResults(rows, gradients, config, models, folder)


def run_memory(
    config: MemoryConfig, out: str | Path | None = None, overwrite: bool = False, resume: bool = False
) -> MemoryResults:
    """Runs the experiment and, with ``out``, writes the folder after every (cell, length) run, atomically:
    config.json, results.json (the rows done), gradients.json, progress.json, models/ (each run's weights)
    and, once every run is done, error_vs_length.png and gradient_vs_distance.png.

    Ctrl-C stops it: the folder keeps the runs that finished (progress.json says "complete": false) and
    ``resume=True`` continues with the others; every run is seeded on its own, so the results are those of
    an uninterrupted experiment.

    Args:
        config: the settings (validated here).
        out: folder to write; refused if it exists unless ``overwrite`` or ``resume``.

    Returns:
        The MemoryResults.
    """
    config.validate()
    results = MemoryResults([], {}, config, {}, Path(out) if out is not None else None)
    if resume:
        if out is None:
            raise LstmkitError("resume needs the experiment's folder (out)")
        results = _read_results(Path(out), config)
    elif out is not None:
        check_new_output(Path(out), overwrite)
    done = {(row["cell"], row["length"]) for row in results.rows}
    longest = max(config.lengths)
    runs = [(cell, length) for length in sorted(config.lengths) for cell in config.cells]
    bar = tqdm(runs, disable=True if config.quiet else None, unit="run", dynamic_ncols=True, leave=False)
    for cell, length in bar:
        if (cell, length) in done:
            continue
        bar.set_description(f"{cell} at length {length}")
        model, row = train_one(config, cell, length)
        results.rows.append(row)
        results.models[_model_name(cell, length)] = model
        if length == longest:
            grad_batch = make_batch(
                config.task, GRADIENT_BATCH, length, torch.Generator().manual_seed(_seed_for(config.seed, length, 3))
            )
            norms = input_gradient_norms(model, grad_batch, MemoryObjective(config.task))
            results.gradients[cell] = [float(v) for v in norms]
        if out is not None:
            write_folder(Path(out), _folder_files(results, complete=len(results.rows) == len(runs)))
    bar.close()
    return results


class MemoryTask(Task):
    """``memory``: RNN, GRU and LSTM trained with one budget on a long-range memory problem."""

    name = "memory"
    help = "RNN vs GRU vs LSTM on the adding problem or the copy task"
    command = ("experiment", "memory")
    writes_run = False

    def dry_run_settings(self) -> dict[str, Any]:
        return {"steps": 2, "evals": 1}

    def default_config(self) -> MemoryRun:
        return MemoryRun()

    def train(self, *, out: str | Path | None = None, overwrite: bool = False, resume: bool = False,
              **settings: Any) -> MemoryResults:
        if resume:
            if out is None:
                raise LstmkitError("resume needs the experiment's folder (out)")
            saved = self.read_config(Path(out))
            self.check_unchanged(saved, settings, changeable=("quiet",))
            config = self.apply_settings(saved, {"quiet": settings.get("quiet")})
        else:
            config = self.new_config(settings)
        return run_memory(config.experiment, out, overwrite=overwrite, resume=resume)

    def load(self, folder: str | Path) -> MemoryResults:
        folder = Path(folder)
        return _read_results(folder, self.read_config(folder).experiment)

    def example(self, folder: Path) -> Example:
        tiny = {"cells": ("lstm", "gru"), "lengths": (5,), "steps": 4, "evals": 2, "batch_size": 8, "val_size": 16,
                "test_size": 16, "hidden_size": 8, "quiet": True}
        inputs = make_batch("adding", 4, 5, torch.Generator().manual_seed(0)).inputs
        return Example(tiny, (inputs,), {**tiny, "lengths": (1,)}, "lengths must be integers of at least 2")


MEMORY = MemoryTask()
