"""The Task: the unit every job is written as. A task owns its name, its configuration and defaults, how it
builds its model from the configuration and the fitted state (vocabulary, scaler...), how it fits into a run
folder, how it loads a run into a predictor, and small example data for tests and dry runs.

What every task shares lives here once: routing flat settings to config sections, reading a run's config,
the rules for resuming (flags equal to the saved ones accepted, stop criteria kept unless given again), and
fitting a model into a run folder through the engine. The registry (registry.py) maps names to tasks; the
command line (cli/) and ``lstmkit.load`` only talk to tasks through this class.
"""

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from torch import nn

from ..config import RunConfig, from_dict, override
from ..errors import LstmkitError
from ..train import FitResult, Trainer, check_new_output, write_folder
from ..train.checkpoint import load_weights
from ..train.engine import RESUMABLE, EpochSource, Objective
from ..train.runs import json_bytes, read_json, read_run_config, recover

_log = logging.getLogger(__name__)

RESUME_SETTINGS = ("epochs", "max_steps", "max_time", "quiet")  # may differ from the saved run's values


class TextView(NamedTuple):
    """What ``inspect`` needs from a predictor that reads text with an LSTM: the stack, how a text becomes
    tokens, and how it becomes the stack's inputs (1, T, I)."""

    lstm: nn.Module
    tokenize: Any          # text -> list of tokens
    to_inputs: Any         # text -> (1, T, I) tensor


