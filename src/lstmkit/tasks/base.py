"""What every task pipeline shares: routing flat settings to config sections, loading a run's config,
the rules for resuming, and fitting a model into a run folder."""

import dataclasses
import logging
from pathlib import Path
from typing import Any

from torch import nn

from ..config import ModelConfig, RunConfig, TrainConfig, from_dict, override
from ..errors import LstmkitError
from ..train import FitResult, Trainer, read_run_config, write_folder
from ..train.engine import RESUMABLE, EpochSource, Objective
from ..train.runs import json_bytes, read_json

_log = logging.getLogger(__name__)

RESUME_SETTINGS = ("epochs", "max_steps", "max_time", "quiet")


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def apply_settings(config: RunConfig, settings: dict[str, Any]) -> RunConfig:
    """Routes flat settings (seq_len=..., hidden_size=..., lr=...) to the config section that owns them;
    None values leave a field as it is."""
    parts = {"data": config.data, "model": config.model, "train": config.train}
    for key, value in settings.items():
        owner = next((name for name, part in parts.items() if key in _fields(type(part))), None)
        if owner is None:
            raise LstmkitError(f"unknown setting {key!r} for {config.task}")
        parts[owner] = override(parts[owner], **{key: value})
    return dataclasses.replace(config, **parts)


def load_config(folder: Path, task: str, data_cls: type) -> RunConfig:
    """The RunConfig stored in a run folder made by ``task``."""
    raw = read_run_config(folder, task)
    try:
        return RunConfig(
            task=task,
            data=from_dict(data_cls, raw["data"]),
            model=from_dict(ModelConfig, raw["model"]),
            train=from_dict(TrainConfig, raw["train"]),
        )
    except (KeyError, TypeError) as err:
        raise LstmkitError(f"{folder}/config.json is incomplete or malformed ({err})") from None


def resume_config(folder: Path, config: RunConfig, settings: dict[str, Any]) -> RunConfig | None:
    """The configuration to continue a run with, or None when the run has nothing left to do.

    Only the stop criteria (and quiet) may change; max_steps and max_time apply afresh (unset means no limit).
    """
    extra = sorted(set(settings) - set(RESUME_SETTINGS))
    if extra:
        raise LstmkitError(
            f"a resumed run keeps its configuration; only {', '.join(RESUME_SETTINGS)} may change, "
            f"got {', '.join(extra)}"
        )
    config = dataclasses.replace(
        config,
        train=dataclasses.replace(
            config.train,
            max_steps=settings.get("max_steps"),
            max_time=settings.get("max_time"),
            epochs=settings.get("epochs") or config.train.epochs,
            quiet=settings.get("quiet", config.train.quiet),
        ),
    )
    config.validate()
    state = read_json(folder / "checkpoint" / "trainer.json", "checkpoint/trainer.json")["state"]
    reason = state["stop_reason"]
    if reason not in RESUMABLE and (reason != "epochs" or state["epoch"] >= config.train.epochs):
        _log.info("run in %s already finished (%s); nothing to resume", folder, reason)
        return None
    return config


def fit_run(
    out: Path,
    config: RunConfig,
    fitted: dict[str, Any],
    model: nn.Module,
    objective: Objective,
    train_data: EpochSource,
    val_data: Any,
    restore: bool,
) -> FitResult:
    """Trains ``model`` and writes the run folder at every checkpoint: config.json, one JSON file per
    entry of ``fitted`` (vocabularies, scalers...) and the engine's files. ``restore`` continues from the
    folder's checkpoint."""
    static = {"config.json": config.to_dict(), **{f"{name}.json": value for name, value in fitted.items()}}
    static_bytes = {name: json_bytes(value) for name, value in static.items()}
    trainer = Trainer(model, objective, config.train, save=lambda files: write_folder(out, {**static_bytes, **files}))
    if restore:
        trainer.restore(out)
    return trainer.fit(train_data, val_data)
