import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit import LstmkitError
from lstmkit.config import ClassificationDataConfig
from lstmkit.data import locate
from lstmkit.data.labelled import (
    EncodedSet,
    LabelledTexts,
    label_order,
    load_splits,
    read_class_folders,
    read_imdb,
    read_table,
    stratified_folds,
    stratified_split,
)

IMDB_ROWS = {"train_neg": 0, "train_pos": 12_500, "test_neg": 25_000, "test_pos": 37_500}  # sorted blocks


def imdb_rows(block: str, n: int) -> pd.DataFrame:
    """n real reviews of one (split, label) block of the IMDB reviews CSV, read without parsing the rest."""
    path = Path(os.environ["LSTMKIT_DATA_DIR"]) / "imdb" / "imdb_reviews.csv.gz"
    return pd.read_csv(path, skiprows=range(1, IMDB_ROWS[block] + 1), nrows=n, dtype=str)


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    return pd.concat([imdb_rows("train_neg", 30), imdb_rows("train_pos", 30)], ignore_index=True)


@pytest.mark.data
@pytest.mark.parametrize("name, sep", [("r.csv", ","), ("r.tsv", "\t"), ("r.txt", "\t"), ("r.csv.gz", ",")])
def test_read_table_by_extension_sniffing_and_gzip(reviews, tmp_path, name, sep):
    path = tmp_path / name
    data = reviews.to_csv(sep=sep, index=False).encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    table = read_table(path, "text", "rating")
    assert table.texts == reviews["text"].tolist()
    assert table.labels == reviews["rating"].tolist()
    assert label_order(table.labels) == sorted(set(table.labels), key=int)


def test_label_order_numeric_then_alphabetical():
    assert label_order(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert label_order(["pos", "neg", "10"]) == ["10", "neg", "pos"]


def _csv(tmp_path, text: str, name="t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_columns(tmp_path):
    path = _csv(tmp_path, "review,sentiment\ngood,pos\n")
    with pytest.raises(LstmkitError) as err:
        read_table(path, "text", "label")
    assert str(err.value) == f"{path} has no column 'text', 'label'; its columns are 'review', 'sentiment'"


def test_empty_texts_and_labels_are_refused_with_their_count(tmp_path):
    path = _csv(tmp_path, 'text,label\ngood,pos\n"  ",neg\n,neg\nfine,pos\n')
    with pytest.raises(LstmkitError) as err:
        read_table(path, "text", "label")
    assert str(err.value) == (
        f"{path}, column 'text': 2 of 4 rows have an empty text (data rows 2, 3); remove or fill them"
    )
    path = _csv(tmp_path, "text,label\ngood,pos\nbad,\n", "l.csv")
    with pytest.raises(LstmkitError) as err:
        read_table(path, "text", "label")
    assert str(err.value) == (
        f"{path}, column 'label': 1 of 2 rows have an empty label (data rows 2); remove or fill them"
    )


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\u00e9 cr\u00e8me,pos\n".encode("latin-1"))
    with pytest.raises(LstmkitError) as err:
        read_table(path, "text", "label")
    assert str(err.value) == f"{path} is not UTF-8 text (byte 0xe9 at offset 14); convert it to UTF-8"


def test_class_folders(tmp_path):
    for label, texts in {"neg": ["awful", "dull"], "pos": ["lovely"]}.items():
        (tmp_path / label).mkdir()
        for k, t in enumerate(texts):
            (tmp_path / label / f"{k}.txt").write_text(t)
    (tmp_path / ".hidden").mkdir()
    data = read_class_folders(tmp_path)
    assert data.texts == ["awful", "dull", "lovely"] and data.labels == ["neg", "neg", "pos"]
    (tmp_path / "pos" / "2.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(LstmkitError) as err:
        read_class_folders(tmp_path)
    bad = tmp_path / "pos" / "2.txt"
    assert str(err.value) == f"{bad} is not UTF-8 text (byte 0xff at offset 0); convert it to UTF-8"


def test_empty_files_in_class_folders(tmp_path):
    for label in ("neg", "pos"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "1.txt").write_text("some words")
    (tmp_path / "pos" / "2.txt").write_text(" \n")
    with pytest.raises(LstmkitError) as err:
        read_class_folders(tmp_path)
    assert str(err.value) == f"{tmp_path}: 1 of 3 text files are empty (pos/2.txt); remove them"


def test_folder_without_class_folders(tmp_path):
    (tmp_path / "a.txt").write_text("loose file")
    with pytest.raises(LstmkitError) as err:
        read_class_folders(tmp_path)
    assert str(err.value) == f"{tmp_path} has no class folders; expected one sub-folder of text files per class"


def test_single_class_is_refused(tmp_path):
    path = _csv(tmp_path, "text,label\ngood,pos\nfine,pos\nnice,pos\n")
    with pytest.raises(LstmkitError) as err:
        load_splits(ClassificationDataConfig(csv=str(path)), seed=0)
    assert str(err.value) == f"{path}: the label column has one class ('pos'); classification needs at least two"


def test_stratified_split_and_folds_keep_class_shares():
    labels = ["a"] * 40 + ["b"] * 20
    train, held = stratified_split(labels, 0.25, seed=0)
    assert sorted(train + held) == list(range(60)) and len(held) == 15
    assert sum(labels[r] == "b" for r in held) == 5
    folds = stratified_folds(labels, 4, seed=0)
    assert sorted(r for _, held in folds for r in held) == list(range(60))
    assert all(sum(labels[r] == "b" for r in held) == 5 for _, held in folds)
    with pytest.raises(LstmkitError) as err:
        stratified_folds(labels[:42], 3, seed=0)
    assert str(err.value) == "3-fold cross-validation needs at least 3 examples per class; the smallest class has 2"


def test_encoded_set_buckets_by_length_and_trims_training_batches():
    rng = np.random.default_rng(0)
    ids = [list(range(1, int(n) + 1)) for n in rng.integers(1, 60, size=300)]
    data = EncodedSet(ids, torch.arange(300), batch_size=16)
    batches = list(data.epoch(torch.Generator().manual_seed(1)))
    assert len(batches) == len(data) == 19
    assert sorted(int(t) for b in batches for t in b.targets) == list(range(300))
    for b in batches:
        assert b.inputs.shape[1] == int(b.lengths.max())
        assert b.lengths.tolist() == [len(ids[int(t)]) for t in b.targets]
    padding = sum(int((b.lengths.max() - b.lengths).sum()) for b in batches)
    assert padding < 0.05 * sum(map(len, ids))  # bucketing: little padding
    trimmed = list(EncodedSet(ids, torch.arange(300), 16, trim=True).epoch(torch.Generator().manual_seed(1)))
    assert all(bool((b.lengths == b.inputs.shape[1]).all()) for b in trimmed)
    for b, t in zip(batches, trimmed, strict=True):
        assert torch.equal(b.targets, t.targets) and torch.equal(t.inputs, b.inputs[:, : t.inputs.shape[1]])
    seen = sorted(int(r) for rows, _ in data.in_order() for r in rows)
    assert seen == list(range(300))


@pytest.mark.data
def test_imdb_official_split():
    path = locate("imdb")
    assert path == Path(os.environ["LSTMKIT_DATA_DIR"]).resolve() / "imdb" / "imdb_reviews.csv.gz"
    train, test = read_imdb(path)
    assert len(train) == len(test) == 25_000
    assert train.labels.count("pos") == test.labels.count("neg") == 12_500
    assert train.texts[0] != test.texts[0] and isinstance(train, LabelledTexts)
