"""Metric formulas, shared by every task's evaluation."""

import math

import numpy as np
from sklearn.metrics import r2_score


def language_model_metrics(total_nll: float, count: int) -> dict[str, float]:
    """From the summed negative log-likelihood (nats) of ``count`` predicted tokens.

    Returns loss (nats per token), perplexity = exp(loss) and bits per token = loss / ln 2, which for a
    character model is bits per character.
    """
    loss = total_nll / count
    return {"loss": loss, "perplexity": math.exp(loss), "bits_per_char": loss / math.log(2)}


def mase_scale(train: np.ndarray, season: int) -> np.ndarray:
    """MASE denominators: the mean absolute seasonal difference |y_t - y_{t-m}| of each column of the
    training rows ``train`` (T, K), m = ``season``; (K,), never 0."""
    train = np.asarray(train, dtype=np.float64)
    m = min(season, len(train) - 1)
    scale = np.abs(train[m:] - train[:-m]).mean(axis=0) if m >= 1 else np.ones(train.shape[1])
    return np.where(scale > 0, scale, 1.0)


def forecast_metrics(y_true: np.ndarray, y_pred: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """Point-forecast metrics over windows of targets.

    Args:
        y_true, y_pred: (W, F, K) windows x horizon steps x target columns.
        scale: (K,) MASE denominators from ``mase_scale``.

    Returns:
        mse, mae, rmse over every value; r2 = 1 - SSE/SST per target column (the mean of the columns);
        smape = 100 * mean(2|y - p| / (|y| + |p|)) in percent (0 where both are 0); mase = the mean over
        columns of MAE_k / scale_k.
    """
    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    err = p - y
    mse = float(np.mean(err**2))
    denom = np.abs(y) + np.abs(p)
    ratio = np.divide(2 * np.abs(err), denom, out=np.zeros_like(denom), where=denom > 0)
    mae_k = np.abs(err).reshape(-1, y.shape[-1]).mean(axis=0)
    return {
        "mse": mse,
        "mae": float(np.mean(np.abs(err))),
        "rmse": math.sqrt(mse),
        "r2": float(r2_score(y.reshape(-1, y.shape[-1]), p.reshape(-1, y.shape[-1]))),
        "smape": float(100 * ratio.mean()),
        "mase": float(np.mean(mae_k / np.asarray(scale, dtype=np.float64))),
    }


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict:
    """Classification metrics from true class ids (N,) and class probabilities (N, C).

    Returns accuracy; precision and recall (of the positive class, ``classes[1]``, for two classes, else
    macro-averaged) and f1_macro; roc_auc for two classes (from the positive class's probability); ``per_class``
    precision, recall, f1 and support keyed by class name; and the confusion matrix (rows true, columns
    predicted, in ``classes`` order).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    labels = list(range(len(classes)))
    y_pred = probs.argmax(axis=1)
    average = "binary" if len(classes) == 2 else "macro"
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=average, pos_label=1, zero_division=0
    )
    p_k, r_k, f_k, n_k = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    metrics: dict = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1_macro": float(np.mean(f_k)),
    }
    if len(classes) == 2:
        both = len(set(y_true.tolist())) == 2
        metrics["roc_auc"] = float(roc_auc_score(y_true, probs[:, 1])) if both else float("nan")
    metrics["per_class"] = {
        name: {"precision": float(p_k[k]), "recall": float(r_k[k]), "f1": float(f_k[k]), "support": int(n_k[k])}
        for k, name in enumerate(classes)
    }
    metrics["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return metrics
