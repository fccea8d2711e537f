"""The test evaluation of a forecaster beside the naive, seasonal-naive and linear baselines, on the same
test windows, on the scaled and the original scale; the plots; and the spread of metrics across folds.

Shape legend: W windows, T lookback steps, F forecast steps (the horizon), K target columns, I input columns.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import ForecastDataConfig
from ..eval.baselines import LinearBaseline, naive, seasonal_naive
from ..eval.metrics import forecast_metrics, mase_scale
from ..models.forecaster import Forecaster
from .forecast_data import PreparedSeries
from .forecast_plots import forecast_windows, horizon_error, learning_curves

BASELINES = ("naive", "seasonal_naive", "linear")
PLOTTED_WINDOWS = 3


@dataclass
class TestEvaluation:
    metrics: dict[str, Any]      # test, test_original, baselines
    plots: dict[str, bytes]      # PNG file name -> bytes


@torch.no_grad()
def predict_windows(model: Forecaster, prepared: PreparedSeries, part: str, data: ForecastDataConfig) -> np.ndarray:
    """The model's scaled forecasts of every window of ``part``, (W, F, K)."""
    windows = prepared.windows(part, 512, data.lookback, data.horizon)
    return torch.cat([model(b.inputs) for b in windows.in_order()]).numpy()


def evaluate_test(
    model: Forecaster, prepared: PreparedSeries, data: ForecastDataConfig, history: list[dict[str, float]],
) -> TestEvaluation:
    """Scores the model and the baselines on the test windows and draws the plots."""
    k = len(prepared.layout.targets)
    season, train_end = prepared.layout.season, prepared.bounds[0]
    test = prepared.windows("test", 512, data.lookback, data.horizon)
    truth = test.target_windows()                                       # (W, F, K)
    past = test.input_windows()[..., :k]                                # (W, T, K)
    train = prepared.windows("train", 512, data.lookback, data.horizon)
    linear = LinearBaseline().fit(train.input_windows()[..., :k], train.target_windows())
    forecasts = {
        "model": predict_windows(model, prepared, "test", data),
        "naive": naive(past, data.horizon),
        "seasonal_naive": seasonal_naive(past, data.horizon, season),
        "linear": linear.predict(past),
    }                                                                    # each (W, F, K)
    index = list(range(k))
    scale = mase_scale(prepared.values[:train_end, :k], season)        # (K,)
    scale_original = mase_scale(prepared.raw[:train_end, :k], season)  # (K,)
    truth_original = prepared.scaler.inverse(truth, index)

    def score(pred: np.ndarray) -> dict[str, dict[str, float]]:
        return {
            "test": forecast_metrics(truth, pred, scale),
            "test_original": forecast_metrics(truth_original, prepared.scaler.inverse(pred, index), scale_original),
        }

    scores = {name: score(pred) for name, pred in forecasts.items()}
    metrics = {
        **scores["model"],
        "baselines": {name: scores[name] for name in BASELINES},
        "test_windows": len(truth),
        "season": season,
    }
    chosen = sorted({0, len(truth) // 2, len(truth) - 1})[:PLOTTED_WINDOWS]
    column = prepared.layout.targets[-1]                               # OT on ETT: the last target column
    c = k - 1
    plots = {
        "forecast_windows.png": forecast_windows(
            prepared.scaler.inverse(past, index)[..., c], truth_original[..., c],
            {n: prepared.scaler.inverse(p, index)[..., c] for n, p in forecasts.items()}, chosen, column,
        ),
        "horizon_error.png": horizon_error({n: ((p - truth) ** 2).mean(axis=(0, 2)) for n, p in forecasts.items()}),
    }
    if history:
        plots["learning_curves.png"] = learning_curves(history)
    return TestEvaluation(metrics, plots)


def summarise_folds(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation across folds of every metric, for the model and each baseline."""

    def spread(get) -> dict[str, dict[str, float]]:
        out = {}
        for scale in ("test", "test_original"):
            names = folds[0]["test"].keys()
            out[scale] = {
                m: {"mean": float(np.mean([get(f)[scale][m] for f in folds])),
                    "std": float(np.std([get(f)[scale][m] for f in folds]))}
                for m in names
            }
        return out

    return {
        "model": spread(lambda f: f),
        "baselines": {name: spread(lambda f, name=name: f["baselines"][name]) for name in BASELINES},
    }
