"""Forecasting baselines, computed on the same windows as the model: the bar a model must clear.

Shape legend: W windows, T lookback steps, F forecast steps (the horizon), K target columns.
"""

import numpy as np
from sklearn.linear_model import LinearRegression


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value, held: history (W, T, K) -> (W, F, K)."""
    return np.repeat(history[:, -1:], horizon, axis=1)


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The value one season earlier, y_hat[t+h] = y[t+h-m*ceil(h/m)], m = ``season`` <= T:
    history (W, T, K) -> (W, F, K)."""
    lookback = history.shape[1]
    rows = lookback - season + np.arange(horizon) % season     # (F,)
    return history[:, rows]


class LinearBaseline:
    """Ordinary least squares from a column's lookback window to its next F values, one model shared by
    every target column (each column a univariate series), fitted on training windows only."""

    def fit(self, history: np.ndarray, future: np.ndarray) -> "LinearBaseline":
        """history (W, T, K), future (W, F, K) from the training windows."""
        x = history.transpose(0, 2, 1).reshape(-1, history.shape[1])   # (W*K, T)
        y = future.transpose(0, 2, 1).reshape(-1, future.shape[1])     # (W*K, F)
        self.model_ = LinearRegression().fit(x, y)
        return self

    def predict(self, history: np.ndarray) -> np.ndarray:
        """history (W, T, K) -> (W, F, K)."""
        w, lookback, k = history.shape
        y = self.model_.predict(history.transpose(0, 2, 1).reshape(-1, lookback))  # (W*K, F)
        return y.reshape(w, k, -1).transpose(0, 2, 1)
