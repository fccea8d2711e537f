"""Typed configuration, one dataclass per component, composed into a RunConfig stored as config.json.

Constructors hold no logic; ``validate()`` checks values and names the field, the expectation and the value.
Each field carries its help text, choices and unit as metadata (``setting``): the command line's options,
their choices and their help are generated from it (cli/options.py), so they are written once, here.
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
BACKENDS = ("auto", "torch", "fused", "triton", "reference")


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    unit: str | None = None,
    path: bool = False,
    cli: bool = True,
) -> Any:
    """A config field with its documentation: ``help`` (one phrase), ``choices`` (the allowed strings),
    ``unit`` (shown in the help), ``path`` (a file or folder, compared resolved), ``cli`` (False: not an
    option of the command line)."""
    meta = {"help": help, "choices": choices, "unit": unit, "path": path, "cli": cli}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults need a factory")
    return field(default=default, metadata=meta)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise LstmkitError(message)


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    _require(value in choices, f"{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass
class ModelConfig:
    """The recurrent backbone shared by every task."""

    cell: str = setting("lstm", "recurrent cell", choices=CELLS)
    embed_dim: int = setting(64, "embedding size: tokens for text tasks, segments for --patch-len forecasting")
    hidden_size: int = setting(256, "units per layer and direction")
    num_layers: int = setting(2, "stacked recurrent layers")
    dropout: float = setting(0.2, "dropout between layers and before the head")
    bidirectional: bool = setting(False, "read the sequence both ways")
    recurrent_dropout: float = setting(0.0, "variational dropout inside the recurrence (one mask per sequence)")
    zoneout: float = setting(0.0, "LSTM: probability that a unit keeps its previous state at a step")
    layer_norm: bool = setting(False, "LSTM: layer-normalised gates and cell")
    backend: str = setting("auto", "recurrent backend", choices=BACKENDS)
    backend_used: str = setting("", "the backend that trained the run, recorded after its first step and reused "
                                "by --resume and --config (a name, or module=name pairs)", cli=False)
    pooling: str = setting("last", "how a text classifier pools the outputs over time", choices=POOLINGS)

    def validate(self) -> None:
        _require_choice("cell", self.cell, CELLS)
        _require_choice("pooling", self.pooling, POOLINGS)
        _require_choice("backend", self.backend, BACKENDS)
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

    epochs: int = setting(20, "passes over the training data")
    max_steps: int | None = setting(None, "stop after this many optimizer steps in the whole run")
    max_time: float | None = setting(None, "stop after this much training time in the whole run (resumed "
                                     "runs add up)", unit="seconds")
    batch_size: int = setting(32, "examples per optimizer step")
    optimizer: str = setting("adam", "optimizer", choices=OPTIMIZERS)
    lr: float = setting(2e-3, "learning rate")
    weight_decay: float = setting(0.0, "weight decay")
    momentum: float = setting(0.9, "momentum of sgd and rmsprop")
    grad_clip: float | None = setting(5.0, "max global gradient norm (none: no clipping)")
    lr_schedule: str = setting("constant", "learning-rate schedule", choices=SCHEDULES)
    warmup_steps: int = setting(0, "steps of linear learning-rate warm-up")
    patience: int | None = setting(5, "early stopping: epochs without validation improvement (none: off)")
    min_delta: float = setting(0.0, "smallest validation improvement that counts for early stopping")
    restore_best: bool = setting(True, "end with the weights of the best validation epoch")
    seed: int = setting(0, "random seed")
    deterministic: bool = setting(False, "ask torch for deterministic kernels")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    precision: str = setting("fp32", "bf16: mixed-precision training", choices=PRECISIONS)
    quiet: bool = setting(False, "no progress bar or per-epoch log")

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

    text: str = setting("", "UTF-8 text file to learn from", path=True)
    data: str | None = setting(None, "registered dataset instead of a file (see `lstmkit data list`)")
    seq_len: int = setting(100, "characters per training window")
    val_fraction: float = setting(0.1, "share of the text, from its end, held out for validation")
    lowercase: bool = setting(False, "lower-case the text first")

    def validate(self) -> None:
        _require(bool(self.text) != bool(self.data), "give either a text file or a dataset name (data=...), "
                 "not both or neither")
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

    def sections(self) -> dict[str, Any]:
        """The component configs by section name, in the order the command line lists them."""
        return {"data": self.data, "model": self.model, "train": self.train}


T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Builds a config dataclass from a plain dict, refusing unknown keys (lists become tuples where the
    field's default is a tuple)."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    _require(not unknown, f"unknown {cls.__name__} settings: {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) and isinstance(names[k].default, tuple) else v
              for k, v in values.items()}
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
SCALERS = ("standard", "minmax", "none")


@dataclass
class ForecastDataConfig:
    """A CSV time series to forecast: its columns, split, windows and scaling, and the forecaster's layout
    (segment recurrence, channel independence, instance normalisation, autoregression), which depends on
    how the series is presented rather than on the recurrent backbone."""

    csv: str = setting("", "CSV file with a header row (.gz read too)", path=True)
    data: str | None = setting(None, "registered dataset instead of a file, NAME or NAME/FILE (e.g. ett/ETTh1.csv)")
    target: str = setting("", "column(s) to forecast, COL[,COL...], or 'all' numeric columns")
    features: str = setting("", "input columns: 'all' numeric columns or COL,... (empty: the targets)")
    time_col: str | None = setting(None, "timestamp column (default: the first column when it holds timestamps)")
    lookback: int = setting(48, "input rows per window", unit="rows")
    horizon: int = setting(12, "rows forecast per window", unit="rows")
    split: str = setting("ratio", "ratio (validation and test fractions at the end) or ett (12/4/4 months)",
                         choices=FORECAST_SPLITS)
    val_fraction: float = setting(0.1, "share of rows for validation")
    test_fraction: float = setting(0.2, "share of rows for the test")
    season: int | None = setting(None, "seasonal-naive period (default: from the timestamps' step)", unit="rows")
    fill: str = setting("ffill", "missing values (none: refuse them)", choices=FILL_METHODS)
    categorical: str = setting("onehot", "non-numeric input columns", choices=CATEGORICAL)
    scaler: str = setting("standard", "scaling fitted on the training rows only", choices=SCALERS)
    patch_len: int = setting(0, "segment length for segment-level recurrence over lookback / patch_len segments "
                             "(0: off)", unit="rows")
    channel_independent: bool = setting(False, "every input column a univariate series, weights shared")
    revin: bool = setting(False, "per-window instance normalisation, added back to the forecast")
    autoregressive: bool = setting(False, "one-step head fed back horizon times instead of all steps at once")

    def validate(self) -> None:
        _require(bool(self.csv) != bool(self.data), "give either a CSV file or a dataset name (data=...), "
                 "not both or neither")
        for name in ("lookback", "horizon"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        _require_choice("split", self.split, FORECAST_SPLITS)
        _require_choice("fill", self.fill, FILL_METHODS)
        _require_choice("categorical", self.categorical, CATEGORICAL)
        _require_choice("scaler", self.scaler, SCALERS)
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
        _require(bool(self.target), "give the column(s) to forecast with target=COL[,COL...] or target='all'")


@dataclass
class ClassificationDataConfig:
    """Labelled texts for classification: one source (a registered dataset, a CSV/TSV file or a folder of
    class folders), an optional official test set, and the vectoriser's settings."""

    data: str | None = setting(None, "registered labelled dataset (imdb: the official 25k/25k split)")
    csv: str | None = setting(None, "comma- or tab-separated file with a header row (gzip allowed)", path=True)
    test_csv: str | None = setting(None, "official test split for --csv (default: a stratified hold-out)",
                                   path=True)
    dir: str | None = setting(None, "folder with one sub-folder of text files per class", path=True)
    test_dir: str | None = setting(None, "official test split for --dir (default: a stratified hold-out)",
                                   path=True)
    text_col: str = setting("text", "column holding the texts")
    label_col: str = setting("label", "column holding the labels")
    vocab_size: int = setting(20000, "vocabulary size including padding and out-of-vocabulary", unit="words")
    max_tokens: int = setting(400, "words kept from the start of each text", unit="words")
    val_fraction: float = setting(0.1, "stratified share of the training texts held out for validation")
    test_fraction: float = setting(0.2, "stratified share held out for testing when there is no test split")
    cv_folds: int = setting(0, "k > 1: also run stratified k-fold cross-validation on the training texts")
    baseline: bool = setting(True, "also fit TF-IDF + logistic regression on the same split")

    def validate(self) -> None:
        sources = [name for name in ("data", "csv", "dir") if getattr(self, name)]
        _require(len(sources) == 1, f"give exactly one of data, csv and dir, got {', '.join(sources) or 'none'}")
        _require(not (self.test_csv and not self.csv) and not (self.test_dir and not self.dir),
                 "test_csv goes with csv and test_dir with dir")
        _require(self.vocab_size >= 3, f"vocab_size must be at least 3, got {self.vocab_size}")
        _require(self.max_tokens >= 1, f"max_tokens must be at least 1, got {self.max_tokens}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0.0 < value < 1.0, f"{name} must be in (0, 1), got {value}")
        _require(self.cv_folds == 0 or self.cv_folds >= 2, f"cv_folds must be 0 or at least 2, got {self.cv_folds}")


FEATURES = ("logmel", "mfcc")
SPEECH_DATASETS = ("fsdd",)


@dataclass
class SpeechDataConfig:
    """Labelled recordings for spoken-word recognition: one source (a registered corpus or a folder of class
    folders of WAV files), the split, the features computed from the audio and the training augmentation."""

    data: str | None = setting(None, "registered speech corpus (fsdd: the Free Spoken Digit Dataset, official "
                               "split)", choices=SPEECH_DATASETS)
    dir: str | None = setting(None, "folder with one sub-folder of .wav files per label", path=True)
    test_dir: str | None = setting(None, "official test split for --dir (default: a stratified hold-out)",
                                   path=True)
    test_speaker: str | None = setting(None, "fsdd: test on this speaker and train on the others "
                                       "(speaker-independent) instead of the official split")
    sample_rate: int = setting(8000, "rate every recording is resampled to", unit="Hz")
    feature: str = setting("mfcc", "features per frame: log-mel energies or MFCCs", choices=FEATURES)
    n_mels: int = setting(40, "mel bands (Slaney mel scale and normalisation)")
    n_mfcc: int = setting(20, "MFCCs kept (feature mfcc)")
    win_ms: float = setting(25.0, "analysis window (Hann)", unit="ms")
    hop_ms: float = setting(10.0, "frame step", unit="ms")
    time_masks: int = setting(2, "SpecAugment: time masks per training utterance")
    time_mask_frames: int = setting(5, "SpecAugment: widest time mask", unit="frames")
    freq_masks: int = setting(2, "SpecAugment: frequency masks per training utterance")
    freq_mask_bins: int = setting(5, "SpecAugment: widest frequency mask", unit="bins")
    val_fraction: float = setting(0.1, "stratified share of the training recordings held out for validation")
    test_fraction: float = setting(0.2, "stratified share held out for testing when there is no test split")
    baseline: bool = setting(True, "also fit MFCC statistics + logistic regression on the same split")

    def validate(self) -> None:
        sources = [name for name in ("data", "dir") if getattr(self, name)]
        _require(len(sources) == 1, f"give exactly one of data and dir, got {', '.join(sources) or 'none'}")
        if self.data is not None:
            _require_choice("data", self.data, SPEECH_DATASETS)
        _require(not (self.test_dir and not self.dir), "test_dir goes with dir")
        _require(not (self.test_speaker and not self.data), "test_speaker goes with data (a corpus with speakers)")
        _require_choice("feature", self.feature, FEATURES)
        _require(self.sample_rate >= 1000, f"sample_rate must be at least 1000 Hz, got {self.sample_rate}")
        _require(self.n_mels >= 2, f"n_mels must be at least 2, got {self.n_mels}")
        _require(1 <= self.n_mfcc <= self.n_mels, f"n_mfcc must be in [1, n_mels={self.n_mels}], got {self.n_mfcc}")
        _require(0 < self.hop_ms <= self.win_ms, f"hop_ms must be in (0, win_ms={self.win_ms}], got {self.hop_ms}")
        for name in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 0, f"{name} must be 0 or a positive integer, got {value!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0.0 < value < 1.0, f"{name} must be in (0, 1), got {value}")


@dataclass
class ConvFrontConfig:
    """The convolutional front end of a CNN-LSTM: the spectrogram is cut into overlapping slices of frames, and
    one small CNN (3x3 convolutions, batch norm, ReLU, max-pooling over frequency) turns each slice into a
    vector of embed_dim features for the LSTM."""

    channels: tuple[int, ...] = setting((16, 32), "output channels of each 3x3 convolution block")
    slice_frames: int = setting(4, "frames per spectrogram slice", unit="frames")
    slice_hop: int = setting(4, "step between slices (below slice_frames: overlapping slices)", unit="frames")

    def validate(self) -> None:
        _require(len(self.channels) >= 1 and all(c >= 1 for c in self.channels),
                 f"channels must be positive integers, got {self.channels}")
        _require(self.slice_frames >= 1, f"slice_frames must be at least 1, got {self.slice_frames}")
        _require(1 <= self.slice_hop <= self.slice_frames,
                 f"slice_hop must be in [1, slice_frames={self.slice_frames}], got {self.slice_hop}")


@dataclass
class SpeechRunConfig(RunConfig):
    """A speech run: RunConfig plus the convolutional front end."""

    frontend: ConvFrontConfig = field(default_factory=ConvFrontConfig)

    def validate(self) -> None:
        super().validate()
        self.frontend.validate()

    def sections(self) -> dict[str, Any]:
        return {"data": self.data, "frontend": self.frontend, "model": self.model, "train": self.train}
