"""Typed configuration, one dataclass per component, composed into a RunConfig stored as config.json.

Constructors hold no logic; ``validate()`` checks values and names the field, the expectation and the value.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import LstmkitError

CELLS = ("lstm", "gru", "rnn")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "plateau")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise LstmkitError(message)


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    _require(value in choices, f"{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass
class ModelConfig:
    """The recurrent backbone shared by every task."""

    cell: str = "lstm"               # lstm | gru | rnn
    embed_dim: int = 64              # token embedding size (text tasks)
    hidden_size: int = 256           # H, units per direction
    num_layers: int = 2              # L, stacked recurrent layers
    dropout: float = 0.2             # between layers and before the head
    bidirectional: bool = False
    recurrent_dropout: float = 0.0   # variational dropout inside the recurrence
    backend: str = "auto"            # auto | torch | reference

    def validate(self) -> None:
        _require_choice("cell", self.cell, CELLS)
        for name in ("embed_dim", "hidden_size", "num_layers"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        for name in ("dropout", "recurrent_dropout"):
            value = getattr(self, name)
            _require(0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value}")


@dataclass
class TrainConfig:
    """The training engine's settings; stop criteria are epochs, max_steps and max_time, whichever comes first."""

    epochs: int = 20
    max_steps: int | None = None     # optimizer steps in the whole run
    max_time: float | None = None    # seconds of training in the whole run (resumed runs add up)
    batch_size: int = 32
    optimizer: str = "adam"          # adam | adamw | rmsprop | sgd
    lr: float = 2e-3
    weight_decay: float = 0.0
    momentum: float = 0.9            # sgd and rmsprop
    grad_clip: float | None = 5.0    # max global gradient norm; None turns clipping off
    lr_schedule: str = "constant"    # constant | cosine | plateau
    warmup_steps: int = 0
    patience: int | None = 5         # early stopping: epochs without validation improvement; None turns it off
    min_delta: float = 0.0
    restore_best: bool = True        # end with the weights of the best validation epoch
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    quiet: bool = False              # no progress bar

    def validate(self) -> None:
        _require(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        _require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        for name in ("max_steps", "patience"):
            value = getattr(self, name)
            _require(value is None or value >= 1, f"{name} must be at least 1 or None, got {value}")
        for name in ("max_time", "grad_clip", "lr"):
            value = getattr(self, name)
            _require(value is None or value > 0, f"{name} must be positive, got {value}")
        _require_choice("optimizer", self.optimizer, OPTIMIZERS)
        _require_choice("lr_schedule", self.lr_schedule, SCHEDULES)


@dataclass
class TextDataConfig:
    """A text file for character-level modelling, split into a training head and a validation tail."""

    text: str = ""                   # path of the text file
    seq_len: int = 100               # characters per training window
    val_fraction: float = 0.1        # share of the text, from its end, held out for validation
    lowercase: bool = False

    def validate(self) -> None:
        _require(self.seq_len >= 1, f"seq_len must be at least 1, got {self.seq_len}")
        _require(0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {self.val_fraction}")


@dataclass
class RunConfig:
    """Everything needed to rebuild a run: the task name and each component's settings."""

    task: str
    data: Any
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        self.data.validate()
        self.model.validate()
        self.train.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Builds a config dataclass from a plain dict, refusing unknown keys."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    _require(not unknown, f"unknown {cls.__name__} settings: {', '.join(unknown)}")
    return cls(**values)


def override(config: T, **changes: Any) -> T:
    """A copy of ``config`` with the given fields replaced; None values leave a field as it is."""
    changes = {k: v for k, v in changes.items() if v is not None}
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(changes) - names)
    _require(not unknown, f"unknown {type(config).__name__} settings: {', '.join(unknown)}")
    return dataclasses.replace(config, **changes)
