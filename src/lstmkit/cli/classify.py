"""`lstmkit classify`: train a text classifier, predict labels with it."""

import argparse
import json
import sys

from ..errors import LstmkitError
from .args import add_training_arguments, positive_int, training_settings

_TRAIN_SETTINGS = (
    "text_col", "label_col", "max_tokens", "vocab_size", "val_fraction", "test_fraction", "cv_folds", "baseline",
    "cell", "embed_dim", "hidden_size", "num_layers", "bidirectional", "pooling", "dropout",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    classify = sub.add_parser("classify", help="text classification (sentiment, topics)").add_subparsers(
        dest="action", required=True, metavar="{train,predict}"
    )
    t = classify.add_parser("train", help="train on labelled texts and evaluate on the test split")
    source = t.add_mutually_exclusive_group()
    source.add_argument("--data", help="registered labelled dataset (imdb: the official 25k/25k split)")
    source.add_argument("--csv", help="comma- or tab-separated file with a header row (gzip allowed)")
    source.add_argument("--dir", help="folder with one sub-folder of text files per class")
    t.add_argument("--test-csv", help="official test split for --csv (default: a stratified hold-out)")
    t.add_argument("--test-dir", help="official test split for --dir (default: a stratified hold-out)")
    t.add_argument("--text-col", help="column holding the texts (default text)")
    t.add_argument("--label-col", help="column holding the labels (default label)")
    t.add_argument("--out", required=True, help="run folder to create")
    t.add_argument("--max-tokens", type=positive_int, help="words kept from the start of each text (default 400)")
    t.add_argument("--vocab-size", type=positive_int, help="vocabulary size incl. padding and unknown (default 20000)")
    t.add_argument("--val-fraction", type=float, help="stratified validation share of training texts (default 0.1)")
    t.add_argument("--test-fraction", type=float, help="test share when there is no test split (default 0.2)")
    t.add_argument("--cv-folds", type=positive_int, help="also run stratified k-fold cross-validation with k folds")
    t.add_argument("--no-baseline", dest="baseline", action="store_false", default=None,
                   help="skip the TF-IDF + logistic regression baseline")
    t.add_argument("--cell", choices=("lstm", "gru", "rnn"), help="recurrent cell (default lstm)")
    t.add_argument("--embed-dim", type=positive_int, help="word embedding size (default 128)")
    t.add_argument("--hidden-size", type=positive_int, help="units per direction (default 64)")
    t.add_argument("--num-layers", type=positive_int, help="stacked layers (default 1)")
    t.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="read the text both ways (default on)")
    t.add_argument("--pooling", choices=("last", "max", "mean", "attention"), help="over the outputs (default max)")
    t.add_argument("--dropout", type=float, help="on embeddings, between layers and before the head (default 0.4)")
    add_training_arguments(
        t, batch="texts per batch (default 32)", epochs="4", lr="0.002", lr_schedule="constant",
        patience="2",
    )
    t.set_defaults(run=_train)

    p = classify.add_parser("predict", help="label texts with a trained run; one JSON line per text")
    p.add_argument("run_dir", metavar="DIR", help="run folder made by `lstmkit classify train`")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--csv", help="classify the texts of this comma- or tab-separated file instead")
    p.add_argument("--text-col", default="text", help="column of --csv holding the texts (default text)")
    p.add_argument("--explain", action="store_true", help="add each word's attention weight (attention pooling)")
    p.set_defaults(run=_predict)


def _train(args: argparse.Namespace) -> int:
    from .. import classify

    settings = training_settings(args, _TRAIN_SETTINGS)
    if args.data is None and args.csv is None and args.dir is None:
        raise LstmkitError("give the labelled texts with --data NAME, --csv FILE or --dir FOLDER")
    if (args.test_csv and not args.csv) or (args.test_dir and not args.dir):
        raise LstmkitError("--test-csv goes with --csv and --test-dir with --dir")
    clf = classify.train(args.csv, data=args.data, dir=args.dir, test_csv=args.test_csv, test_dir=args.test_dir,
                         out=args.out, overwrite=args.overwrite, **settings)
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
    return 130 if run["stop_reason"] == "interrupted" else 0


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
