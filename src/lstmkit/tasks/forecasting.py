"""Time-series forecasting: wiring of a CSV series (forecast_data.py), a Forecaster, the engine, the test
evaluation beside baselines (forecast_eval.py), plots, rolling-origin backtests and prediction from a saved run.

Run folder additions: series.json (column layout), scaler.json (training-row statistics), metrics.json with
``test``, ``test_original`` and ``baselines``, and forecast_windows.png, learning_curves.png, horizon_error.png.
"""

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..config import ForecastDataConfig, ModelConfig, RunConfig, TrainConfig
from ..data import Batch, locate
from ..data.scaling import ColumnScaler
from ..data.timeseries import SeriesTable, check_bounds, read_series
from ..errors import LstmkitError
from ..models.forecaster import Forecaster, build_forecaster
from ..train import check_new_output, write_folder
from ..train.runs import add_to_folder, json_bytes, read_json
from ..utils.seed import set_seed
from .base import Example, Task, fit_run
from .forecast_data import SeriesLayout, check_columns, prepare_series, time_index
from .forecast_eval import evaluate_test, summarise_folds

TASK = "forecast"


def default_config() -> RunConfig:
    """The defaults: a 1 x 64 LSTM reading 48 rows and forecasting 12 at once, for small univariate series."""
    return RunConfig(
        task=TASK,
        data=ForecastDataConfig(lookback=48, horizon=12),
        model=ModelConfig(embed_dim=64, hidden_size=64, num_layers=1, dropout=0.0),
        train=TrainConfig(epochs=100, batch_size=32, lr=1e-3, patience=10, lr_schedule="constant"),
    )


class ForecastObjective:
    """Mean squared error of the scaled forecasts (B, F, K), F the horizon; validation reports MSE and MAE."""

    def outputs(self, model: nn.Module, batch: Batch) -> Tensor:
        return model(batch.inputs)                                       # (B, F, K)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return torch.mean((outputs - batch.targets) ** 2)

    def items(self, batch: Batch) -> int:
        return batch.targets.numel()

    def evaluate(self, model: nn.Module, data: Any, device: torch.device) -> dict[str, float]:
        sq, ab, n = 0.0, 0.0, 0
        for batch in data.in_order():
            batch = batch.to(device)
            err = model(batch.inputs) - batch.targets                    # (B, F, K)
            sq, ab, n = sq + float((err**2).sum()), ab + float(err.abs().sum()), n + err.numel()
        return {"loss": sq / n, "mae": ab / n}


def source_path(data: ForecastDataConfig) -> Path:
    """The CSV to read: the csv path, or a registered dataset as NAME or NAME/FILE (``lstmkit data list``)."""
    if data.data:
        name, _, file = data.data.partition("/")
        return locate(name, file or None)
    return Path(data.csv)


def _evaluate(out: Path, config: RunConfig, prepared: Any, model: nn.Module, fit_metrics: dict,
              history: list) -> "SeriesForecaster":
    """Scores the test windows beside the baselines and adds metrics.json's test figures and the plots."""
    model = model.cpu().eval()
    evaluation = evaluate_test(model, prepared, config.data, history)
    metrics = {**fit_metrics, **evaluation.metrics, "data": prepared.report}
    add_to_folder(out, {"metrics.json": json_bytes(metrics), **evaluation.plots})
    return SeriesForecaster(model, prepared.layout, prepared.scaler, config, metrics, out)


def _fit(config: RunConfig, table: SeriesTable, out: Path, bounds: tuple[int, int, int] | None,
         resume: bool = False) -> "SeriesForecaster":
    """Prepares the series, trains into ``out`` (continuing it with ``resume``), evaluates on the test
    windows and adds metrics and plots."""
    prepared = prepare_series(config.data, table, bounds)
    if not resume:
        set_seed(config.train.seed, config.train.deterministic)
    model = build_forecaster(config.model, config.data, len(prepared.layout.encoded), len(prepared.layout.targets))
    d, batch = config.data, config.train.batch_size
    train = prepared.windows("train", batch, d.lookback, d.horizon)
    val = prepared.windows("val", max(batch, 256), d.lookback, d.horizon)
    fitted = {"series": prepared.layout.to_json(), "scaler": prepared.scaler.to_json()}
    result = fit_run(out, config, fitted, model, ForecastObjective(), train, val, restore=resume)
    return _evaluate(out, config, prepared, model, result.metrics, result.history)


