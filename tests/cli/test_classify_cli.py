"""`lstmkit classify` end to end on small real data (IMDB reviews), and its errors, through main()."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from lstmkit.cli.main import main

TINY = ["--max-tokens", "48", "--vocab-size", "1500", "--embed-dim", "12", "--hidden-size", "6", "--batch-size", "16",
        "--epochs", "1", "--quiet"]
BLOCKS = {"train_neg": 0, "train_pos": 12_500, "test_neg": 25_000, "test_pos": 37_500}  # IMDB CSV row blocks


def imdb_rows(block: str, n: int) -> pd.DataFrame:
    path = Path(os.environ["LSTMKIT_DATA_DIR"]) / "imdb" / "imdb_reviews.csv.gz"
    frame = pd.read_csv(path, skiprows=range(1, BLOCKS[block] + 1), nrows=n, dtype=str)
    return frame.assign(label=frame["label"].map({"0": "neg", "1": "pos"}))


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def imdb_files(tmp_path_factory) -> Path:
    """train.csv.gz / test.csv (60 + 60 and 30 + 30 real reviews) and the same reviews as aclImdb-style class
    folders train/{neg,pos}/{id}_{rating}.txt and test/{neg,pos}/..."""
    folder = tmp_path_factory.mktemp("imdb")
    train = pd.concat([imdb_rows("train_neg", 60), imdb_rows("train_pos", 60)])
    test = pd.concat([imdb_rows("test_neg", 30), imdb_rows("test_pos", 30)])
    train.to_csv(folder / "train.csv.gz", index=False)
    test.to_csv(folder / "test.csv", index=False)
    for split, frame in (("train", train), ("test", test)):
        for row in frame.itertuples():
            path = folder / split / row.label / f"{row.id}_{row.rating}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(row.text)
    return folder


@pytest.mark.data
def test_train_on_csv_then_predict_texts_and_csv(imdb_files, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run(capsys, "classify", "train", "--csv", imdb_files / "train.csv.gz", "--test-csv",
                           imdb_files / "test.csv", "--out", out, *TINY)
    assert code == 0
    assert stdout.startswith(f"saved {out}: test accuracy ") and "TF-IDF + logistic regression accuracy" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1_macro", "roc_auc"} <= set(metrics["test"])
    assert {"accuracy", "precision", "recall", "f1_macro", "roc_auc"} <= set(metrics["baselines"]["tfidf_logreg"])

    code, stdout, _ = _run(capsys, "classify", "predict", out, "A masterpiece.", "A waste of two hours.")
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert code == 0 and len(lines) == 2
    assert lines[0]["label"] in ("neg", "pos") and sum(lines[0]["probabilities"].values()) == pytest.approx(1.0)

    code, stdout, _ = _run(capsys, "classify", "predict", out, "--csv", imdb_files / "test.csv", "--text-col", "text")
    assert code == 0 and len(stdout.splitlines()) == 60

    code, _, err = _run(capsys, "classify", "predict", out, "Fine.", "--explain")
    assert code == 2
    assert err == "error: explanations need a model trained with --pooling attention; this run uses max\n"


@pytest.mark.data
def test_train_on_class_folders_with_attention_and_explain(imdb_files, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, _ = _run(capsys, "classify", "train", "--dir", imdb_files / "train", "--test-dir", imdb_files / "test",
                      "--pooling", "attention", "--no-bidirectional", "--no-baseline", "--out", out, *TINY)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["baselines"] == {} and metrics["run"]["test_texts"] == 60
    assert json.loads((out / "config.json").read_text())["model"]["bidirectional"] is False
    code, stdout, _ = _run(capsys, "classify", "predict", out, "Truly <i>awful</i> acting!", "--explain")
    line = json.loads(stdout)
    assert code == 0 and [w for w, _ in line["attention"]] == ["truly", "awful", "acting"]
    assert sum(w for _, w in line["attention"]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.data
def test_dry_run_on_imdb_subset_flags(imdb_files, tmp_path, capsys):
    code, stdout, _ = _run(capsys, "classify", "train", "--csv", imdb_files / "train.csv.gz", "--dry-run",
                           "--no-baseline", "--out", tmp_path / "run", *TINY)
    assert code == 0 and "(0 epochs, 2 steps" in stdout and "stopped: max_steps" in stdout


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty_dir" / "notes.txt").write_text("not a class folder")
    (tmp_path / "cols.csv").write_text("review,stars\ngood,5\nbad,1\n")
    (tmp_path / "one.csv").write_text("text,label\ngood,pos\nnice,pos\n")
    (tmp_path / "blank.tsv").write_text("text\tlabel\ngood\tpos\n \tneg\nbad\tneg\n")
    (tmp_path / "latin.csv").write_bytes("text,label\nna\u00efve,pos\n".encode("latin-1"))
    return {p.name.split(".")[0]: p for p in tmp_path.iterdir()}


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give exactly one of data, csv and dir, got none"),
        (["--data", "macbeth"], "dataset 'macbeth' has no labelled texts; labelled datasets: imdb"),
        (["--dir", "{empty_dir}"], "{empty_dir} has no class folders; expected one sub-folder of text files per class"),
        (["--csv", "{cols}"], "{cols} has no column 'text', 'label'; its columns are 'review', 'stars'"),
        (["--csv", "{one}"], "{one}: the label column has one class ('pos'); classification needs at least two"),
        (["--csv", "{blank}"],
         "{blank}, column 'text': 1 of 3 rows have an empty text (data rows 2); remove or fill them"),
        (["--csv", "{latin}"], "{latin} is not UTF-8 text (byte 0xef at offset 13); convert it to UTF-8"),
        (["--test-csv", "{one}", "--dir", "{empty_dir}"], "test_csv goes with csv and test_dir with dir"),
    ],
)
def test_train_errors_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    files = _bad_files(tmp_path)
    out = tmp_path / "run"
    args = [a.format(**files) for a in args]
    code, stdout, err = _run(capsys, "classify", "train", *args, "--out", out, *TINY)
    assert (code, stdout, err) == (2, "", f"error: {message.format(**files)}\n")
    assert not out.exists()


def test_unknown_dataset_name(tmp_path, capsys):
    from lstmkit.data import REGISTRY

    code, _, err = _run(capsys, "classify", "train", "--data", "imbd", "--out", tmp_path / "run")
    assert code == 2 and err == f"error: unknown dataset 'imbd'; known datasets: {', '.join(sorted(REGISTRY))}\n"


def test_predict_errors(tmp_path, capsys):
    code, _, err = _run(capsys, "classify", "predict", tmp_path)
    assert code == 2
    assert err == "error: give the texts to classify as arguments or with --csv FILE, not both or neither\n"
    code, _, err = _run(capsys, "classify", "predict", tmp_path / "nope", "text")
    assert code == 2 and err == f"error: run folder not found: {tmp_path / 'nope'}\n"
