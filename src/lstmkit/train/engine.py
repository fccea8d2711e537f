"""The training engine shared by every task: fit, evaluate and predict, checkpoints and exact resumption.

It knows batches, losses and metrics, not tasks: a task hands it an Objective and its data.
Nothing here is specific to text, series or labels.
"""

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..backends import setup_seconds
from ..config import TrainConfig
from ..data.batch import Batch
from ..utils.device import resolve_device
from . import backend_record
from .checkpoint import (
    load_tensors,
    load_weights,
    optimizer_from_tensors,
    optimizer_to_tensors,
    restore_rng,
    rng_tensors,
    save_tensors,
)
from .optim import build_optimizer, build_scheduler
from .runs import FileContent, csv_bytes, json_bytes, read_json

_log = logging.getLogger(__name__)

RESUMABLE = ("max_steps", "max_time", "interrupted")


class Objective(Protocol):
    """What a task tells the engine: how to run the model on a batch, score it and evaluate it."""

    def outputs(self, model: nn.Module, batch: Batch) -> Tensor: ...

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """The mean loss of the batch (the quantity minimised)."""
        ...

    def items(self, batch: Batch) -> int:
        """How many items (tokens, samples) the batch holds, for throughput and loss averaging."""
        ...

    def evaluate(self, model: nn.Module, data: Any, device: torch.device) -> dict[str, float]:
        """Metrics on held-out data, including "loss" (lower is better; used for early stopping)."""
        ...


class EpochSource(Protocol):
    """Training data: a fixed number of batches per epoch, in an order drawn from the given generator."""

    def __len__(self) -> int: ...

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]: ...


@dataclass
class TrainState:
    """Where a run stands, beyond its weights and optimizer: enough to continue it exactly."""

    epoch: int = 0                 # completed epochs
    batch_in_epoch: int = 0        # batches done in the current epoch
    step: int = 0                  # optimizer steps in the whole run
    seconds: float = 0.0           # training time in the whole run
    epoch_loss_sum: float = 0.0    # running sums of the current epoch's training loss
    epoch_items: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0            # 1-based; 0 before the first validation
    bad_epochs: int = 0
    stop_reason: str = ""          # epochs | early_stopping | target_reached | max_steps | max_time | interrupted
    backend: str = ""              # the recurrent backend that trains the run (backend_record.describe); "" before
    backend_reason: str = ""       # why: auto's grounds, "named", or the record it was pinned from
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class FitResult:
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    state: TrainState


def _val_of(row: dict[str, float]) -> dict[str, float]:
    """The validation metrics of a history row, without their "val_" prefix."""
    return {k[4:]: v for k, v in row.items() if k.startswith("val_")}


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


