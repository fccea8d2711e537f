"""`lstmkit forecast`: train a forecaster on a CSV, backtest it with rolling origins, predict the next steps."""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .args import positive_int

NAME, HELP = "forecast", "time-series forecasting from a CSV"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .. import forecast
    from ..tasks.registry import get
    from .options import add_train_command

    task = get(NAME)
    actions = sub.add_parser(NAME, help=HELP).add_subparsers(dest="action", required=True,
                                                             metavar="{train,backtest,predict}")
    add_train_command(actions, task, _report, help="train a forecaster and test it beside baselines")
    b = add_train_command(actions, task, _report_backtest, name="backtest", resumable=False,
                          help="rolling-origin backtest: a fresh model per fold", run=forecast.backtest,
                          passed=("folds",))
    b.add_argument("--folds", type=positive_int, help="test blocks at the end of the series (default 3)")
    p = actions.add_parser("predict", help="forecast the next rows after the end of a CSV")
    p.add_argument("run_dir", metavar="DIR", help="run folder made by `lstmkit forecast train`")
    p.add_argument("--csv", required=True, help="CSV with the training CSV's columns")
    p.add_argument("--out", help="write the forecast to this CSV file (default: print it)")
    p.set_defaults(run=_predict)


def _line(name: str, scores: dict) -> str:
    t, o = scores["test"], scores["test_original"]
    return f"  {name:<15} mse {t['mse']:.4f}  mae {t['mae']:.4f}  | original: mae {o['mae']:.4g}  " \
           f"rmse {o['rmse']:.4g}  smape {o['smape']:.2f}%  mase {o['mase']:.3f}"


def _report(run) -> None:
    m, r = run.metrics, run.metrics.get("run", {})
    print(f"saved {run.path} ({r.get('epochs', 0)} epochs, {r.get('steps', 0)} steps, {r.get('seconds', 0):.0f} s, "
          f"stopped: {r.get('stop_reason', '?')}); test on {m['test_windows']} windows (scaled | original units):")
    print(_line("lstm", m))
    for name, scores in m["baselines"].items():
        print(_line(name, scores))


def _report_backtest(report: dict) -> None:
    summary = report["summary"]
    print(f"saved {report['path']}: {len(report['folds'])} folds, test mean ± std across folds (scaled mse, "
          "original mae):")
    rows = {"lstm": summary["model"], **summary["baselines"]}
    for name, s in rows.items():
        mse, mae = s["test"]["mse"], s["test_original"]["mae"]
        print(f"  {name:<15} mse {mse['mean']:.4f} ± {mse['std']:.4f}  mae {mae['mean']:.4g} ± {mae['std']:.3g}")


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
