"""Airline passengers (monthly, 1949-1960): a small LSTM against the naive, seasonal-naive and linear
baselines on the same test windows, then a forecast of 1961.

Run:  LSTMKIT_DATA_DIR=../shared/data python examples/forecast_airline.py
The dataset is found in LSTMKIT_DATA_DIR (classic_series/airline-passengers.csv), else downloaded.
"""

import argparse

from lstmkit import forecast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=120, help="seconds of training")
    parser.add_argument("--out", default="runs/forecast-airline", help="run folder")
    args = parser.parse_args()

    run = forecast.train(
        data="classic_series/airline-passengers.csv",
        target="Passengers",
        lookback=24,       # two years of months in
        horizon=12,        # one year out, all twelve months at once
        revin=True,        # each window normalised by its own level: the series trends upwards
        hidden_size=32, batch_size=16, lr=5e-3, epochs=300, patience=40,
        max_time=args.max_time, seed=0, out=args.out, overwrite=True, quiet=True,
    )
    rows = {"LSTM": run.metrics, **run.metrics["baselines"]}
    print(f"test on {run.metrics['test_windows']} windows, original units (thousands of passengers):")
    for name, scores in rows.items():
        o = scores["test_original"]
        print(f"  {name:<15} MAE {o['mae']:7.2f}  RMSE {o['rmse']:7.2f}  "
              f"sMAPE {o['smape']:5.2f}%  MASE {o['mase']:.3f}")
    best = min(rows, key=lambda name: rows[name]["test_original"]["mae"])
    print(f"lowest MAE: {best}")

    model = forecast.load(args.out)
    path = model.config.data.csv
    print("forecast for 1961:")
    print(model.predict(path).to_string(index=False))


if __name__ == "__main__":
    main()
