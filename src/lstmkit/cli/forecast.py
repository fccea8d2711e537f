"""`lstmkit forecast`: train a forecaster on a CSV, backtest it with rolling origins, predict the next steps."""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from ..errors import LstmkitError
from .args import add_training_arguments, positive_int, training_settings

SETTINGS = (
    "target", "features", "time_col", "lookback", "horizon", "split", "val_fraction", "test_fraction", "season",
    "fill", "categorical", "scaler", "patch_len", "channel_independent", "revin", "autoregressive",
    "cell", "embed_dim", "hidden_size", "num_layers", "dropout", "bidirectional",
)


def _add_training_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--csv", help="CSV file with a header row (.gz read too)")
    source.add_argument("--data", help="registered dataset, NAME or NAME/FILE (e.g. ett/ETTh1.csv)")
    p.add_argument("--target", help="column(s) to forecast, COL[,COL...], or 'all' numeric columns")
    p.add_argument("--features", help="input columns: 'all' numeric columns or COL,... (default: the targets)")
    p.add_argument("--time-col", help="timestamp column (default: the first column when it holds timestamps)")
    p.add_argument("--out", help="run folder to create (default runs/forecast-<csv name>)")
    p.add_argument("--lookback", type=positive_int, help="input rows per window, L (default 48)")
    p.add_argument("--horizon", type=positive_int, help="rows forecast per window, H (default 12)")
    p.add_argument("--split", choices=("ratio", "ett"), help="ratio (default) or ett (12/4/4 months)")
    p.add_argument("--val-fraction", type=float, help="share of rows for validation (default 0.1)")
    p.add_argument("--test-fraction", type=float, help="share of rows for the test (default 0.2)")
    p.add_argument("--season", type=positive_int, help="seasonal-naive period in rows (default: from the timestamps)")
    p.add_argument("--fill", choices=("ffill", "interpolate", "zero", "none"), help="missing values (default ffill)")
    p.add_argument("--categorical", choices=("onehot", "refuse"), help="non-numeric inputs (default onehot)")
    p.add_argument("--scaler", choices=("standard", "minmax", "none"), help="on training rows (default standard)")
    p.add_argument("--patch-len", type=int, help="segment length P for segment-level recurrence (default 0: off)")
    p.add_argument("--channel-independent", action="store_true", default=None, help="one shared model per column")
    p.add_argument("--revin", action="store_true", default=None, help="per-window instance normalisation")
    p.add_argument("--autoregressive", action="store_true", default=None, help="one-step head fed back H times")
    p.add_argument("--cell", choices=("lstm", "gru", "rnn"), help="recurrent cell (default lstm)")
    p.add_argument("--embed-dim", type=positive_int, help="segment embedding size with --patch-len (default 64)")
    p.add_argument("--hidden-size", type=positive_int, help="units per layer (default 64)")
    p.add_argument("--num-layers", type=positive_int, help="stacked layers (default 1)")
    p.add_argument("--dropout", type=float, help="dropout between layers and before the head (default 0)")
    p.add_argument("--bidirectional", action="store_true", default=None, help="bidirectional encoder")
    add_training_arguments(
        p, batch="windows per batch (default 32)", epochs="100", lr="0.001", lr_schedule="constant",
        patience="10",
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    forecast = sub.add_parser("forecast", help="time-series forecasting from a CSV").add_subparsers(
        dest="action", required=True, metavar="{train,backtest,predict}"
    )
    t = forecast.add_parser("train", help="train a forecaster and test it beside baselines")
    _add_training_arguments(t)
    t.set_defaults(run=_train)
    b = forecast.add_parser("backtest", help="rolling-origin backtest: a fresh model per fold")
    _add_training_arguments(b)
    b.add_argument("--folds", type=positive_int, default=3, help="test blocks at the end of the series (default 3)")
    b.set_defaults(run=_backtest)
    p = forecast.add_parser("predict", help="forecast the next H rows after the end of a CSV")
    p.add_argument("run_dir", metavar="DIR", help="run folder made by `lstmkit forecast train`")
    p.add_argument("--csv", required=True, help="CSV with the training CSV's columns")
    p.add_argument("--out", help="write the forecast to this CSV file (default: print it)")
    p.set_defaults(run=_predict)


def _common(args: argparse.Namespace) -> tuple[dict, str]:
    settings = training_settings(args, SETTINGS)
    if args.csv is None and args.data is None:
        raise LstmkitError("give the series with --csv FILE or --data NAME")
    stem = Path(args.csv or args.data).name.split(".")[0]
    return settings, args.out or f"runs/forecast-{stem}"


def _line(name: str, scores: dict) -> str:
    t, o = scores["test"], scores["test_original"]
    return f"  {name:<15} mse {t['mse']:.4f}  mae {t['mae']:.4f}  | original: mae {o['mae']:.4g}  " \
           f"rmse {o['rmse']:.4g}  smape {o['smape']:.2f}%  mase {o['mase']:.3f}"


def _train(args: argparse.Namespace) -> int:
    from .. import forecast

    settings, out = _common(args)
    run = forecast.train(args.csv, data=args.data, out=out, overwrite=args.overwrite, **settings)
    m, r = run.metrics, run.metrics.get("run", {})
    print(f"saved {run.path} ({r.get('epochs', 0)} epochs, {r.get('steps', 0)} steps, {r.get('seconds', 0):.0f} s, "
          f"stopped: {r.get('stop_reason', '?')}); test on {m['test_windows']} windows (scaled | original units):")
    print(_line("lstm", m))
    for name, scores in m["baselines"].items():
        print(_line(name, scores))
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from .. import forecast

    settings, out = _common(args)
    report = forecast.backtest(args.csv, data=args.data, out=out, folds=args.folds, overwrite=args.overwrite,
                               **settings)
    summary = report["summary"]
    print(f"saved {out}: {len(report['folds'])} folds, test mean ± std across folds (scaled mse, original mae):")
    rows = {"lstm": summary["model"], **summary["baselines"]}
    for name, s in rows.items():
        mse, mae = s["test"]["mse"], s["test_original"]["mae"]
        print(f"  {name:<15} mse {mse['mean']:.4f} ± {mse['std']:.4f}  mae {mae['mean']:.4g} ± {mae['std']:.3g}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .. import forecast

    frame = forecast.load(args.run_dir).predict(args.csv)
    if args.out is None:
        frame.to_csv(sys.stdout, index=False)
        return 0
    out = Path(args.out)
    fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.name}.")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    print(f"wrote {len(frame)} forecast rows to {out}")
    return 0
