"""Text classification: wiring of labelled texts, a word vectoriser, a TextClassifier, the engine, the test
evaluation (beside a TF-IDF + logistic-regression baseline on the same split), optional stratified k-fold
cross-validation, and a predictor that returns labels, probabilities and attention weights."""

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ClassificationDataConfig, ModelConfig, RunConfig, TrainConfig
from ..data import Batch
from ..data.labelled import (
    EncodedSet,
    LabelledSplits,
    LabelledTexts,
    load_splits,
    stratified_folds,
    stratified_split,
)
from ..data.vectorizer import TextVectorizer
from ..errors import LstmkitError
from ..eval.confusion_plot import confusion_matrix_png
from ..eval.metrics import classification_metrics
from ..models.classifier import TextClassifier, build_classifier
from ..train import Trainer
from ..train.runs import add_to_folder, json_bytes, read_json
from ..utils.seed import set_seed
from .base import Example, Task, TextView, fit_run

TASK = "classify"
EVAL_BATCH = 256

_log = logging.getLogger(__name__)


def default_config() -> RunConfig:
    """A bidirectional LSTM (64 units each way) over 128-dimensional embeddings, max-pooled; 4 epochs."""
    return RunConfig(
        task=TASK,
        data=ClassificationDataConfig(),
        model=ModelConfig(embed_dim=128, hidden_size=64, num_layers=1, dropout=0.4, bidirectional=True,
                          pooling="max"),
        train=TrainConfig(epochs=4, batch_size=32, lr=2e-3, patience=2, grad_clip=5.0),
    )


class ClassificationObjective:
    """Binary cross-entropy on one logit for two classes, cross-entropy on C logits otherwise."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def outputs(self, model: nn.Module, batch: Batch) -> Tensor:
        return model(batch.inputs, batch.lengths)                          # (B,) or (B, C)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        if self.num_classes == 2:
            return F.binary_cross_entropy_with_logits(outputs, batch.targets.to(outputs.dtype))
        return F.cross_entropy(outputs, batch.targets)

    def items(self, batch: Batch) -> int:
        return len(batch)

    def probabilities(self, model: nn.Module, data: EncodedSet, device: torch.device) -> np.ndarray:
        """(N, C) class probabilities in the data's own row order."""
        probs = np.zeros((len(data.ids), self.num_classes))
        for rows, batch in data.in_order():
            logits = self.outputs(model, batch.to(device)).float().cpu()
            if self.num_classes == 2:
                p = torch.sigmoid(logits)                                   # (B,)
                probs[rows] = torch.stack([1 - p, p], dim=1).numpy()       # (B, 2)
            else:
                probs[rows] = torch.softmax(logits, dim=-1).numpy()        # (B, C)
        return probs

    def evaluate(self, model: nn.Module, data: EncodedSet, device: torch.device) -> dict[str, float]:
        """Validation loss (mean cross-entropy, nats) and accuracy."""
        probs = self.probabilities(model, data, device)
        truth = data.targets.numpy()
        picked = np.clip(probs[np.arange(len(truth)), truth], 1e-12, 1.0)
        return {"loss": float(-np.log(picked).mean()), "accuracy": float((probs.argmax(1) == truth).mean())}


def _encode(
    vectorizer: TextVectorizer, data: LabelledTexts, classes: list[str], batch_size: int, trim: bool = False
) -> EncodedSet:
    index = {c: k for k, c in enumerate(classes)}
    targets = torch.tensor([index[label] for label in data.labels], dtype=torch.long)
    return EncodedSet([vectorizer.encode_one(t) for t in data.texts], targets, batch_size, trim)


