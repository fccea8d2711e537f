"""Typed configuration, one dataclass per component, composed into a RunConfig stored as config.json.

Constructors hold no logic; ``validate()`` checks values and names the field, the expectation and the value.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import LstmkitError

CELLS = ("lstm", "gru", "rnn")
POOLINGS = ("last", "max", "mean", "attention")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "plateau")
PRECISIONS = ("fp32", "bf16")


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
    zoneout: float = 0.0             # LSTM: probability that a unit keeps its previous state at a step
    layer_norm: bool = False         # LSTM: layer-normalised gates and cell
    backend: str = "auto"            # auto | torch | fused | reference
    pooling: str = "last"            # text classifiers: last | max | mean | attention over the outputs

    def validate(self) -> None:
        _require_choice("cell", self.cell, CELLS)
        _require_choice("pooling", self.pooling, POOLINGS)
        for name in ("embed_dim", "hidden_size", "num_layers"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        for name in ("dropout", "recurrent_dropout", "zoneout"):
            value = getattr(self, name)
            _require(0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value}")
        _require(
            self.cell == "lstm" or (self.zoneout == 0.0 and not self.layer_norm),
            "zoneout and layer_norm are only available with cell 'lstm'",
        )


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
    precision: str = "fp32"          # fp32 | bf16 (mixed precision: bfloat16 matrix products while training)
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
        _require_choice("precision", self.precision, PRECISIONS)


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


FORECAST_SPLITS = ("ratio", "ett")
FILL_METHODS = ("ffill", "interpolate", "zero", "none")
CATEGORICAL = ("onehot", "refuse")


@dataclass
class ForecastDataConfig:
    """A CSV time series to forecast: its columns, split, windows and scaling, and the forecaster's layout
    (segment recurrence, channel independence, instance normalisation, autoregression), which depends on
    how the series is presented rather than on the recurrent backbone."""

    csv: str = ""                    # path of the CSV file (.gz read transparently)
    target: str = ""                 # COL[,COL...] to forecast, or "all" (every numeric column)
    features: str = ""               # input columns: "" the targets only, "all" every numeric column, or COL,...
    time_col: str | None = None      # timestamp column; None: the first column when it parses as timestamps
    lookback: int = 48               # L, input rows per window
    horizon: int = 12                # H, rows forecast per window
    split: str = "ratio"             # ratio (val/test fractions at the end) | ett (12/4/4 months)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    season: int | None = None        # seasonal-naive period in rows; None: from the timestamps' step
    fill: str = "ffill"              # missing values: ffill | interpolate | zero | none (refuse)
    categorical: str = "onehot"      # non-numeric input columns: onehot | refuse
    scaler: str = "standard"         # standard | minmax | none, fitted on the training rows only
    patch_len: int = 0               # P > 0: segment-level recurrence over L/P segments (SegRNN)
    channel_independent: bool = False  # every input column a univariate series, weights shared
    revin: bool = False              # per-window instance normalisation, added back to the forecast
    autoregressive: bool = False     # one-step head fed back H times instead of H outputs at once

    def validate(self) -> None:
        for name in ("lookback", "horizon"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        _require_choice("split", self.split, FORECAST_SPLITS)
        _require_choice("fill", self.fill, FILL_METHODS)
        _require_choice("categorical", self.categorical, CATEGORICAL)
        _require_choice("scaler", self.scaler, ("standard", "minmax", "none"))
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0.0 < value < 1.0, f"{name} must be in (0, 1), got {value}")
        _require(self.val_fraction + self.test_fraction < 1.0, "val_fraction + test_fraction must be below 1")
        _require(self.season is None or self.season >= 1, f"season must be at least 1, got {self.season}")
        _require(self.patch_len >= 0, f"patch_len must be 0 or positive, got {self.patch_len}")
        _require(
            self.patch_len == 0 or self.lookback % self.patch_len == 0,
            f"lookback must be a multiple of patch_len, got lookback {self.lookback} and patch_len {self.patch_len}",
        )
        _require(
            not (self.autoregressive and self.patch_len),
            "autoregressive forecasting works with the windowed layout only (patch_len 0)",
        )


@dataclass
class ClassificationDataConfig:
    """Labelled texts for classification: one source (a registered dataset, a CSV/TSV file or a folder of
    class folders), an optional official test set, and the vectoriser's settings."""

    data: str | None = None          # registered dataset name (imdb)
    csv: str | None = None           # comma- or tab-separated file (gzip allowed) with a header row
    test_csv: str | None = None      # its official test split; without one, test = a stratified hold-out
    dir: str | None = None           # one sub-folder of text files per class
    test_dir: str | None = None      # the same layout for the test split
    text_col: str = "text"
    label_col: str = "label"
    vocab_size: int = 20000          # V, ids including padding and out-of-vocabulary
    max_tokens: int = 400            # N, words kept from the start of each text
    val_fraction: float = 0.1        # stratified share of the training texts held out for validation
    test_fraction: float = 0.2       # stratified share held out for testing when there is no test split
    cv_folds: int = 0                # k > 1: stratified k-fold cross-validation on the training texts
    baseline: bool = True            # also fit TF-IDF + logistic regression on the same split

    def validate(self) -> None:
        sources = [name for name in ("data", "csv", "dir") if getattr(self, name)]
        _require(len(sources) == 1, f"give exactly one of data, csv and dir, got {', '.join(sources) or 'none'}")
        _require(self.vocab_size >= 3, f"vocab_size must be at least 3, got {self.vocab_size}")
        _require(self.max_tokens >= 1, f"max_tokens must be at least 1, got {self.max_tokens}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0.0 < value < 1.0, f"{name} must be in (0, 1), got {value}")
        _require(self.cv_folds == 0 or self.cv_folds >= 2, f"cv_folds must be 0 or at least 2, got {self.cv_folds}")
