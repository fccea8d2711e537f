import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmkit import LstmkitError, forecast

pytestmark = pytest.mark.data

TINY = dict(lookback=24, horizon=12, hidden_size=8, embed_dim=8, batch_size=16, quiet=True)
SCORES = {"mse", "mae", "rmse", "r2", "smape", "mase"}


@pytest.fixture(scope="module")
def airline() -> Path:
    path = Path(os.environ["LSTMKIT_DATA_DIR"]) / "classic_series" / "airline-passengers.csv"
    assert path.is_file(), f"LSTMKIT_DATA_DIR is set but {path} is missing"
    return path


@pytest.fixture(scope="module")
def airline_run(airline, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "airline"
    return forecast.train(airline, target="Passengers", out=out, epochs=2, revin=True, **TINY)


def test_metrics_json_holds_the_contract(airline_run):
    metrics = json.loads((airline_run.path / "metrics.json").read_text())
    assert set(metrics["test"]) == SCORES and set(metrics["test_original"]) == SCORES
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive", "linear"}
    for scores in metrics["baselines"].values():
        assert set(scores) == {"test", "test_original"} and set(scores["test_original"]) == SCORES
    assert metrics["season"] == 12 and metrics["test_windows"] == 29 - 12 + 1
    assert metrics["data"]["rows_train_val_test"] == [101, 14, 29]
    for name in ("forecast_windows.png", "learning_curves.png", "horizon_error.png", "series.json", "scaler.json"):
        assert (airline_run.path / name).is_file(), name
    assert not [p for p in airline_run.path.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_baselines_are_scored_on_the_test_windows(airline, airline_run):
    """The naive baseline's original-scale MAE, recomputed by hand from the file."""
    y = pd.read_csv(airline)["Passengers"].to_numpy(float)
    errors = [np.abs(y[t : t + 12] - y[t - 1]).mean() for t in range(115, 144 - 12 + 1)]
    naive = airline_run.metrics["baselines"]["naive"]["test_original"]
    assert naive["mae"] == pytest.approx(np.mean(errors))
    seasonal = [np.abs(y[t : t + 12] - y[t - 12 : t]).mean() for t in range(115, 133)]
    seasonal_mae = airline_run.metrics["baselines"]["seasonal_naive"]["test_original"]["mae"]
    assert seasonal_mae == pytest.approx(np.mean(seasonal))


def test_load_predicts_the_next_steps_with_timestamps(airline, airline_run):
    loaded = forecast.load(airline_run.path)
    frame = loaded.predict(airline)
    assert list(frame.columns) == ["Month", "Passengers"] and len(frame) == 12
    assert frame["Month"].iloc[0] == pd.Timestamp("1961-01-01")
    assert frame["Month"].iloc[-1] == pd.Timestamp("1961-12-01")
    np.testing.assert_allclose(frame["Passengers"], airline_run.predict(airline)["Passengers"], rtol=1e-6)


def test_predict_refuses_a_csv_with_other_columns(airline_run, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("Month,Riders,Extra\n1961-01,1,2\n")
    with pytest.raises(LstmkitError) as err:
        airline_run.predict(path)
    assert str(err.value) == (
        "the CSV's columns differ from the training CSV's (missing Passengers; unexpected Riders, Extra); "
        "expected Month, Passengers"
    )


def test_predict_needs_a_full_lookback_and_an_existing_file(airline_run, airline, tmp_path):
    short = tmp_path / "short.csv"
    pd.read_csv(airline).tail(10).to_csv(short, index=False)
    with pytest.raises(LstmkitError) as err:
        airline_run.predict(short)
    assert str(err.value) == "too few rows: prediction needs the last lookback = 24 rows, the CSV has 10"
    with pytest.raises(LstmkitError) as err:
        airline_run.predict(tmp_path / "absent.csv")
    assert str(err.value) == f"CSV file not found: {tmp_path / 'absent.csv'}"


def test_bad_input_writes_nothing(airline, tmp_path):
    for settings, message in [
        ({"target": "Price"}, f"target column(s) not in {airline.resolve()}: Price; its columns are Month, Passengers"),
        ({"target": "Passengers", "lookback": 100}, "too few rows: the split leaves 101 training, 14 validation and "
         "29 test rows; training needs lookback + horizon = 112 and validation and test need horizon = 12 each; "
         "use a longer file or a smaller --lookback / --horizon"),
        ({"target": "Passengers", "lookback": 6}, "season 12 is longer than the lookback 6; the seasonal-naive "
         "baseline needs lookback >= season (give a longer --lookback or a shorter --season)"),
        ({"target": "Passengers", "patch_len": 5}, "lookback must be a multiple of patch_len, got lookback 24 and "
         "patch_len 5"),
        ({"target": "Passengers", "split": "ett"}, "split 'ett' needs hourly or 15-minute timestamps (the ETT "
         "benchmark's layout)"),
    ]:
        with pytest.raises(LstmkitError) as err:
            forecast.train(airline, out=tmp_path / "run", **{**TINY, **settings})
        assert str(err.value) == message
        assert list(tmp_path.iterdir()) == []


def test_backtest_reports_the_spread_across_folds(airline, tmp_path):
    report = forecast.backtest(airline, target="Passengers", out=tmp_path / "bt", folds=2, test_fraction=0.3,
                               max_steps=2, **TINY)
    assert [f["fold"] for f in report["folds"]] == [1, 2]
    assert report["folds"][0]["rows_train_val_test"] == [87, 14, 21]
    assert report["folds"][1]["rows_train_val_test"] == [108, 14, 22]
    summary = report["summary"]["baselines"]["naive"]["test_original"]["mae"]
    values = [f["baselines"]["naive"]["test_original"]["mae"] for f in report["folds"]]
    assert summary["mean"] == pytest.approx(np.mean(values)) and summary["std"] == pytest.approx(np.std(values))
    assert json.loads((tmp_path / "bt" / "backtest.json").read_text())["summary"] == report["summary"]
    assert (tmp_path / "bt" / "fold-2" / "metrics.json").is_file()
