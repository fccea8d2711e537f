import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from lstmkit import LstmkitError, classify
from lstmkit.data import REGISTRY

pytestmark = pytest.mark.data

TINY = dict(max_tokens=64, vocab_size=2000, embed_dim=16, hidden_size=8, batch_size=32, quiet=True)
BLOCKS = {"train_neg": 0, "train_pos": 12_500, "test_neg": 25_000, "test_pos": 37_500}  # IMDB CSV row blocks
KEYS = {"accuracy", "precision", "recall", "f1_macro"}


def imdb_rows(block: str, n: int) -> pd.DataFrame:
    """n real reviews of one (split, label) block of the IMDB reviews CSV."""
    path = Path(os.environ["LSTMKIT_DATA_DIR"]) / "imdb" / "imdb_reviews.csv.gz"
    frame = pd.read_csv(path, skiprows=range(1, BLOCKS[block] + 1), nrows=n, dtype=str)
    return frame.assign(label=frame["label"].map({"0": "neg", "1": "pos"}))


@pytest.fixture(scope="module")
def imdb_csvs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A binary train/test pair (IMDB official splits, 80 + 80 and 50 + 50 reviews) and a 4-class set whose
    labels are the reviews' star ratings 1, 4, 7 and 10."""
    folder = tmp_path_factory.mktemp("imdb")
    train = pd.concat([imdb_rows("train_neg", 80), imdb_rows("train_pos", 80)])
    test = pd.concat([imdb_rows("test_neg", 50), imdb_rows("test_pos", 50)])
    stars = pd.concat([imdb_rows("train_neg", 200), imdb_rows("train_pos", 200)])
    stars = stars[stars["rating"].isin(["1", "4", "7", "10"])]
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.tsv", sep="\t", index=False)
    stars.to_csv(folder / "stars.csv", index=False)
    return folder / "train.csv", folder / "test.tsv", folder / "stars.csv"


def test_binary_end_to_end_with_official_test_split(imdb_csvs, tmp_path):
    train_csv, test_tsv, _ = imdb_csvs
    out = tmp_path / "run"
    clf = classify.train(train_csv, test_csv=test_tsv, out=out, epochs=3, lr=0.01, **{**TINY, "batch_size": 16})
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == KEYS | {"roc_auc", "per_class"}
    assert set(metrics["baselines"]["tfidf_logreg"]) == KEYS | {"roc_auc", "per_class", "seconds"}
    assert metrics["run"]["test_source"] == "official" and metrics["run"]["test_texts"] == 100
    assert metrics["baselines"]["tfidf_logreg"]["accuracy"] > 0.55
    # the reported test metrics are those of the saved model's own predictions on the official test texts
    test = pd.read_csv(test_tsv, sep="\t", dtype=str)
    truth = (test["label"] == "pos").to_numpy()
    p_pos = classify.load(out).predict_proba(test["text"].tolist())[:, 1]
    predicted = p_pos > 0.5
    assert metrics["test"]["accuracy"] == pytest.approx(float(np.mean(predicted == truth)))
    assert metrics["test"]["recall"] == pytest.approx(float(predicted[truth].mean()))
    assert metrics["test"]["roc_auc"] == pytest.approx(roc_auc_score(truth, p_pos), abs=1e-6)
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    matrices = json.loads((out / "confusion_matrix.json").read_text())
    assert matrices["classes"] == ["neg", "pos"] and np.sum(matrices["lstm"]) == 100
    assert np.trace(matrices["tfidf_logreg"]) == round(100 * metrics["baselines"]["tfidf_logreg"]["accuracy"])
    assert np.trace(matrices["lstm"]) == round(100 * metrics["test"]["accuracy"])
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "vectorizer.json").read_text())["max_tokens"] == 64
    assert not list(tmp_path.glob(".run.*"))  # no temporary folder left behind

    loaded = classify.load(out)
    texts = ["An absolute delight from start to finish.", "Dull, lifeless and far too long.<br />Avoid."]
    probs = loaded.predict_proba(texts)
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_proba(texts), probs, atol=1e-6)
    prediction = loaded.predict(texts)[0]
    assert prediction["label"] in ("neg", "pos") and set(prediction["probabilities"]) == {"neg", "pos"}
    with pytest.raises(LstmkitError) as err:
        loaded.explain(texts[0])
    assert str(err.value) == "explanations need a model trained with --pooling attention; this run uses max"
    with pytest.raises(LstmkitError) as err:
        loaded.predict(["fine", "  ", ""])
    assert str(err.value) == "2 of 3 texts are empty (numbers 2, 3)"