class ForecastingTask(Task):
    """``forecast``: a forecaster of the next horizon rows of a CSV series, tested beside baselines."""

    name = TASK
    help = "time-series forecasting from a CSV"
    fitted_files = ("series", "scaler")
    unused = frozenset({"pooling"})

    def default_config(self) -> RunConfig:
        return default_config()

    def build_model(self, config: RunConfig, fitted: dict[str, Any]) -> nn.Module:
        layout = SeriesLayout.from_json(fitted["series"])
        return build_forecaster(config.model, config.data, len(layout.encoded), len(layout.targets))

    def fit(self, config: RunConfig, out: Path, resume: bool) -> "SeriesForecaster":
        table = read_series(source_path(config.data), config.data.time_col)
        return _fit(config, table, out, None, resume)

    def finish(self, config: RunConfig, out: Path) -> "SeriesForecaster":
        run = self.load(out)
        if "test" in run.metrics:
            return run
        prepared = prepare_series(config.data, read_series(source_path(config.data), config.data.time_col), None)
        history = read_json(out / "history.json", "history.json")
        return _evaluate(out, config, prepared, run.model, run.metrics, history)

    def predictor(self, model: nn.Module, config: RunConfig, fitted: dict[str, Any], metrics: dict,
                  path: Path) -> "SeriesForecaster":
        layout = SeriesLayout.from_json(fitted["series"])
        return SeriesForecaster(model, layout, ColumnScaler.from_json(fitted["scaler"]), config, metrics, path)

    def default_out(self, settings: dict[str, Any]) -> str:
        source = settings.get("csv") or settings.get("data") or "series"
        return f"runs/forecast-{Path(source).name.split('.')[0]}"

    def example(self, folder: Path) -> Example:
        months = pd.date_range("2000-01-01", periods=96, freq="MS")
        k = np.arange(96)
        values = 100 + k + 20 * np.sin(2 * np.pi * k / 12)
        path = Path(folder) / "tiny-series.csv"
        pd.DataFrame({"month": months.strftime("%Y-%m"), "y": values.round(2)}).to_csv(path, index=False)
        tiny = {"csv": str(path), "target": "y", "lookback": 12, "horizon": 3, "hidden_size": 8, "batch_size": 8,
                "epochs": 3, "max_steps": 12, "quiet": True}
        return Example(tiny, (str(path),), {**tiny, "lookback": 0}, "lookback must be a positive integer")


FORECAST = ForecastingTask()


def train(
    csv: str | Path | None = None,
    *,
    out: str | Path,
    data: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    **settings: Any,
) -> "SeriesForecaster":
    """Trains a forecaster on a CSV series, evaluates it on the test split beside baselines, writes its run.

    Args:
        csv: the CSV file (``.gz`` too); or
        data: a registered dataset, "NAME" or "NAME/FILE" (e.g. "ett/ETTh1.csv").
        out: the run folder to create (refused if it exists, unless ``overwrite``).
        resume: continue the run in ``out`` from its checkpoint (see ``lstmkit.textgen.train``).
        **settings: any field of ForecastDataConfig (target, features, lookback, horizon, split, patch_len,
            channel_independent, revin, ...), ModelConfig or TrainConfig; ``target`` is required.

    Returns:
        A SeriesForecaster with the trained model; its ``metrics`` hold ``test``, ``test_original`` and
        ``baselines``.
    """
    sources = {"csv": str(csv) if csv is not None else None, "data": data}
    return FORECAST.train(out=out, overwrite=overwrite, resume=resume, **sources, **settings)


