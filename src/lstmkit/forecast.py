"""Time-series forecasting: ``train(...)`` a forecaster on a CSV, ``backtest(...)`` it with rolling origins,
``load(folder).predict(csv)`` the next steps.

Example:
    >>> from lstmkit import forecast
    >>> run = forecast.train("airline-passengers.csv", target="Passengers", lookback=24, horizon=12,
    ...                      out="runs/airline", max_time=60)
    >>> run.metrics["test_original"]["mae"], run.metrics["baselines"]["seasonal_naive"]["test_original"]["mae"]
    >>> print(forecast.load("runs/airline").predict("airline-passengers.csv"))
"""

from .tasks.forecasting import ForecastObjective, SeriesForecaster, backtest, default_config, load, train

__all__ = ["ForecastObjective", "SeriesForecaster", "backtest", "default_config", "load", "train"]
