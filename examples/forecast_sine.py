"""Forecast a noisy sine wave with an LSTM: the classic first forecasting tutorial, done with a proper
train / validation / test split, scalers fitted on the training rows, and baselines beside the model.

Run:  python examples/forecast_sine.py [--max-time 60]
"""

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from lstmkit import forecast


def make_sine_csv(path: Path, rows: int = 2000, period: int = 50, noise: float = 0.1, seed: int = 0) -> None:
    """A sine of the given period in rows, with Gaussian noise, stamped every hour."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    values = np.sin(2 * math.pi * t / period) + noise * rng.standard_normal(rows)
    times = pd.date_range("2024-01-01", periods=rows, freq="h")
    pd.DataFrame({"time": times, "value": values}).to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=60, help="seconds of training")
    parser.add_argument("--out", default="runs/forecast-sine", help="run folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "sine.csv"
        make_sine_csv(csv)
        run = forecast.train(
            csv, target="value", lookback=100, horizon=25, season=50,  # one period of the wave
            hidden_size=32, num_layers=2, dropout=0.0, lr=3e-3, epochs=30,
            max_time=args.max_time, seed=0, out=args.out, overwrite=True, quiet=True,
        )
        print(f"test MSE (scaled): LSTM {run.metrics['test']['mse']:.4f}")
        for name, scores in run.metrics["baselines"].items():
            print(f"                   {name:<15} {scores['test']['mse']:.4f}")
        print("the next 25 hours after the end of the file:")
        print(forecast.load(args.out).predict(csv).head(10).to_string(index=False))
    print(f"plots: {args.out}/forecast_windows.png, learning_curves.png, horizon_error.png")


if __name__ == "__main__":
    main()