def backtest(
    csv: str | Path | None = None,
    *,
    out: str | Path,
    folds: int = 3,
    data: str | None = None,
    overwrite: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Rolling-origin backtest: the last ``test_fraction`` of the rows is cut into ``folds`` blocks; fold j
    trains a fresh model on every row before block j (its last ``val_fraction`` of the file for validation,
    scaler refitted), and tests on block j. Writes ``backtest.json`` (each fold, and the mean and std of every
    metric across folds, for the model and the baselines) and each fold's metrics.json into ``out``; returns
    backtest.json's contents and the folder's ``path``."""
    out = Path(out)
    check_new_output(out, overwrite, resumable=False)  # a backtest has no --resume
    if folds < 2:
        raise LstmkitError(f"folds must be at least 2, got {folds}")
    config = FORECAST.new_config({"csv": str(csv) if csv is not None else None, "data": data, **settings})
    table = read_series(source_path(config.data), config.data.time_col)
    d, rows = config.data, len(table.frame)
    test_rows, val_rows = round(rows * d.test_fraction), round(rows * d.val_fraction)
    block = test_rows // folds
    if block < d.horizon:
        raise LstmkitError(
            f"too few test rows for {folds} folds: {test_rows} test rows give blocks of {block}, each needs "
            f"horizon = {d.horizon}; use fewer folds, a larger test_fraction or a shorter horizon"
        )
    results, files = [], {}
    with tempfile.TemporaryDirectory(prefix="lstmkit-backtest-") as tmp:
        for j in range(folds):
            origin = rows - test_rows + j * block
            end = rows if j == folds - 1 else origin + block
            bounds = check_bounds((origin - val_rows, origin, end), d.lookback, d.horizon)
            run = _fit(config, table, Path(tmp) / f"fold-{j + 1}", bounds)
            results.append({"fold": j + 1, "rows_train_val_test": run.metrics["data"]["rows_train_val_test"],
                            **{k: run.metrics[k] for k in ("test", "test_original", "baselines", "run")}})
            files[f"fold-{j + 1}/metrics.json"] = json_bytes(run.metrics)
    report = {"folds": results, "summary": summarise_folds(results)}
    write_folder(out, {"config.json": json_bytes(config.to_dict()), "backtest.json": json_bytes(report), **files})
    return {**report, "path": str(out)}


class SeriesForecaster:
    """A trained forecaster with its column layout and scaler. Build with ``train(...)`` or ``load(folder)``.

    Example:
        >>> model = load("runs/airline")
        >>> model.predict("airline-passengers.csv")   # the next F rows (the horizon) after the end of the file
    """

    def __init__(
        self, model: Forecaster, layout: SeriesLayout, scaler: ColumnScaler, config: RunConfig, metrics: dict,
        path: Path,
    ) -> None:
        self.model, self.layout, self.scaler = model, layout, scaler
        self.config, self.metrics, self.path = config, metrics, path

    @torch.no_grad()
    def predict(self, csv: str | Path) -> pd.DataFrame:
        """The next ``horizon`` rows after the end of ``csv`` (same columns as the training CSV), in original
        units, with their timestamps (or row numbers when the series has no time column)."""
        table = read_series(csv, self.layout.time_col)
        check_columns(self.layout, table)
        lookback = self.config.data.lookback
        if len(table.frame) < lookback:
            raise LstmkitError(
                f"too few rows: prediction needs the last lookback = {lookback} rows, the CSV has {len(table.frame)}"
            )
        raw, _ = self.layout.encode(table)                                # (T, I)
        x = torch.as_tensor(self.scaler.transform(raw[-lookback:]))[None]  # (1, T, I)
        k = len(self.layout.targets)
        y = self.scaler.inverse(self.model.eval()(x)[0].numpy(), list(range(k)))  # (F, K)
        last = table.times.iloc[-1] if table.times is not None else len(table.frame) - 1
        when = time_index(self.layout).future(last, self.config.data.horizon)
        frame = pd.DataFrame(y, columns=self.layout.targets)
        frame.insert(0, self.layout.time_col or "row", when)
        return frame


def load(folder: str | Path) -> SeriesForecaster:
    """Loads a forecasting run folder (config.json, series.json, scaler.json, model.safetensors); no pickle."""
    return FORECAST.load(folder)
