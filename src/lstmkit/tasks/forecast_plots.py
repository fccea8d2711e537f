"""The plots a person looks at after a forecasting run, as PNG bytes for the run folder: forecasts against
the actual values on chosen test windows, learning curves, and the error at each horizon step."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after matplotlib.use: the backend must be chosen first
import numpy as np


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def forecast_windows(
    history: np.ndarray, actual: np.ndarray, forecasts: dict[str, np.ndarray], windows: list[int], column: str,
) -> bytes:
    """One panel per chosen window: the lookback, the actual future and each forecast of one column.

    Args:
        history: (W, T) lookback values (the last 3F, at least 24, are drawn); actual: (W, F) true future values.
        forecasts: name -> (W, F) forecast values (the model first, then baselines).
        windows: indices of the windows to draw.
        column: the column's name, for the title.
    """
    fig, axes = plt.subplots(len(windows), 1, figsize=(10, 2.8 * len(windows)), squeeze=False)
    horizon = actual.shape[1]
    history = history[:, -min(history.shape[1], max(3 * horizon, 24)) :]  # the recent past, not all of a long lookback
    past, future = np.arange(-history.shape[1], 0), np.arange(horizon)
    for ax, w in zip(axes[:, 0], windows, strict=True):
        ax.plot(past, history[w], color="0.4", lw=1, label="lookback")
        ax.plot(future, actual[w], color="black", lw=1.5, label="actual")
        for name, values in forecasts.items():
            ax.plot(future, values[w], lw=1.2, ls="-" if name == "model" else "--", label=name)
        ax.axvline(-0.5, color="0.7", lw=0.8)
        ax.set_title(f"{column}: test window {w}", fontsize=9)
    axes[0, 0].legend(fontsize=8, ncol=5, loc="upper left")
    axes[-1, 0].set_xlabel("steps from the forecast origin")
    fig.tight_layout()
    return _png(fig)


def learning_curves(history: list[dict[str, float]]) -> bytes:
    """Training and validation loss per epoch."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train loss")
    ax.plot(epochs, [row.get("val_loss", np.nan) for row in history], marker="o", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (scaled)")
    ax.legend()
    return _png(fig)


def horizon_error(errors: dict[str, np.ndarray]) -> bytes:
    """Test MSE at each horizon step: errors maps a forecaster's name to its (F,) per-step MSE."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in errors.items():
        ax.plot(np.arange(1, len(values) + 1), values, lw=1.5 if name == "model" else 1, label=name)
    ax.set_xlabel("horizon step")
    ax.set_ylabel("test MSE (scaled)")
    ax.legend()
    return _png(fig)
