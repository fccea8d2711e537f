"""Forecast metrics against scikit-learn where it has them (MSE, MAE, RMSE, R²) and against cases worked by
hand where it has not (sMAPE, MASE, after Hyndman & Koehler, 2006): docs compare these with published figures."""

import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from lstmkit.eval.metrics import forecast_metrics, mase_scale


@pytest.mark.parametrize("targets", [1, 3])
def test_mse_mae_rmse_r2_equal_scikit_learns(targets):
    rng = np.random.default_rng(targets)
    y = rng.normal(size=(7, 5, targets)) * [10.0, 1.0, 0.1][:targets]         # (W, F, K), columns of unlike size
    p = y + rng.normal(size=y.shape) * 0.5
    got = forecast_metrics(y, p, np.ones(targets))
    flat_y, flat_p = y.reshape(-1, targets), p.reshape(-1, targets)            # (W*F, K)
    assert got["mse"] == pytest.approx(mean_squared_error(y.ravel(), p.ravel()), rel=1e-12)
    assert got["mae"] == pytest.approx(mean_absolute_error(y.ravel(), p.ravel()), rel=1e-12)
    assert got["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y.ravel(), p.ravel())), rel=1e-12)
    # R² per target column, then their mean (scikit-learn's "uniform_average"), not R² of the pooled values
    assert got["r2"] == pytest.approx(r2_score(flat_y, flat_p, multioutput="uniform_average"), rel=1e-12)
    if targets > 1:
        assert got["r2"] != pytest.approx(r2_score(y.ravel(), p.ravel()), rel=1e-6)


def test_smape_by_hand():
    y = np.array([2.0, 4.0, 0.0, -1.0]).reshape(1, 4, 1)
    p = np.array([1.0, 4.0, 0.0, 1.0]).reshape(1, 4, 1)
    # terms 2|y - p| / (|y| + |p|): 2/3, 0, 0 (both zero: defined as 0), 4/2 = 2; mean 2/3, in percent
    assert forecast_metrics(y, p, np.ones(1))["smape"] == pytest.approx(100 * (2 / 3 + 0 + 0 + 2) / 4)


def test_smape_is_symmetric_and_bounded_by_200():
    y = np.array([1.0, 5.0, 3.0]).reshape(1, 3, 1)
    p = np.array([-1.0, 2.0, 3.0]).reshape(1, 3, 1)
    a = forecast_metrics(y, p, np.ones(1))["smape"]
    assert a == pytest.approx(forecast_metrics(p, y, np.ones(1))["smape"])
    assert a == pytest.approx(100 * (2.0 + 6 / 7 + 0.0) / 3)


def test_mase_scale_is_the_in_sample_seasonal_naive_error():
    train = np.array([1.0, 3.0, 2.0, 6.0])[:, None]                               # (T, K=1)
    assert mase_scale(train, 1) == pytest.approx([(2 + 1 + 4) / 3])
    assert mase_scale(train, 2) == pytest.approx([(1 + 3) / 2])
    assert mase_scale(train, 10) == pytest.approx([5.0])                          # m capped at T - 1: |6 - 1|
    assert mase_scale(np.full((5, 1), 4.0), 1) == pytest.approx([1.0])           # a flat series: never 0


def test_mase_by_hand_per_column_then_averaged():
    train = np.array([[1.0, 10.0], [3.0, 10.0], [2.0, 30.0], [6.0, 20.0]])      # (T, K=2)
    scale = mase_scale(train, 1)                                                 # [7/3, 10]
    y = np.array([[[2.0, 10.0], [4.0, 20.0]]])                                   # (W=1, F=2, K=2)
    p = np.array([[[1.0, 15.0], [4.0, 20.0]]])
    # MAE per column: 0.5 and 2.5; MASE = mean(0.5 / (7/3), 2.5 / 10)
    assert forecast_metrics(y, p, scale)["mase"] == pytest.approx((0.5 * 3 / 7 + 0.25) / 2)