class Trainer:
    """Fits a model with an Objective; writes each checkpoint through ``save`` (a run-folder writer).

    Args:
        model: the nn.Module to train (moved to the chosen device).
        objective: the task's loss and metrics.
        config: optimizer, schedule, stopping and device settings.
        save: receives the engine's files (relative name -> content) at every checkpoint; the task adds
            its own files (config, vocabulary) and writes the folder atomically.
        stop_when: asked with each epoch's validation metrics; True ends the run ("target_reached"), for
            experiments that stop once a task is solved.
        backend: the recurrent backend recorded by an earlier run (``backend_record.describe``), to train on
            from the first step; None: the stacks' own choice at the first step, recorded and kept for the run.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        config: TrainConfig,
        save: Callable[[dict[str, FileContent]], None] | None = None,
        stop_when: Callable[[dict[str, float]], bool] | None = None,
        backend: str | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.objective = objective
        self.save = save
        self.stop_when = stop_when
        self.optimizer = build_optimizer(model.parameters(), config)
        self.scheduler: Any = None
        self.state = TrainState()
        self.recorded_backend = backend
        self._best_weights: dict[str, Tensor] | None = None
        self._scheduler_state: dict[str, Any] | None = None  # from restore(), applied when fit builds the schedule

    # ---- evaluation and prediction -------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        was_training = self.model.training
        self.model.eval()
        try:
            return self.objective.evaluate(self.model, data, self.device)
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def predict(self, batches: Iterable[Batch]) -> Tensor:
        """The model's outputs for every batch, concatenated along the batch axis, on the CPU."""
        self.model.eval()
        return torch.cat([self.objective.outputs(self.model, b.to(self.device)).cpu() for b in batches])

    # ---- training ------------------------------------------------------------------------------

    def _elapsed(self, started: float, setup_before: float) -> float:
        """Training seconds since ``started``, without the one-time set-up the backends did meanwhile
        (building the extension, timing backends for auto)."""
        return time.perf_counter() - started - (setup_seconds() - setup_before)

    def _limits_reached(self, elapsed: float, seconds_before: float) -> str:
        cfg = self.config
        if cfg.max_steps is not None and self.state.step >= cfg.max_steps:
            return "max_steps"
        if cfg.max_time is not None and seconds_before + elapsed >= cfg.max_time:
            return "max_time"
        return ""

    def _train_step(self, batch: Batch) -> float:
        batch = batch.to(self.device)
        # bf16: autocast runs the matrix products in bfloat16; weights, optimizer state and the fused
        # recurrence's state stay float32, and evaluation runs in float32
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
            outputs = self.objective.outputs(self.model, batch)
            loss = self.objective.loss(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if not isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step()
        return float(loss.detach())

    def _pin_backend(self) -> dict[str, str] | None:
        """Pins the recorded backend (from the state, else the one given), or after the first step the one the
        stacks ran; returns the stacks' own backends to put back, or None when nothing was pinned."""
        s = self.state
        if not s.backend and self.recorded_backend:
            s.backend = self.recorded_backend
            s.backend_reason = "recorded by the run it was configured from"
        if not s.backend:
            ran = backend_record.used(self.model)
            if not ran:
                return None
            s.backend = backend_record.describe({name: backend for name, (backend, _) in ran.items()})
            reasons = sorted({reason for _, reason in ran.values()})
            s.backend_reason = "; ".join(reasons)
            _log.info("training on backend %s (%s)", s.backend, s.backend_reason)
        return backend_record.pin(self.model, backend_record.parse(self.model, s.backend))

    def _end_epoch(self, val: dict[str, float], seconds: float) -> bool:
        """Records the epoch; returns True when early stopping says stop."""
        s, cfg = self.state, self.config
        s.epoch += 1
        row = {
            "epoch": s.epoch,
            "step": s.step,
            "train_loss": s.epoch_loss_sum / max(1, s.epoch_items),
            **{f"val_{k}": v for k, v in val.items()},
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": round(seconds, 3),
        }
        s.history.append(row)
        s.batch_in_epoch, s.epoch_loss_sum, s.epoch_items = 0, 0.0, 0
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val["loss"])
        if val["loss"] < s.best_loss - cfg.min_delta:
            s.best_loss, s.best_epoch, s.bad_epochs = val["loss"], s.epoch, 0
            if cfg.restore_best:
                self._best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            s.bad_epochs += 1
        _log.info(
            "epoch %d: train loss %.4f, %s", s.epoch, row["train_loss"],
            ", ".join(f"val {k} {v:.4f}" for k, v in val.items()),
        )
        return cfg.patience is not None and s.bad_epochs >= cfg.patience

    def fit(self, train: EpochSource, val: Any) -> FitResult:
        """Trains until the epochs run out, early stopping triggers, or max_steps / max_time is reached.

        A KeyboardInterrupt also stops cleanly; every stop writes a checkpoint that ``restore`` continues
        exactly (same weights as an uninterrupted run with the same seed).
        """
        cfg, s = self.config, self.state
        horizon = cfg.epochs * len(train)  # the cosine schedule spans the configured epochs
        planned = horizon if cfg.max_steps is None else min(horizon, cfg.max_steps)
        if self.scheduler is None:
            restored_lrs = [group["lr"] for group in self.optimizer.param_groups]
            self.scheduler = build_scheduler(self.optimizer, cfg, horizon)
            if self._scheduler_state is not None:
                # building a schedule resets the rates to its first step; a resumed run keeps its own
                self.scheduler.load_state_dict(self._scheduler_state)
                for group, lr in zip(self.optimizer.param_groups, restored_lrs, strict=True):
                    group["lr"] = lr
        self.model.train()
        started, setup_before = time.perf_counter(), setup_seconds()
        seconds_before = s.seconds
        s.stop_reason = ""
        bar = tqdm(
            total=planned,
            initial=min(s.step, planned),
            disable=True if cfg.quiet else None,  # None: shown on a terminal, hidden in logs
            unit="step",
            dynamic_ncols=True,
            mininterval=0.5,
            leave=False,
        )
        items_done, loss_ema = 0, None
        own_backends = self._pin_backend()  # a resumed or reconfigured run: its recorded backend from the start
        try:
            while s.epoch < cfg.epochs and not s.stop_reason:
                generator = torch.Generator().manual_seed(_epoch_seed(cfg.seed, s.epoch))
                bar.set_description(f"epoch {s.epoch + 1}/{cfg.epochs}")
                for index, batch in enumerate(train.epoch(generator)):
                    if index < s.batch_in_epoch:
                        continue  # done before the run was resumed
                    s.stop_reason = self._limits_reached(self._elapsed(started, setup_before), seconds_before)
                    if s.stop_reason:
                        break
                    loss = self._train_step(batch)
                    if own_backends is None:
                        own_backends = self._pin_backend()  # the first step's choice, kept for the run
                    n = self.objective.items(batch)
                    s.step, s.batch_in_epoch = s.step + 1, s.batch_in_epoch + 1
                    s.epoch_loss_sum += loss * n
                    s.epoch_items += n
                    items_done += n
                    loss_ema = loss if loss_ema is None else 0.95 * loss_ema + 0.05 * loss
                    rate = items_done / max(1e-9, self._elapsed(started, setup_before))
                    bar.set_postfix(loss=f"{loss_ema:.3f}", items_per_s=f"{rate:,.0f}", refresh=False)
                    bar.update(1)
                if s.stop_reason:
                    break
                s.seconds = seconds_before + self._elapsed(started, setup_before)
                val_metrics = self.evaluate(val)
                if self._end_epoch(val_metrics, s.seconds):
                    s.stop_reason = "early_stopping"
                if self.stop_when is not None and self.stop_when(val_metrics):
                    s.stop_reason = "target_reached"
                self._checkpoint(val, final=False)
        except KeyboardInterrupt:
            s.stop_reason = "interrupted"
            _log.warning("interrupted: saving the run so that --resume can continue it")
        finally:
            bar.close()
        s.stop_reason = s.stop_reason or "epochs"
        s.seconds = seconds_before + self._elapsed(started, setup_before)
        metrics = self._checkpoint(val, final=True)
        if own_backends is not None:
            backend_record.pin(self.model, own_backends)  # the trained model chooses afresh when used
        _log.info("stopped (%s) after %d steps, %.1f s", s.stop_reason, s.step, s.seconds)
        return FitResult(metrics, s.history, s)

    # ---- checkpoints ---------------------------------------------------------------------------

    def _final_metrics(self, val: Any) -> tuple[dict[str, float], str]:
        """Validation metrics of the weights the run ends with; switches to the best epoch's weights when
        ``restore_best`` and they beat the last ones. Returns the metrics and "best_epoch" or "last"."""
        s = self.state
        if s.history and s.batch_in_epoch == 0:
            now = _val_of(s.history[-1])
        else:
            now = self.evaluate(val)  # stopped inside an epoch
        if self.config.restore_best and self._best_weights is not None and s.best_loss < now["loss"]:
            self.model.load_state_dict(self._best_weights)
            return _val_of(s.history[s.best_epoch - 1]), "best_epoch"
        return now, "last"

    def _checkpoint(self, val: Any, final: bool) -> dict[str, Any]:
        """Writes the run through ``save`` and returns its metrics. The final checkpoint may leave the model
        on its best epoch's weights; the last weights stay in the checkpoint for resuming."""
        s = self.state
        last = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        val_metrics, weights = self._final_metrics(val) if final else (_val_of(s.history[-1]), "last")
        metrics = {
            "val": val_metrics,
            "train": {"loss": s.history[-1]["train_loss"]} if s.history else {},
            "run": {
                "epochs": s.epoch,
                "steps": s.step,
                "seconds": round(s.seconds, 3),
                "stop_reason": s.stop_reason,
                "best_epoch": s.best_epoch,
                "weights": weights,
                "backend": s.backend,
                "backend_reason": s.backend_reason,
            },
        }
        if self.save is None:
            return metrics
        opt_tensors, opt_plain = optimizer_to_tensors(self.optimizer.state_dict())
        trainer_json = {
            "state": {k: v for k, v in dataclasses.asdict(s).items() if k != "history"},
            "optimizer": opt_plain,
            "scheduler": self.scheduler.state_dict(),
        }
        model_weights = self.model.state_dict()
        files: dict[str, FileContent] = {
            "model.safetensors": lambda p: save_tensors(p, model_weights),
            "metrics.json": json_bytes(metrics),
            "history.json": json_bytes(s.history),
            "history.csv": csv_bytes(s.history),
            "checkpoint/trainer.json": json_bytes(trainer_json),
            "checkpoint/optimizer.safetensors": lambda p: save_tensors(p, opt_tensors),
            "checkpoint/rng.safetensors": lambda p: save_tensors(p, rng_tensors()),
            "checkpoint/last_model.safetensors": lambda p: save_tensors(p, last),
        }
        if self._best_weights is not None:
            best = self._best_weights
            files["checkpoint/best_model.safetensors"] = lambda p: save_tensors(p, best)
        self.save(files)
        return metrics

    def restore(self, folder: Path) -> TrainState:
        """Loads weights, optimizer, schedule, RNG and progress from a run folder's checkpoint."""
        folder = Path(folder)
        plain = read_json(folder / "checkpoint" / "trainer.json", "checkpoint/trainer.json")
        load_weights(self.model, folder / "checkpoint" / "last_model.safetensors")
        self.model.to(self.device)
        opt = optimizer_from_tensors(load_tensors(folder / "checkpoint" / "optimizer.safetensors"), plain["optimizer"])
        self.optimizer.load_state_dict(opt)
        history = read_json(folder / "history.json", "history.json")
        self.state = TrainState(**plain["state"], history=history)
        if (folder / "checkpoint" / "best_model.safetensors").is_file():
            self._best_weights = load_tensors(folder / "checkpoint" / "best_model.safetensors")
        self._scheduler_state = plain["scheduler"]
        restore_rng(load_tensors(folder / "checkpoint" / "rng.safetensors"))
        return self.state