@dataclass
class Example:
    """Tiny data for a task's contract tests and dry runs.

    Attributes:
        settings: keyword arguments of ``Task.train`` (data paths and a tiny model) that fit in seconds.
        inputs: positional arguments of the predictor's ``predict`` on those data.
        bad_settings: settings that the task must refuse with an LstmkitError (one bad input).
        bad_message: the start of that error's message.
    """

    settings: dict[str, Any]
    inputs: tuple
    bad_settings: dict[str, Any]
    bad_message: str


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder's file names and contents (sorted), to notice changed data."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        digest.update(p.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class Task:
    """A registered job. Subclasses set the class attributes and implement ``default_config``,
    ``build_model``, ``fit`` and ``predictor``; the rest is shared.

    Attributes:
        name: the task's one name: config.json's "task", its command (``lstmkit NAME train``).
        help: one line for ``lstmkit --help``.
        fitted_files: the JSON files (without .json) that hold the fitted state, e.g. ("vocab",).
        unused: config fields this task ignores (kept off its command line).
    """

    name: ClassVar[str]
    help: ClassVar[str]
    fitted_files: ClassVar[tuple[str, ...]] = ()
    unused: ClassVar[frozenset[str]] = frozenset()
    writes_run: ClassVar[bool] = True    # False: the folder is optional (an experiment can just print)

    @property
    def command(self) -> tuple[str, str]:
        """Where its train command sits on the command line."""
        return (self.name, "train")

    def default_out(self, settings: dict[str, Any]) -> str | None:
        """The run folder when none is given (None: one must be given)."""
        return None

    def dry_run_settings(self) -> dict[str, Any]:
        """What ``--dry-run`` sets: a run of two optimizer steps."""
        return {"max_steps": 2, "epochs": 1}

    # ---- what each task writes ---------------------------------------------------------------------

    def default_config(self) -> RunConfig:
        raise NotImplementedError

    def build_model(self, config: RunConfig, fitted: dict[str, Any]) -> nn.Module:
        """The untrained model for ``config`` and the fitted state (the dicts of ``fitted_files``)."""
        raise NotImplementedError

    def fit(self, config: RunConfig, out: Path, resume: bool) -> Any:
        """Prepares the data, trains into ``out`` (continuing its checkpoint when ``resume``), evaluates,
        and returns the predictor."""
        raise NotImplementedError

    def predictor(self, model: nn.Module, config: RunConfig, fitted: dict[str, Any], metrics: dict,
                  path: Path) -> Any:
        """The task's predictor around a trained model (``.predict``, ``.model``, ``.config``, ``.metrics``)."""
        raise NotImplementedError

    def example(self, folder: Path) -> Example:
        """Writes tiny data into ``folder`` and says how to train on it and what to predict."""
        raise NotImplementedError

    def text_view(self, predictor: Any) -> TextView | None:
        """How inspect reads this task's runs; None when it cannot."""
        return None

    def finish(self, config: RunConfig, out: Path) -> Any:
        """A resumed run that had nothing left to train: completes what the fit writes after training
        (a task whose fit was killed between the last checkpoint and its evaluation finishes it here)."""
        return self.load(out)

    # ---- shared ------------------------------------------------------------------------------------

    def sections(self, config: Any) -> dict[str, Any]:
        return config.sections()

    def section_classes(self) -> dict[str, type]:
        return {name: type(part) for name, part in self.sections(self.default_config()).items()}

    def apply_settings(self, config: Any, settings: dict[str, Any]) -> Any:
        """Routes flat settings (seq_len=..., hidden_size=..., lr=...) to the config section that owns them;
        None values leave a field as it is; path fields are stored resolved."""
        parts = self.sections(config)
        for key, value in settings.items():
            owner = next((name for name, part in parts.items() if key in _fields(type(part))), None)
            if owner is None or key in self.unused:
                raise LstmkitError(f"unknown setting {key!r} for task {self.name}")
            meta = {f.name: f.metadata for f in dataclasses.fields(parts[owner])}[key]
            if meta.get("path") and value:
                value = str(Path(value).resolve())
            parts[owner] = override(parts[owner], **{key: value})
        return dataclasses.replace(config, **parts)

    def read_config(self, folder: Path) -> Any:
        """The configuration stored in a run folder made by this task."""
        return self.config_from_file(Path(folder))

    def read_fitted(self, folder: Path) -> dict[str, Any]:
        return {name: read_json(folder / f"{name}.json", f"{name}.json") for name in self.fitted_files}

    def load(self, folder: str | Path) -> Any:
        """Loads a run folder of this task (config.json, the fitted JSON files, model.safetensors); no pickle."""
        folder = Path(folder)
        config = self.read_config(folder)
        fitted = self.read_fitted(folder)
        model = self.build_model(config, fitted)
        load_weights(model, folder / "model.safetensors")
        metrics = read_json(folder / "metrics.json", "metrics.json") if (folder / "metrics.json").is_file() else {}
        return self.predictor(model.eval(), config, fitted, metrics, folder)

    def new_config(self, settings: dict[str, Any], base: str | Path | None = None) -> Any:
        """The configuration of a new run: the task's defaults, or the config.json at ``base`` (another run's,
        backend_used included, so that it trains as that run did), with ``settings`` applied. A model setting
        that differs from the base's clears the recorded backend: the changed model chooses afresh."""
        if base is None:
            return self._validated(self.apply_settings(self.default_config(), settings))
        start = self.config_from_file(Path(base))
        config = self.apply_settings(start, settings)
        model = self.sections(config).get("model")
        if model is not None and getattr(model, "backend_used", "") and model != self.sections(start)["model"]:
            config = dataclasses.replace(config, model=override(model, backend_used=""))
        return self._validated(config)

    @staticmethod
    def _validated(config: Any) -> Any:
        config.validate()
        return config

    def config_from_file(self, path: Path) -> Any:
        """The configuration in a run's config.json, or in the config.json of the run folder ``path``, refused
        when another task made it."""
        folder = path.parent if path.name == "config.json" and path.is_file() else path
        raw = read_run_config(folder, self.name)
        try:
            parts = {name: from_dict(cls, raw[name]) for name, cls in self.section_classes().items()}
        except (KeyError, TypeError) as err:
            raise LstmkitError(f"{folder / 'config.json'} is incomplete or malformed ({err})") from None
        return dataclasses.replace(self.default_config(), **parts)

    def train(self, *, out: str | Path, overwrite: bool = False, resume: bool = False,
              config: str | Path | None = None, **settings: Any) -> Any:
        """Trains a new run into ``out`` (refused if it exists, unless ``overwrite``), or with ``resume``
        continues the run there from its last checkpoint. ``settings`` are fields of the task's config;
        ``config``, a run's config.json (or folder), starts from that run's configuration instead of the
        defaults, recorded backend included."""
        out = Path(out)
        if resume:
            if overwrite:
                raise LstmkitError("overwrite and resume exclude each other: resume continues the run in out")
            if config is not None:
                raise LstmkitError("config and resume exclude each other: resume continues with the saved "
                                   "configuration in out")
            resumed = self.resume_config(out, settings)
            check_source(out, resumed or self.read_config(out))
            if resumed is None:
                return self.finish(self.read_config(out), out)
            return self.fit(resumed, out, True)
        check_new_output(out, overwrite)
        return self.fit(self.new_config(settings, config), out, False)

    def check_unchanged(self, saved: Any, settings: dict[str, Any],
                        changeable: tuple[str, ...] = RESUME_SETTINGS) -> None:
        """Refuses settings that differ from a saved run's, naming each with both values."""
        given = self.apply_settings(saved, {k: v for k, v in settings.items() if k not in changeable})
        differ = [
            (key, getattr(part, key), getattr(self.sections(given)[name], key))
            for name, part in self.sections(saved).items()
            for key in _fields(type(part))
            if getattr(part, key) != getattr(self.sections(given)[name], key)
        ]
        if differ:
            listed = "; ".join(f"{key} was {old!r}, now {new!r}" for key, old, new in differ)
            raise LstmkitError(f"a resumed run keeps its configuration; only {', '.join(changeable)} may "
                               f"change, got: {listed}")

    def resume_config(self, folder: Path, settings: dict[str, Any]) -> Any | None:
        """The configuration to continue the run in ``folder`` with, or None when it has nothing left to do.

        Settings equal to the saved ones are accepted, so that the original command with --resume appended
        works; only the stop criteria (and quiet) may differ; unset stop criteria keep their saved values.
        """
        recover(folder)  # a write killed between its two renames (systems without an atomic exchange)
        if not (folder / "checkpoint" / "trainer.json").is_file():
            if not folder.exists():
                raise LstmkitError(f"nothing to resume: {folder} does not exist (it is written at the first "
                                   "checkpoint; start the run again without resume)")
            self.read_config(folder)  # names the task when the folder holds another task's run
            raise LstmkitError(f"nothing to resume: {folder} has no checkpoint")
        saved = self.read_config(folder)
        self.check_unchanged(saved, settings)
        stops = {k: settings[k] for k in RESUME_SETTINGS if settings.get(k) is not None}
        config = dataclasses.replace(saved, train=override(saved.train, **stops))
        config.validate()
        state = read_json(folder / "checkpoint" / "trainer.json", "checkpoint/trainer.json")["state"]
        left = remaining_work(state, config.train)
        if left is None:
            return config
        _log.info("the run in %s has nothing left to train (%s); give a larger epochs, max_steps or max_time "
                  "to train on", folder, left)
        return None


