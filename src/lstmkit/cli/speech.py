"""`lstmkit speech`: train a spoken-word recogniser, label WAV files with it."""

import argparse
import sys

NAME, HELP = "speech", "speech: spoken-word recognition with a CNN-LSTM"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..tasks.registry import get
    from .options import add_train_command

    actions = sub.add_parser(NAME, help=HELP).add_subparsers(dest="action", required=True,
                                                             metavar="{train,predict}")
    add_train_command(actions, get(NAME), _report,
                      help="train on labelled recordings (--data fsdd or --dir FOLDER) and evaluate on the test set")

    p = actions.add_parser("predict", help="label WAV files with a trained run: file, label and its probability "
                                           "per line, tab-separated")
    p.add_argument("run_dir", metavar="DIR", help="run folder made by `lstmkit speech train`")
    p.add_argument("files", nargs="+", metavar="FILE.wav", help="mono PCM WAV files (any sample rate)")
    p.add_argument("--all", action="store_true", help="add every label's probability, label=p, after the line")
    p.set_defaults(run=_predict)


def _report(rec) -> None:
    test, run = rec.metrics["test"], rec.metrics["run"]
    if run["stop_reason"] == "interrupted":
        print(f"interrupted: {rec.path} holds the model as it was, evaluated on the test set", file=sys.stderr)
    line = f"saved {rec.path}: test accuracy {test['accuracy']:.4f}, F1 macro {test['f1_macro']:.4f}"
    base = rec.metrics["baselines"].get("mfcc_logreg")
    if base:
        line += f"; MFCC statistics + logistic regression accuracy {base['accuracy']:.4f}"
    print(f"{line} ({run['test_source']} test set, {run['epochs']} epochs, {run['steps']} steps, "
          f"{run['seconds']:.0f} s, stopped: {run['stop_reason']})")


def _predict(args: argparse.Namespace) -> int:
    from .. import speech

    for prediction in speech.load(args.run_dir).predict(args.files):
        fields = [prediction["file"], prediction["label"], f"{prediction['probability']:.4f}"]
        if args.all:
            fields += [f"{label}={p:.4f}" for label, p in prediction["probabilities"].items()]
        print("\t".join(fields))
    return 0
