"""A CSV series made ready for a forecaster: columns chosen and encoded, gaps filled, split, scaled on the
training rows, windowed; and the same layout replayed on a new CSV at prediction time (series.json)."""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import ForecastDataConfig
from ..data.scaling import ColumnScaler
from ..data.timeseries import (
    SeriesTable,
    TimeIndex,
    choose_columns,
    fill_missing,
    one_hot,
    split_bounds,
    window_starts,
)
from ..data.windows import SeriesWindows
from ..errors import LstmkitError


@dataclass
class SeriesLayout:
    """What prediction needs to rebuild a model's inputs from a new CSV; stored as series.json."""

    columns: list[str]                  # every column of the training CSV, in order
    time_col: str | None
    targets: list[str]                  # K forecast columns; the first K encoded inputs
    inputs: list[str]                   # input columns as in the CSV (targets first)
    categories: dict[str, list[str]]    # one-hot categories per non-numeric input, from the training rows
    encoded: list[str]                  # I model input columns after one-hot encoding
    step: dict[str, Any]                # TimeIndex fields
    season: int
    fill: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SeriesLayout":
        return cls(**data)

    def encode(self, table: SeriesTable) -> tuple[np.ndarray, dict[str, int]]:
        """The encoded inputs (T, I) of a table with this layout, in original units, and the fill counts."""
        frame, filled = fill_missing(table.frame[self.inputs], self.fill)
        return one_hot(frame, self.categories)[self.encoded].to_numpy(np.float64), filled


@dataclass
class PreparedSeries:
    """A split, scaled, windowed series. ``raw`` and ``values`` are (T, I) with the K targets first."""

    layout: SeriesLayout
    scaler: ColumnScaler
    raw: np.ndarray                     # (T, I) original units
    values: np.ndarray                  # (T, I) scaled with training-row statistics
    bounds: tuple[int, int, int]        # train_end, val_end, test_end
    starts: dict[str, np.ndarray]       # window start rows per part
    report: dict[str, Any]

    def windows(self, part: str, batch_size: int, lookback: int, horizon: int) -> SeriesWindows:
        k = len(self.layout.targets)
        return SeriesWindows(self.values, self.values[:, :k], self.starts[part], lookback, horizon, batch_size)


def prepare_series(
    config: ForecastDataConfig, table: SeriesTable, bounds: tuple[int, int, int] | None = None,
) -> PreparedSeries:
    """Chooses, fills, encodes and splits the columns of ``table``; fits the scaler on the training rows.

    Args:
        config: columns, split, fill, scaling and window settings.
        table: the checked CSV (``read_series``).
        bounds: explicit (train_end, val_end, test_end) rows (backtest folds); None applies ``config.split``.
    """
    targets, inputs = choose_columns(table, config.target, config.features, config.categorical)
    frame, filled = fill_missing(table.frame[inputs], config.fill)
    split = config.split if bounds is None else "explicit"
    if bounds is None:
        bounds = split_bounds(
            len(frame), table.step, config.split, config.val_fraction, config.test_fraction,
            config.lookback, config.horizon,
        )
    train_end = bounds[0]
    text = [c for c in inputs if c not in targets and not pd.api.types.is_numeric_dtype(frame[c])]
    categories = {c: sorted(frame[c].iloc[:train_end].astype(str).unique().tolist()) for c in text}
    encoded = one_hot(frame, categories)
    season = config.season or table.step.season()
    if season > config.lookback:
        raise LstmkitError(
            f"season {season} is longer than the lookback {config.lookback}; the seasonal-naive baseline needs "
            f"lookback >= season (give a longer --lookback or a shorter --season)"
        )
    layout = SeriesLayout(
        table.columns, table.time_col, targets, inputs, categories, list(encoded.columns),
        {"kind": table.step.kind, "n": table.step.n}, season, config.fill,
    )
    raw = encoded.to_numpy(np.float64)                                    # (T, I)
    scaler = ColumnScaler.fit(config.scaler, layout.encoded, raw[:train_end])  # training rows only
    values = scaler.transform(raw)                                        # (T, I)
    starts = window_starts(bounds, config.lookback, config.horizon)
    report = {
        **table.report,
        "targets": targets,
        "inputs": layout.encoded,
        "one_hot": {c: len(v) for c, v in categories.items()},
        "ignored_columns": [c for c in table.frame.columns if c not in inputs],
        "missing_filled": filled,
        "fill": config.fill,
        "split": split,
        "rows_train_val_test": [train_end, bounds[1] - bounds[0], bounds[2] - bounds[1]],
        "windows_train_val_test": [len(starts["train"]), len(starts["val"]), len(starts["test"])],
        "season": season,
    }
    return PreparedSeries(layout, scaler, raw, values, bounds, starts, report)


def time_index(layout: SeriesLayout) -> TimeIndex:
    return TimeIndex(layout.step["kind"], layout.step["n"])


def check_columns(layout: SeriesLayout, table: SeriesTable) -> None:
    """Refuses a CSV whose columns differ from the training CSV's, naming the differences."""
    if table.columns == layout.columns:
        return
    missing = [c for c in layout.columns if c not in table.columns]
    extra = [c for c in table.columns if c not in layout.columns]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    if not parts:
        parts.append(f"same names in another order: {', '.join(table.columns)}")
    raise LstmkitError(
        f"the CSV's columns differ from the training CSV's ({'; '.join(parts)}); expected {', '.join(layout.columns)}"
    )