def remaining_work(state: dict[str, Any], train: Any) -> str | None:
    """None when a run with progress ``state`` (checkpoint/trainer.json) would train on under the stop
    criteria of ``train``; else why not."""
    reason = state["stop_reason"]
    if reason in ("early_stopping", "target_reached"):
        return reason
    if state["epoch"] >= train.epochs:
        return f"{state['epoch']} of {train.epochs} epochs done"
    if train.max_steps is not None and state["step"] >= train.max_steps:
        return f"{state['step']} of max_steps {train.max_steps} done"
    if train.max_time is not None and state["seconds"] >= train.max_time:
        return f"{state['seconds']:.0f} s of max_time {train.max_time:g} s done"
    if reason not in ("", *RESUMABLE, "epochs"):  # "": a checkpoint between epochs of a killed run
        return reason
    return None


def fit_run(
    out: Path,
    config: RunConfig,
    fitted: dict[str, Any],
    model: nn.Module,
    objective: Objective,
    train_data: EpochSource,
    val_data: Any,
    restore: bool,
    extra: dict[str, bytes] | None = None,
) -> FitResult:
    """Trains ``model`` and writes the run folder at every checkpoint: config.json, one JSON file per
    entry of ``fitted`` (vocabularies, scalers...), ``extra`` files and the engine's files. ``restore``
    continues from the folder's checkpoint.

    The backend that trains the model is recorded in ``config.model.backend_used`` (set on ``config`` too, so
    the caller's predictor carries the configuration its folder holds): the one recorded before when the
    configuration has it (a resumed run, or one started from a run's config.json), else what the recurrent
    stacks chose at the first step."""
    static_bytes = {"source.json": json_bytes(source_digests(config)),
                    **{f"{name}.json": json_bytes(value) for name, value in fitted.items()}} | (extra or {})
    model_config = config.sections().get("model")
    recorded = getattr(model_config, "backend_used", "") or None

    def save(files: dict[str, Any]) -> None:
        if model_config is not None and hasattr(model_config, "backend_used"):
            model_config.backend_used = trainer.state.backend
        write_folder(out, {"config.json": json_bytes(config.to_dict()), **static_bytes, **files})

    trainer = Trainer(model, objective, config.train, save=save, backend=recorded)
    if restore:
        trainer.restore(out)
    return trainer.fit(train_data, val_data)


def source_digests(config: Any) -> dict[str, str]:
    """sha256 of every data file or folder the configuration names (its path fields), for source.json."""
    data = config.sections().get("data")
    if data is None:
        return {}
    return {f.name: file_digest(getattr(data, f.name)) for f in dataclasses.fields(data)
            if f.metadata.get("path") and getattr(data, f.name) and Path(getattr(data, f.name)).exists()}


def check_source(folder: Path, config: Any) -> None:
    """Refuses to resume when the data files changed since the run started (source.json)."""
    path = folder / "source.json"
    if not path.is_file():
        return
    saved = read_json(path, "source.json")
    changed = sorted(k for k, v in source_digests(config).items() if saved.get(k) not in (None, v))
    if changed:
        raise LstmkitError(f"the data changed since the run in {folder} started ({', '.join(changed)}); "
                           "cannot resume")