def tfidf_logreg_probabilities(train: LabelledTexts, test_texts: list[str], classes: list[str]) -> np.ndarray:
    """The baseline: TF-IDF of words and word pairs (same tokeniser as the LSTM; sublinear counts; terms seen
    in at least 2 texts, or in 1 for fewer than 50 training texts) and a logistic regression (C=4; liblinear
    for two classes, multinomial lbfgs for more). Returns (N, C) test probabilities."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from ..data.vectorizer import tokenize

    tfidf = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 2),
                            min_df=2 if len(train) >= 50 else 1, sublinear_tf=True)
    features = tfidf.fit_transform(train.texts)
    index = {c: k for k, c in enumerate(classes)}
    model = LogisticRegression(C=4.0, solver="liblinear" if len(classes) == 2 else "lbfgs", max_iter=1000)
    model.fit(features, [index[label] for label in train.labels])
    probs = np.zeros((len(test_texts), len(classes)))
    probs[:, model.classes_] = model.predict_proba(tfidf.transform(test_texts))
    return probs


def _fit_fold(config: RunConfig, train: LabelledTexts, held: LabelledTexts, classes: list[str]) -> dict[str, Any]:
    """Trains a fresh vectoriser and model on ``train`` (its own stratified validation part for early
    stopping) and scores it, and the baseline, on ``held``; nothing is written."""
    fit_rows, val_rows = stratified_split(train.labels, config.data.val_fraction, config.train.seed)
    fit, val = train.subset(fit_rows), train.subset(val_rows)
    vectorizer = TextVectorizer.fit(fit.texts, config.data.vocab_size, config.data.max_tokens)
    model = build_classifier(config.model, len(vectorizer), len(classes))
    objective = ClassificationObjective(len(classes))
    trainer = Trainer(model, objective, config.train)
    trainer.fit(_encode(vectorizer, fit, classes, config.train.batch_size, trim=True),
                _encode(vectorizer, val, classes, EVAL_BATCH))
    truth = _encode(vectorizer, held, classes, EVAL_BATCH)
    model.eval()
    with torch.no_grad():
        lstm = classification_metrics(truth.targets.numpy(), objective.probabilities(model, truth, trainer.device),
                                      classes)
    row = {"lstm": lstm}
    if config.data.baseline:
        row["tfidf_logreg"] = classification_metrics(
            truth.targets.numpy(), tfidf_logreg_probabilities(fit, held.texts, classes), classes)
    return row


def cross_validate(config: RunConfig, data: LabelledTexts, classes: list[str]) -> dict[str, Any]:
    """Stratified k-fold cross-validation on ``data``: per-fold figures and their mean and standard deviation."""
    k = config.data.cv_folds
    quiet = dataclasses.replace(config, train=dataclasses.replace(config.train, quiet=True))
    rows = []
    for fold, (train_rows, held_rows) in enumerate(stratified_folds(data.labels, k, config.train.seed), start=1):
        rows.append(_fit_fold(quiet, data.subset(train_rows), data.subset(held_rows), classes))
        _log.info("cross-validation fold %d/%d: accuracy %.4f", fold, k, rows[-1]["lstm"]["accuracy"])
    summary: dict[str, Any] = {"folds": k}
    for model in rows[0]:
        keys = [key for key in ("accuracy", "precision", "recall", "f1_macro", "roc_auc") if key in rows[0][model]]
        summary[model] = {
            key: {"mean": float(np.mean([r[model][key] for r in rows])),
                  "std": float(np.std([r[model][key] for r in rows])),
                  "folds": [r[model][key] for r in rows]}
            for key in keys
        }
    return summary


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "confusion_matrix"}


def _evaluate_run(
    out: Path, classifier: "Classifier", splits: LabelledSplits, config: RunConfig, cv: dict | None
) -> None:
    """Adds the test figures, the baseline's, the cross-validation and the confusion matrices to the run
    folder, rewritten atomically as a whole."""
    truth = np.array([splits.classes.index(label) for label in splits.test.labels])
    started = time.perf_counter()
    test = classification_metrics(truth, classifier.predict_proba(splits.test.texts), splits.classes)
    test_seconds = time.perf_counter() - started
    metrics = {**classifier.metrics, "test": _summary(test), "baselines": {}}
    metrics["run"] = {**metrics.get("run", {}), "test_source": splits.test_source,
                      "test_texts": len(splits.test), "test_seconds": round(test_seconds, 3)}
    matrices = {"classes": splits.classes, "lstm": test["confusion_matrix"]}
    if config.data.baseline:
        started = time.perf_counter()
        base = classification_metrics(
            truth, tfidf_logreg_probabilities(splits.train, splits.test.texts, splits.classes), splits.classes)
        metrics["baselines"]["tfidf_logreg"] = {**_summary(base), "seconds": round(time.perf_counter() - started, 3)}
        matrices["tfidf_logreg"] = base["confusion_matrix"]
    if cv is not None:
        metrics["cv"] = cv
    png = confusion_matrix_png(test["confusion_matrix"], splits.classes,
                               f"LSTM on the test set: accuracy {test['accuracy']:.4f}")
    add_to_folder(out, {"metrics.json": json_bytes(metrics), "confusion_matrix.json": json_bytes(matrices),
                        "confusion_matrix.png": png})
    classifier.metrics = metrics


class ClassificationTask(Task):
    """``classify``: a text classifier evaluated on the test split beside TF-IDF + logistic regression."""

    name = TASK
    help = "text classification (sentiment, topics)"
    fitted_files = ("vectorizer", "labels")

    def default_config(self) -> RunConfig:
        return default_config()

    def build_model(self, config: RunConfig, fitted: dict[str, Any]) -> nn.Module:
        vectorizer = TextVectorizer.from_json(fitted["vectorizer"])
        return build_classifier(config.model, len(vectorizer), len(fitted["labels"]["classes"]))

    def _splits(self, config: RunConfig) -> LabelledSplits:
        splits = load_splits(config.data, config.train.seed)
        _log.info("%d training, %d validation and %d test texts (%s test split), classes %s", len(splits.train),
                  len(splits.val), len(splits.test), splits.test_source, ", ".join(splits.classes))
        return splits

    def fit(self, config: RunConfig, out: Path, resume: bool) -> "Classifier":
        set_seed(config.train.seed, config.train.deterministic)
        splits = self._splits(config)
        if resume and (out / "cv.json").is_file():
            cv = read_json(out / "cv.json", "cv.json")
        else:
            cv = cross_validate(config, splits.train, splits.classes) if config.data.cv_folds else None
        set_seed(config.train.seed, config.train.deterministic)
        vectorizer = TextVectorizer.fit(splits.train.texts, config.data.vocab_size, config.data.max_tokens)
        fitted = {"vectorizer": vectorizer.to_json(), "labels": {"classes": splits.classes}}
        model = self.build_model(config, fitted)
        objective = ClassificationObjective(len(splits.classes))
        result = fit_run(out, config, fitted, model, objective,
                         _encode(vectorizer, splits.train, splits.classes, config.train.batch_size, trim=True),
                         _encode(vectorizer, splits.val, splits.classes, EVAL_BATCH), restore=resume,
                         extra={"cv.json": json_bytes(cv)} if cv is not None else None)
        classifier = Classifier(model.cpu().eval(), vectorizer, splits.classes, config, result.metrics, out)
        _evaluate_run(out, classifier, splits, config, cv)
        return classifier

    def finish(self, config: RunConfig, out: Path) -> "Classifier":
        classifier = self.load(out)
        if "test" not in classifier.metrics:
            cv = read_json(out / "cv.json", "cv.json") if (out / "cv.json").is_file() else None
            _evaluate_run(out, classifier, self._splits(config), config, cv)
        return classifier

    def predictor(self, model: nn.Module, config: RunConfig, fitted: dict[str, Any], metrics: dict,
                  path: Path) -> "Classifier":
        vectorizer = TextVectorizer.from_json(fitted["vectorizer"])
        return Classifier(model, vectorizer, fitted["labels"]["classes"], config, metrics, path)

    def example(self, folder: Path) -> Example:
        good = ["a wonderful moving film", "great acting and a fine story", "loved every minute of it",
                "a joy to watch", "brilliant and warm"]
        bad = ["a dull and boring film", "terrible acting and a thin story", "hated every minute of it",
               "a waste of time", "awful and cold"]
        rows = [(t, "pos") for t in good] + [(t, "neg") for t in bad]
        path = Path(folder) / "tiny-reviews.csv"
        pd.DataFrame([rows[k % len(rows)] for k in range(60)], columns=["text", "label"]).to_csv(path, index=False)
        tiny = {"csv": str(path), "hidden_size": 8, "embed_dim": 8, "vocab_size": 100, "max_tokens": 20,
                "batch_size": 8, "epochs": 3, "max_steps": 12, "baseline": False, "quiet": True}
        return Example(tiny, (["a wonderful film", "a boring film"],), {**tiny, "vocab_size": 2},
                       "vocab_size must be at least 3")

    def text_view(self, predictor: "Classifier") -> TextView:
        encoder, vectorizer = predictor.model.encoder, predictor.vectorizer

        def to_inputs(text: str) -> Tensor:
            return encoder.embedding(torch.tensor([vectorizer.encode_one(text)]))  # (1, T, E)

        return TextView(encoder.rnn, lambda text: vectorizer.tokens(text) or ["<oov>"], to_inputs)


CLASSIFY = ClassificationTask()


def train(
    csv: str | Path | None = None,
    *,
    out: str | Path,
    data: str | None = None,
    dir: str | Path | None = None,
    test_csv: str | Path | None = None,
    test_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    **settings: Any,
) -> "Classifier":
    """Trains a text classifier, evaluates it on the test split beside the baseline, and writes its run folder.

    Args:
        csv: a comma- or tab-separated file (gzip allowed) with ``text_col`` and ``label_col``; or
        data: a registered labelled dataset ("imdb": its official train/test split); or
        dir: a folder with one sub-folder of text files per class.
        test_csv / test_dir: the official test split for ``csv`` / ``dir`` (else a stratified hold-out).
        out: the run folder to create (refused if it exists, unless ``overwrite``).
        resume: continue the run in ``out`` from its checkpoint (see ``lstmkit.textgen.train``).
        **settings: any field of ClassificationDataConfig, ModelConfig or TrainConfig (max_tokens,
            vocab_size, pooling, hidden_size, max_time, cv_folds, ...).

    Returns:
        A Classifier holding the trained model; ``.metrics`` is the run's metrics.json.
    """
    paths = {"csv": csv, "test_csv": test_csv, "dir": dir, "test_dir": test_dir}
    sources = {k: str(v) if v is not None else None for k, v in paths.items()} | {"data": data}
    return CLASSIFY.train(out=out, overwrite=overwrite, resume=resume, **sources, **settings)


class Classifier:
    """A trained text classifier. Build with ``train(...)`` or ``load(folder)``.

    Example:
        >>> clf = load("runs/imdb")
        >>> clf.predict(["A wonderful, moving film."])[0]["label"]
        'pos'
    """

    def __init__(self, model: TextClassifier, vectorizer: TextVectorizer, classes: list[str], config: RunConfig,
                 metrics: dict, path: Path) -> None:
        self.model, self.vectorizer, self.classes = model, vectorizer, classes
        self.config, self.metrics, self.path = config, metrics, path

    def _check(self, texts: list[str]) -> None:
        empty = [k for k, t in enumerate(texts, start=1) if not t.strip()]
        if empty:
            numbers = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
            raise LstmkitError(f"{len(empty)} of {len(texts)} texts are empty (numbers {numbers})")

    @torch.no_grad()
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(N, C) class probabilities, columns in ``self.classes`` order."""
        texts = list(texts)
        self._check(texts)
        self.model.eval()
        encoded = EncodedSet([self.vectorizer.encode_one(t) for t in texts], torch.zeros(len(texts), dtype=torch.long),
                             EVAL_BATCH)
        return ClassificationObjective(len(self.classes)).probabilities(self.model, encoded, torch.device("cpu"))

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """One {"label", "probabilities": {class: p}} per text."""
        probs = self.predict_proba(texts)
        return [{"label": self.classes[int(p.argmax())],
                 "probabilities": {c: float(v) for c, v in zip(self.classes, p, strict=True)}} for p in probs]

    @torch.no_grad()
    def explain(self, text: str) -> list[tuple[str, float]]:
        """The attention weight of every word the model reads in ``text`` (they sum to 1); needs a model
        trained with attention pooling. A text without words gives [("<oov>", 1.0)]."""
        if self.model.pooling != "attention":
            raise LstmkitError(
                f"explanations need a model trained with --pooling attention; this run uses {self.model.pooling}"
            )
        self._check([text])
        self.model.eval()
        ids = self.vectorizer.encode_one(text)
        _, weights = self.model.forward_with_weights(torch.tensor([ids]), torch.tensor([len(ids)]))  # (1, T)
        tokens = self.vectorizer.tokens(text) or ["<oov>"]
        return [(token, float(w)) for token, w in zip(tokens, weights[0].tolist(), strict=True)]


def load(folder: str | Path) -> Classifier:
    """Loads a classification run folder (config.json, vectorizer.json, labels.json, model.safetensors)."""
    return CLASSIFY.load(folder)
