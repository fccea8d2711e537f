"""Speech evaluation beside the CNN-LSTM: the MFCC-statistics + logistic-regression baseline, and the test
figures, baseline figures and confusion matrices added to a recognition run folder."""

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data.audio import FeatureSpec, Featurizer, resample
from ..data.speech import Recording, SpeechSplits
from ..eval.confusion_plot import confusion_matrix_png
from ..eval.metrics import classification_metrics
from ..train.runs import add_to_folder, json_bytes


def mfcc_statistics(recordings: list[Recording], rate: int) -> np.ndarray:
    """(N, 160) fixed-size vectors: the mean, standard deviation, minimum and maximum over time of 20 MFCCs
    (40 Slaney mel bands, 25 ms Hann windows every 10 ms) and of their first differences."""
    featurizer = Featurizer(FeatureSpec(rate=rate, kind="mfcc", n_mels=40, n_mfcc=20))
    rows = []
    for r in recordings:
        mfcc = featurizer.raw(resample(r.samples, r.rate, rate)).numpy()          # (T, 20)
        delta = np.diff(mfcc, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)   # (T-1, 20)
        rows.append(np.concatenate([f(m, axis=0) for m in (mfcc, delta) for f in (np.mean, np.std, np.min, np.max)]))
    return np.stack(rows)                                                          # (N, 160)


def mfcc_logreg_probabilities(train: list[Recording], test: list[Recording], classes: list[str],
                              rate: int) -> np.ndarray:
    """The baseline: MFCC statistics, standardised on the training recordings, and a multinomial logistic
    regression (C=1, lbfgs). Returns (N, C) test probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    index = {c: k for k, c in enumerate(classes)}
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(mfcc_statistics(train, rate), [index[r.label] for r in train])
    probs = np.zeros((len(test), len(classes)))
    probs[:, model.classes_] = model.predict_proba(mfcc_statistics(test, rate))
    return probs


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "confusion_matrix"}


def evaluate_recognition(out: Path, recognizer: Any, splits: SpeechSplits, baseline: bool) -> dict[str, Any]:
    """Adds the test figures (accuracy, per-class precision / recall / F1), the baseline's, and the confusion
    matrices (JSON and PNG) to the run folder, rewritten atomically as a whole; returns the new metrics."""
    truth = np.array([splits.classes.index(r.label) for r in splits.test])
    started = time.perf_counter()
    test = classification_metrics(truth, recognizer.probabilities(splits.test), splits.classes)
    test_seconds = time.perf_counter() - started
    metrics = {**recognizer.metrics, "test": _summary(test), "baselines": {}}
    metrics["run"] = {**metrics.get("run", {}), "test_source": splits.test_source,
                      "test_recordings": len(splits.test), "test_seconds": round(test_seconds, 3)}
    matrices = {"classes": splits.classes, "cnn_lstm": test["confusion_matrix"]}
    if baseline:
        started = time.perf_counter()
        rate = recognizer.config.data.sample_rate
        base = classification_metrics(
            truth, mfcc_logreg_probabilities(splits.train, splits.test, splits.classes, rate), splits.classes)
        metrics["baselines"]["mfcc_logreg"] = {**_summary(base), "seconds": round(time.perf_counter() - started, 3)}
        matrices["mfcc_logreg"] = base["confusion_matrix"]
    png = confusion_matrix_png(test["confusion_matrix"], splits.classes,
                               f"CNN-LSTM on the test set: accuracy {test['accuracy']:.4f}")
    add_to_folder(out, {"metrics.json": json_bytes(metrics), "confusion_matrix.json": json_bytes(matrices),
                        "confusion_matrix.png": png})
    return metrics
