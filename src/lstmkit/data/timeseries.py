"""Time series from a CSV, prepared the safe way: timestamps parsed and checked (duplicates, disorder, gaps),
columns chosen (targets numeric, categorical inputs one-hot encoded or refused), missing values filled by a
stated method and counted, and a chronological train / validation / test split.

Scaling lives in scaling.py and windowing in windows.py; this file decides which rows are which.

Splits. ``ratio``: the last ``test_fraction`` of the rows are the test part, the ``val_fraction`` before them
the validation part, the rest training. ``ett``: the 12/4/4-month convention of the ETT benchmark (Informer,
Autoformer, PatchTST, DLinear loaders): ETTh1 rows [0, 8640) / [8640, 11520) / [11520, 14400), four times
that for 15-minute data, later rows unused. As in those loaders, a validation or test window may take its
lookback from the rows before its part, so the first test target is the first test row; targets never leave
their part, and the scaler sees training rows only.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LstmkitError

ETT_HOURS = (8640, 11520, 14400)  # 12, 16, 20 months of 30 days, in hours


@dataclass
class TimeIndex:
    """The step between rows, to count gaps and to stamp forecasts: kind "seconds" (n seconds),
    "bday" (business days), "months" (n months), or "none" (no time column: rows are numbered)."""

    kind: str
    n: int = 1

    def season(self) -> int:
        """A default seasonal period in rows: a day of hours, a week of days, a year of months, ..."""
        if self.kind == "bday":
            return 5
        if self.kind == "months":
            return 12 if self.n == 1 else max(1, 12 // self.n)
        if self.kind == "seconds":
            if self.n < 86400 and 86400 % self.n == 0:
                return 86400 // self.n                       # a day: 24 hours, 96 quarter hours
            return {86400: 7, 604800: 52}.get(self.n, 1)     # a week of days, a year of weeks
        return 1

    def future(self, last: pd.Timestamp | int, steps: int) -> list[Any]:
        """The ``steps`` times after ``last``."""
        if self.kind == "none":
            return [int(last) + k for k in range(1, steps + 1)]
        offset = {
            "seconds": pd.Timedelta(seconds=self.n),
            "bday": pd.offsets.BDay(1),
            "months": pd.DateOffset(months=self.n),
        }[self.kind]
        return [last + offset * k for k in range(1, steps + 1)]


def infer_step(times: pd.Series) -> TimeIndex:
    """The typical step of increasing timestamps (business days when a daily series skips every weekend)."""
    diffs = times.diff().dropna()
    if diffs.empty:
        return TimeIndex("seconds", 1)
    median = diffs.median()
    days = median / pd.Timedelta(days=1)
    if 27 <= days <= 32 or 360 <= days <= 367 or 88 <= days <= 93:
        return TimeIndex("months", round(days / 30.44))
    if days == 1 and len(times) >= 10 and (times.dt.day_of_week < 5).all():
        return TimeIndex("bday")
    return TimeIndex("seconds", max(1, int(median.total_seconds())))


def count_gaps(times: pd.Series, step: TimeIndex) -> int:
    """How many consecutive rows lie more than one step apart."""
    if step.kind == "none" or len(times) < 2:
        return 0
    if step.kind == "bday":
        d = times.to_numpy().astype("datetime64[D]")
        return int((np.busday_count(d[:-1], d[1:]) > 1).sum())
    if step.kind == "months":
        months = times.dt.year * 12 + times.dt.month
        return int((months.diff().dropna() > step.n).sum())
    return int((times.diff().dropna() > pd.Timedelta(seconds=1.5 * step.n)).sum())


@dataclass
class SeriesTable:
    """A CSV read and checked. ``times`` is None without a time column; ``frame`` holds the other columns."""

    path: str
    columns: list[str]               # every column of the file, in order
    time_col: str | None
    times: pd.Series | None          # (T,) datetime64, strictly increasing
    frame: pd.DataFrame              # (T, columns other than time_col)
    step: TimeIndex
    report: dict[str, Any] = field(default_factory=dict)


def _looks_like_time(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column):
        return False
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def read_series(path: str | Path, time_col: str | None = None) -> SeriesTable:
    """Reads a CSV (``.gz`` too) and checks its timestamps.

    Args:
        path: the CSV file; the first row names the columns.
        time_col: the timestamp column; None takes the first column when every value parses as a time.

    Raises:
        LstmkitError: unreadable file, missing or unparseable time column, duplicate or out-of-order times.
    """
    path = Path(path)
    if not path.is_file():
        raise LstmkitError(f"CSV file not found: {path}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise LstmkitError(f"cannot read {path} as CSV ({str(err).strip()})") from None
    columns = [str(c) for c in df.columns]
    df.columns = columns
    if time_col is None and columns and _looks_like_time(df[columns[0]]):
        time_col = columns[0]
    times, step = None, TimeIndex("none")
    if time_col is not None:
        if time_col not in columns:
            raise LstmkitError(f"time column {time_col!r} not in {path}; its columns are {', '.join(columns)}")
        raw = df[time_col]
        times = pd.to_datetime(raw.astype(str), errors="coerce", format="mixed")
        bad = times.isna() | raw.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise LstmkitError(
                f"unparseable timestamp in column {time_col!r} at data row {row + 1}: {raw.iloc[row]!r}"
            )
        dup = times.duplicated()
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            raise LstmkitError(
                f"duplicate timestamp in column {time_col!r}: {raw.iloc[row]} appears again at data row {row + 1}"
            )
        back = times.diff() < pd.Timedelta(0)
        if back.any():
            row = int(np.flatnonzero(back.to_numpy())[0])
            raise LstmkitError(
                f"timestamps out of order in column {time_col!r}: data row {row + 1} ({raw.iloc[row]}) comes "
                f"before data row {row} ({raw.iloc[row - 1]}); sort the file by time first"
            )
        step = infer_step(times)
        df = df.drop(columns=[time_col])
    report = {
        "file": str(path),
        "rows": len(df),
        "time_col": time_col,
        "first_time": str(times.iloc[0]) if times is not None and len(times) else None,
        "last_time": str(times.iloc[-1]) if times is not None and len(times) else None,
        "step": {"kind": step.kind, "n": step.n},
        "gaps": count_gaps(times, step) if times is not None else 0,
    }
    return SeriesTable(str(path), columns, time_col, times, df.reset_index(drop=True), step, report)


def _names(spec: str, what: str) -> list[str]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise LstmkitError(f"give at least one {what} column")
    return names


def choose_columns(table: SeriesTable, target: str, features: str, categorical: str) -> tuple[list[str], list[str]]:
    """The target columns and the input columns (targets first, then the other inputs).

    ``target``/``features`` "all" mean every numeric column; ``features`` "" means the targets alone. The
    targets' own past is always an input. Named non-numeric inputs are one-hot encoded later, or refused
    when ``categorical`` is "refuse".
    """
    frame = table.frame
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    targets = numeric if target.strip() == "all" else _names(target, "target")
    missing = [c for c in targets if c not in frame.columns]
    if missing:
        raise LstmkitError(
            f"target column(s) not in {table.path}: {', '.join(missing)}; its columns are {', '.join(table.columns)}"
        )
    text = [c for c in targets if c not in numeric]
    if text:
        c = text[0]
        example = frame[c].dropna().iloc[0] if frame[c].notna().any() else None
        raise LstmkitError(f"target column {c!r} is not numeric (first value {example!r}); targets must be numbers")
    if features.strip() == "all":
        inputs = numeric
    elif features.strip() == "":
        inputs = []
    else:
        inputs = _names(features, "feature")
        missing = [c for c in inputs if c not in frame.columns]
        if missing:
            raise LstmkitError(
                f"feature column(s) not in {table.path}: {', '.join(missing)}; "
                f"its columns are {', '.join(table.columns)}"
            )
    inputs = targets + [c for c in inputs if c not in targets]
    text = [c for c in inputs if c not in numeric]
    if text and categorical == "refuse":
        raise LstmkitError(
            f"non-numeric input column(s): {', '.join(text)}; drop them from --features or one-hot encode them "
            f"(categorical='onehot')"
        )
    empty = [c for c in inputs if frame[c].isna().all()]
    if empty:
        raise LstmkitError(f"column(s) with no values at all: {', '.join(empty)}")
    return targets, inputs


def fill_missing(frame: pd.DataFrame, method: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fills missing numeric values; returns the filled frame and the count filled per column.

    ``ffill`` carries the last value forward (a leading gap takes the first value); ``interpolate`` draws a
    straight line between neighbours (edges as ffill); ``zero`` writes 0; ``none`` refuses any gap.
    """
    counts = {c: int(n) for c, n in frame.isna().sum().items() if n}
    if counts and method == "none":
        listed = ", ".join(f"{c} ({n})" for c, n in counts.items())
        raise LstmkitError(f"missing values in {listed}; choose a fill method (ffill, interpolate, zero)")
    if not counts:
        return frame, {}
    if method == "interpolate":
        numeric = frame.select_dtypes("number").columns
        frame = frame.copy()
        frame[numeric] = frame[numeric].interpolate(method="linear", limit_direction="both")
    if method == "zero":
        frame = frame.fillna({c: 0 for c in frame.select_dtypes("number").columns})
    return frame.ffill().bfill(), counts


