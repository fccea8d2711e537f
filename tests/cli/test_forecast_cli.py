"""`lstmkit forecast train|backtest|predict` end to end on small real data, and their input errors."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from lstmkit.cli.main import main

pytestmark = pytest.mark.data

TINY = ["--hidden-size", "8", "--embed-dim", "8", "--batch-size", "32", "--quiet"]


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ett_slice(tmp_path_factory) -> Path:
    """The first 1,200 hours of ETTh1, all seven columns."""
    source = Path(os.environ["LSTMKIT_DATA_DIR"]) / "ett" / "ETTh1.csv.gz"
    path = tmp_path_factory.mktemp("data") / "etth1-head.csv"
    pd.read_csv(source, nrows=1200).to_csv(path, index=False)
    return path


def test_train_then_predict_multivariate(ett_slice, tmp_path, capsys):
    out = tmp_path / "run"
    code, printed, _ = _run(
        capsys, "forecast", "train", "--csv", ett_slice, "--target", "all", "--features", "all", "--lookback", 96,
        "--horizon", 24, "--patch-len", 24, "--channel-independent", "--revin", "--max-steps", 3, "--seed", 1,
        "--out", out, *TINY,
    )
    assert code == 0, printed
    assert printed.startswith(f"saved {out} (0 epochs, 3 steps,")
    assert [line.split()[0] for line in printed.splitlines()[1:]] == ["lstm", "naive", "seasonal_naive", "linear"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["targets"] == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert metrics["season"] == 24 and set(metrics["test"]) == {"mse", "mae", "rmse", "r2", "smape", "mase"}

    code, printed, _ = _run(capsys, "forecast", "predict", out, "--csv", ett_slice)
    assert code == 0
    lines = printed.splitlines()
    assert lines[0] == "date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT" and len(lines) == 25
    assert lines[1].startswith("2016-08-20 00:00:00,")  # the hour after the last row, 2016-08-19 23:00

    target = tmp_path / "next.csv"
    code, printed, _ = _run(capsys, "forecast", "predict", out, "--csv", ett_slice, "--out", target)
    assert code == 0 and printed == f"wrote 24 forecast rows to {target}\n"
    assert target.read_text().splitlines() == lines


def test_backtest_univariate(ett_slice, tmp_path, capsys):
    code, printed, _ = _run(
        capsys, "forecast", "backtest", "--csv", ett_slice, "--target", "OT", "--lookback", 48, "--horizon", 24,
        "--folds", 2, "--max-steps", 2, "--out", tmp_path / "bt", *TINY,
    )
    assert code == 0
    assert printed.splitlines()[0].startswith(f"saved {tmp_path / 'bt'}: 2 folds")
    assert len(json.loads((tmp_path / "bt" / "backtest.json").read_text())["folds"]) == 2


def test_input_errors_exit_2_and_write_nothing(ett_slice, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = _run(capsys, "forecast", "train", "--csv", ett_slice, "--target", "Oil", "--out", out, *TINY)
    assert code == 2
    assert err == (
        f"error: target column(s) not in {ett_slice}: Oil; "
        "its columns are date, HUFL, HULL, MUFL, MULL, LUFL, LULL, OT\n"
    )
    code, _, err = _run(capsys, "forecast", "train", "--csv", ett_slice, "--target", "OT", "--split", "ett",
                        "--out", out, *TINY)
    assert code == 2 and err == "error: split 'ett' needs at least 14400 rows, the file has 1200\n"
    code, _, err = _run(capsys, "forecast", "train", "--csv", ett_slice, "--out", out, *TINY)
    assert code == 2 and err == "error: give the column(s) to forecast with target=COL[,COL...] or target='all'\n"
    code, _, err = _run(capsys, "forecast", "predict", tmp_path / "nowhere", "--csv", ett_slice)
    assert code == 2 and err == f"error: run folder not found: {tmp_path / 'nowhere'}\n"
    assert not out.exists()


def test_backtest_into_an_existing_folder_offers_only_overwrite(tmp_path, capsys):
    """backtest has no --resume, so its refusal does not suggest one."""
    out = tmp_path / "bt"
    out.mkdir()
    code = main(["forecast", "backtest", "--csv", str(tmp_path / "any.csv"), "--target", "y", "--out", str(out)])
    assert (code, capsys.readouterr().err) == (
        2, f"error: output folder {out} already exists; pass --overwrite to replace it\n"
    )
