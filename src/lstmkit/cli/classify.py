"""`lstmkit classify`: train a text classifier, predict labels with it."""

import argparse
import json
import sys

from ..errors import LstmkitError

NAME, HELP = "classify", "text classification (sentiment, topics)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..tasks.registry import get
    from .options import add_train_command

    actions = sub.add_parser(NAME, help=HELP).add_subparsers(dest="action", required=True,
                                                             metavar="{train,predict}")
    add_train_command(actions, get(NAME), _report, help="train on labelled texts and evaluate on the test split")

    p = actions.add_parser("predict", help="label texts with a trained run; one JSON line per text")
    p.add_argument("run_dir", metavar="DIR", help="run folder made by `lstmkit classify train`")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--csv", help="classify the texts of this comma- or tab-separated file instead")
    p.add_argument("--text-col", default="text", help="column of --csv holding the texts (default text)")
    p.add_argument("--explain", action="store_true", help="add each word's attention weight (attention pooling)")
    p.set_defaults(run=_predict)


def _report(clf) -> None:
    test, run = clf.metrics["test"], clf.metrics["run"]
    if run["stop_reason"] == "interrupted":
        print(f"interrupted: {clf.path} holds the model as it was, evaluated on the test set", file=sys.stderr)
    line = f"saved {clf.path}: test accuracy {test['accuracy']:.4f}, F1 macro {test['f1_macro']:.4f}"
    if "roc_auc" in test:
        line += f", ROC-AUC {test['roc_auc']:.4f}"
    base = clf.metrics["baselines"].get("tfidf_logreg")
    if base:
        line += f"; TF-IDF + logistic regression accuracy {base['accuracy']:.4f}"
    print(f"{line} ({run['epochs']} epochs, {run['steps']} steps, {run['seconds']:.0f} s, "
          f"stopped: {run['stop_reason']})")


def _predict(args: argparse.Namespace) -> int:
    from .. import classify
    from ..data.labelled import read_table

    if bool(args.texts) == bool(args.csv):
        raise LstmkitError("give the texts to classify as arguments or with --csv FILE, not both or neither")
    texts = args.texts or read_table(args.csv, args.text_col, None).texts
    clf = classify.load(args.run_dir)
    explanations = [clf.explain(t) for t in texts] if args.explain else None
    for k, prediction in enumerate(clf.predict(texts)):
        if explanations is not None:
            prediction["attention"] = [[token, round(w, 6)] for token, w in explanations[k]]
        print(json.dumps(prediction, ensure_ascii=False))
    return 0
