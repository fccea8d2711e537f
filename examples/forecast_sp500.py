"""S&P 500 closing price (daily, 1990-2018): an LSTM forecasting the next five trading days, beside the
naive (last close) and seasonal-naive (same weekday last week) baselines. Prices are close to a random
walk, so the naive forecast is hard to beat; the point is to measure that honestly.

Run:  LSTMKIT_DATA_DIR=../shared/data python examples/forecast_sp500.py
"""

import argparse

from lstmkit import forecast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=120, help="seconds of training")
    parser.add_argument("--out", default="runs/forecast-sp500", help="run folder")
    args = parser.parse_args()

    run = forecast.train(
        data="stocks_sp500/GSPC.csv",
        target="Close",
        lookback=60,       # about three months of trading days
        horizon=5,         # the next trading week
        revin=True,        # prices in the test years lie far above the training years
        hidden_size=64, batch_size=64, lr=1e-3, epochs=30, patience=5,
        max_time=args.max_time, seed=0, out=args.out, overwrite=True, quiet=True,
    )
    data = run.metrics["data"]
    print(f"{data['rows']} trading days, {data['first_time']} .. {data['last_time']}; "
          f"train/val/test rows {data['rows_train_val_test']}, {data['gaps']} gaps beyond weekends")
    rows = {"LSTM": run.metrics, **run.metrics["baselines"]}
    for name, scores in rows.items():
        o = scores["test_original"]
        print(f"  {name:<15} MAE {o['mae']:7.2f}  RMSE {o['rmse']:7.2f}  "
              f"sMAPE {o['smape']:5.2f}%  MASE {o['mase']:.3f}")
    best = min(rows, key=lambda name: rows[name]["test_original"]["mae"])
    print(f"lowest MAE: {best}")
    print("next five trading days after the end of the file:")
    print(forecast.load(args.out).predict(run.config.data.csv).to_string(index=False))


if __name__ == "__main__":
    main()