def test_multi_class_end_to_end_with_stratified_hold_out_and_attention(imdb_csvs, tmp_path):
    _, _, stars_csv = imdb_csvs
    clf = classify.train(stars_csv, label_col="rating", out=tmp_path / "run", epochs=1, pooling="attention",
                         bidirectional=False, **TINY)
    assert clf.classes == ["1", "4", "7", "10"]
    test = clf.metrics["test"]
    assert set(test) == KEYS | {"per_class"}  # no ROC-AUC beyond two classes
    assert set(test["per_class"]) == {"1", "4", "7", "10"}
    assert clf.metrics["run"]["test_source"] == "hold-out"
    n_test = clf.metrics["run"]["test_texts"]
    assert sum(c["support"] for c in test["per_class"].values()) == n_test
    matrix = np.array(json.loads((tmp_path / "run" / "confusion_matrix.json").read_text())["lstm"])
    assert matrix.shape == (4, 4) and matrix.sum() == n_test
    assert np.trace(matrix) == round(test["accuracy"] * n_test)
    probs = clf.predict_proba(["One of the worst films I have seen.", "Superb."])
    assert probs.shape == (2, 4) and np.allclose(probs.sum(axis=1), 1.0)
    words = clf.explain("The acting was superb, the plot <br />a mess!")
    assert [w for w, _ in words] == ["the", "acting", "was", "superb", "the", "plot", "a", "mess"]
    assert sum(weight for _, weight in words) == pytest.approx(1.0)


def test_cross_validation_on_request(imdb_csvs, tmp_path):
    train_csv, test_tsv, _ = imdb_csvs
    clf = classify.train(train_csv, test_csv=test_tsv, out=tmp_path / "run", epochs=1, cv_folds=2, **TINY)
    cv = clf.metrics["cv"]
    assert cv["folds"] == 2 and set(cv) == {"folds", "lstm", "tfidf_logreg"}
    assert len(cv["lstm"]["accuracy"]["folds"]) == 2
    assert cv["lstm"]["accuracy"]["mean"] == pytest.approx(np.mean(cv["lstm"]["accuracy"]["folds"]))


def test_unknown_and_unlabelled_datasets_write_nothing(tmp_path):
    with pytest.raises(LstmkitError) as err:
        classify.train(data="imbd", out=tmp_path / "run")
    assert str(err.value) == f"unknown dataset 'imbd'; known datasets: {', '.join(sorted(REGISTRY))}"
    with pytest.raises(LstmkitError) as err:
        classify.train(data="macbeth", out=tmp_path / "run")
    assert str(err.value) == "dataset 'macbeth' has no labelled texts; labelled datasets: imdb"
    with pytest.raises(LstmkitError) as err:
        classify.train(data="imdb", label_col="stars", out=tmp_path / "run")
    assert str(err.value) == (
        "dataset 'imdb' has the label columns 'label' (neg / pos) and 'rating' (stars), got 'stars'"
    )
    with pytest.raises(LstmkitError) as err:
        classify.train(out=tmp_path / "run")
    assert str(err.value) == "give exactly one of data, csv and dir, got none"
    assert list(tmp_path.iterdir()) == []


def test_test_labels_must_be_known(imdb_csvs, tmp_path):
    train_csv = imdb_csvs[0]
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"text": ["great", "awful"], "label": ["positive", "neg"]}).to_csv(wrong, index=False)
    with pytest.raises(LstmkitError) as err:
        classify.train(train_csv, test_csv=wrong, out=tmp_path / "run", **TINY)
    assert str(err.value) == (
        "the test set has labels never seen in training: 'positive'; training classes: 'neg', 'pos'"
    )
    assert not (tmp_path / "run").exists()
