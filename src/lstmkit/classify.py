"""Text classification: ``train(...)`` on labelled texts, ``load(folder).predict([...])`` with the result.

Example:
    >>> from lstmkit import classify
    >>> clf = classify.train(data="imdb", out="runs/imdb", max_time=1500)
    >>> clf.metrics["test"]["accuracy"], clf.metrics["baselines"]["tfidf_logreg"]["accuracy"]
    >>> classify.load("runs/imdb").predict(["A wonderful, moving film."])
"""

from .tasks.text_classification import (
    ClassificationObjective,
    Classifier,
    cross_validate,
    default_config,
    load,
    tfidf_logreg_probabilities,
    train,
)

__all__ = [
    "ClassificationObjective",
    "Classifier",
    "cross_validate",
    "default_config",
    "load",
    "tfidf_logreg_probabilities",
    "train",
]