def one_hot(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Replaces each column named in ``categories`` by one 0/1 column per category (``col=value``); values
    not in the list (unseen in training) get all zeros."""
    out = {}
    for c in frame.columns:
        if c in categories:
            values = frame[c].astype(str)
            for cat in categories[c]:
                out[f"{c}={cat}"] = (values == cat).astype(np.float64)
        else:
            out[c] = frame[c].astype(np.float64)
    return pd.DataFrame(out, index=frame.index)


def split_bounds(
    rows: int, step: TimeIndex, split: str, val_fraction: float, test_fraction: float, lookback: int, horizon: int,
) -> tuple[int, int, int]:
    """The row bounds (train_end, val_end, test_end): train [0, train_end), val [train_end, val_end), test
    [val_end, test_end). Raises when the parts are too short for one window each."""
    if split == "ett":
        if step.kind != "seconds" or step.n not in (3600, 900):
            raise LstmkitError("split 'ett' needs hourly or 15-minute timestamps (the ETT benchmark's layout)")
        factor = 3600 // step.n
        train_end, val_end, test_end = (b * factor for b in ETT_HOURS)
        if rows < test_end:
            raise LstmkitError(f"split 'ett' needs at least {test_end} rows, the file has {rows}")
    else:
        n_test, n_val = round(rows * test_fraction), round(rows * val_fraction)
        train_end, val_end, test_end = rows - n_test - n_val, rows - n_test, rows
    return check_bounds((train_end, val_end, test_end), lookback, horizon)


def check_bounds(bounds: tuple[int, int, int], lookback: int, horizon: int) -> tuple[int, int, int]:
    """Returns ``bounds`` when every part holds at least one window, else raises naming the shortfall."""
    train_end, val_end, test_end = bounds
    need = lookback + horizon
    if train_end < need or val_end - train_end < horizon or test_end - val_end < horizon:
        raise LstmkitError(
            f"too few rows: the split leaves {train_end} training, {val_end - train_end} validation and "
            f"{test_end - val_end} test rows; training needs lookback + horizon = {need} and validation and test "
            f"need horizon = {horizon} each; use a longer file or a smaller --lookback / --horizon"
        )
    return bounds


def window_starts(bounds: tuple[int, int, int], lookback: int, horizon: int) -> dict[str, np.ndarray]:
    """Start rows of the train / val / test windows; a window's targets lie inside its own part."""
    train_end, val_end, test_end = bounds
    return {
        "train": np.arange(0, train_end - lookback - horizon + 1),
        "val": np.arange(train_end, val_end - horizon + 1) - lookback,
        "test": np.arange(val_end, test_end - horizon + 1) - lookback,
    }
