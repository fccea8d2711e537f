import numpy as np
import pandas as pd
import pytest

from lstmkit import LstmkitError
from lstmkit.config import ForecastDataConfig
from lstmkit.data.scaling import ColumnScaler
from lstmkit.data.timeseries import (
    TimeIndex,
    choose_columns,
    fill_missing,
    read_series,
    split_bounds,
    window_starts,
)
from lstmkit.tasks.forecast_data import prepare_series


def _csv(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _hourly(tmp_path, rows=60, name="s.csv"):
    times = pd.date_range("2020-01-01", periods=rows, freq="h")
    frame = pd.DataFrame({"date": times, "a": np.arange(rows, dtype=float), "b": np.sin(np.arange(rows))})
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_reads_timestamps_and_infers_the_step(tmp_path):
    table = read_series(_hourly(tmp_path))
    assert table.time_col == "date" and list(table.frame.columns) == ["a", "b"]
    assert table.step == TimeIndex("seconds", 3600) and table.step.season() == 24
    assert table.report["gaps"] == 0 and table.report["rows"] == 60


def test_counts_gaps_and_reads_gzip(tmp_path):
    path = _hourly(tmp_path, name="s.csv.gz")
    frame = pd.read_csv(path).drop(index=[10, 11, 30])
    frame.to_csv(path, index=False)
    assert read_series(path).report["gaps"] == 2


def test_monthly_and_business_day_steps(tmp_path):
    months = _csv(tmp_path, '"Month","Passengers"\n"1949-01",112\n"1949-02",118\n"1949-03",132\n')
    table = read_series(months)
    assert table.step == TimeIndex("months", 1) and table.step.season() == 12
    days = pd.bdate_range("2020-01-01", periods=30)
    pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Close": range(30)}).to_csv(tmp_path / "b.csv", index=False)
    bday = read_series(tmp_path / "b.csv")
    assert bday.step == TimeIndex("bday") and bday.report["gaps"] == 0
    assert bday.step.future(pd.Timestamp("2020-01-03"), 2) == [pd.Timestamp("2020-01-06"), pd.Timestamp("2020-01-07")]


def test_duplicate_timestamps_are_refused(tmp_path):
    path = _csv(tmp_path, "date,a\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n2020-01-01 01:00,3\n")
    with pytest.raises(LstmkitError) as err:
        read_series(path)
    assert str(err.value) == "duplicate timestamp in column 'date': 2020-01-01 01:00 appears again at data row 3"


def test_unparseable_timestamps_are_refused(tmp_path):
    path = _csv(tmp_path, "date,a\n2020-01-01 00:00,1\nnot a time,2\n2020-01-01 02:00,3\n")
    with pytest.raises(LstmkitError) as err:
        read_series(path, time_col="date")
    assert str(err.value) == "unparseable timestamp in column 'date' at data row 2: 'not a time'"


def test_disordered_timestamps_are_refused(tmp_path):
    path = _csv(tmp_path, "date,a\n2020-01-01 00:00,1\n2020-01-01 02:00,2\n2020-01-01 01:00,3\n")
    with pytest.raises(LstmkitError) as err:
        read_series(path)
    assert str(err.value) == (
        "timestamps out of order in column 'date': data row 3 (2020-01-01 01:00) comes before data row 2 "
        "(2020-01-01 02:00); sort the file by time first"
    )


def test_column_errors_are_worded_exactly(tmp_path):
    path = _csv(tmp_path, "date,a,kind,empty\n2020-01-01,1,x,\n2020-01-02,2,y,\n2020-01-03,3,x,\n")
    table = read_series(path)
    with pytest.raises(LstmkitError) as err:
        choose_columns(table, "price", "", "onehot")
    assert str(err.value) == f"target column(s) not in {path}: price; its columns are date, a, kind, empty"
    with pytest.raises(LstmkitError) as err:
        choose_columns(table, "kind", "", "onehot")
    assert str(err.value) == "target column 'kind' is not numeric (first value 'x'); targets must be numbers"
    with pytest.raises(LstmkitError) as err:
        choose_columns(table, "a", "empty", "onehot")
    assert str(err.value) == "column(s) with no values at all: empty"
    with pytest.raises(LstmkitError) as err:
        choose_columns(table, "a", "kind", "refuse")
    assert str(err.value) == (
        "non-numeric input column(s): kind; drop them from --features or one-hot encode them (categorical='onehot')"
    )
    assert choose_columns(table, "a", "kind", "onehot") == (["a"], ["a", "kind"])


def test_features_all_takes_numeric_columns_only(tmp_path):
    path = _csv(tmp_path, "date,a,kind,b\n2020-01-01,1,x,4\n2020-01-02,2,y,5\n")
    assert choose_columns(read_series(path), "b", "all", "onehot") == (["b"], ["b", "a"])


def test_missing_values_are_filled_and_counted():
    frame = pd.DataFrame({"a": [np.nan, 1.0, np.nan, 3.0], "b": [1.0, 2.0, 3.0, 4.0]})
    filled, counts = fill_missing(frame, "ffill")
    assert counts == {"a": 2} and filled["a"].tolist() == [1.0, 1.0, 1.0, 3.0]
    assert fill_missing(frame, "interpolate")[0]["a"].tolist() == [1.0, 1.0, 2.0, 3.0]
    assert fill_missing(frame, "zero")[0]["a"].tolist() == [0.0, 1.0, 0.0, 3.0]
    with pytest.raises(LstmkitError) as err:
        fill_missing(frame, "none")
    assert str(err.value) == "missing values in a (2); choose a fill method (ffill, interpolate, zero)"


def test_ett_split_bounds_hourly_and_quarter_hourly():
    assert split_bounds(17420, TimeIndex("seconds", 3600), "ett", 0.1, 0.2, 720, 96) == (8640, 11520, 14400)
    assert split_bounds(69680, TimeIndex("seconds", 900), "ett", 0.1, 0.2, 720, 96) == (34560, 46080, 57600)
    with pytest.raises(LstmkitError) as err:
        split_bounds(10000, TimeIndex("seconds", 3600), "ett", 0.1, 0.2, 96, 96)
    assert str(err.value) == "split 'ett' needs at least 14400 rows, the file has 10000"


def test_too_few_rows_are_refused():
    with pytest.raises(LstmkitError) as err:
        split_bounds(40, TimeIndex("none"), "ratio", 0.1, 0.2, 24, 12)
    assert str(err.value) == (
        "too few rows: the split leaves 28 training, 4 validation and 8 test rows; training needs lookback + "
        "horizon = 36 and validation and test need horizon = 12 each; use a longer file or a smaller --lookback / "
        "--horizon"
    )


def test_test_windows_start_lookback_rows_early_and_stay_in_their_part():
    starts = window_starts((8640, 11520, 14400), 336, 96)
    assert starts["train"][-1] + 336 + 96 == 8640
    assert starts["val"][0] + 336 == 8640 and starts["val"][-1] + 336 + 96 == 11520
    assert starts["test"][0] + 336 == 11520 and starts["test"][-1] + 336 + 96 == 14400
    assert len(starts["test"]) == 2880 - 96 + 1


def test_scalers_never_see_validation_or_test_rows(tmp_path):
    """Changing every validation and test value changes neither the scaler nor any training window."""
    config = ForecastDataConfig(target="a,b", lookback=8, horizon=4, val_fraction=0.2, test_fraction=0.2, season=4)
    clean = prepare_series(config, read_series(_hourly(tmp_path, rows=100)))
    train_end = clean.bounds[0]
    assert train_end == 60
    frame = pd.read_csv(tmp_path / "s.csv")
    frame.loc[train_end:, ["a", "b"]] = 1e6 * np.random.default_rng(0).standard_normal((100 - train_end, 2))
    frame.to_csv(tmp_path / "poisoned.csv", index=False)
    poisoned = prepare_series(config, read_series(tmp_path / "poisoned.csv"))
    np.testing.assert_array_equal(poisoned.scaler.shift_, clean.scaler.shift_)
    np.testing.assert_array_equal(poisoned.scaler.scale_, clean.scaler.scale_)
    raw = clean.raw[:train_end]
    np.testing.assert_allclose(clean.scaler.shift_, raw.mean(axis=0))
    np.testing.assert_allclose(clean.scaler.scale_, raw.std(axis=0))
    a, b = clean.windows("train", 16, 8, 4), poisoned.windows("train", 16, 8, 4)
    np.testing.assert_array_equal(a.input_windows(), b.input_windows())
    np.testing.assert_array_equal(a.target_windows(), b.target_windows())


def test_scaler_round_trips_through_json():
    rows = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    scaler = ColumnScaler.fit("minmax", ["x", "y"], rows)
    again = ColumnScaler.from_json(scaler.to_json())
    np.testing.assert_allclose(again.transform(rows), [[0, 0], [0.5, 0], [1, 0]])
    np.testing.assert_allclose(again.inverse(again.transform(rows)), rows)


def test_categorical_inputs_are_one_hot_encoded_from_training_rows(tmp_path):
    kinds = ["x", "y"] * 25 + ["z"] * 10
    frame = pd.DataFrame({"t": range(60), "v": np.arange(60.0), "kind": kinds})
    frame.to_csv(tmp_path / "c.csv", index=False)
    config = ForecastDataConfig(target="v", features="kind", lookback=4, horizon=2, time_col=None)
    prepared = prepare_series(config, read_series(tmp_path / "c.csv"))
    assert prepared.layout.encoded == ["v", "kind=x", "kind=y"]  # z only appears after the training rows
    assert prepared.report["one_hot"] == {"kind": 2} and prepared.report["ignored_columns"] == ["t"]
