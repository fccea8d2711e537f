"""Labelled texts for classification: reading CSV/TSV files, class folders and the IMDB reviews; stratified
hold-outs; and length-bucketed batches with true lengths.

Labels are kept as strings; their order (numeric when every label is a number, else alphabetical) fixes the
class ids.
"""

import csv
import gzip
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch import Tensor

from ..config import ClassificationDataConfig
from ..errors import LstmkitError
from .batch import Batch, bucketed_rows, rows_by_length
from .registry import get_dataset, locate
from .vectorizer import pad

IMDB_LABELS = {"0": "neg", "1": "pos"}
LABELLED_DATASETS = ("imdb",)  # registered datasets laid out as the IMDB reviews CSV


@dataclass
class LabelledTexts:
    """Parallel lists of texts and their string labels."""

    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, rows: Sequence[int]) -> "LabelledTexts":
        return LabelledTexts([self.texts[r] for r in rows], [self.labels[r] for r in rows])


def label_order(labels: Sequence[str]) -> list[str]:
    """The distinct labels, in numeric order when all are numbers, else alphabetical."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def _decode(raw: bytes, path: Path) -> str:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise LstmkitError(f"{path} is not a readable gzip file ({err})") from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise LstmkitError(
            f"{path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); convert it to UTF-8"
        ) from None


def _separator(path: Path, text: str) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".tsv", ".tab"):
        return "\t"
    if suffixes and suffixes[-1] == ".csv":
        return ","
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def _read_columns(path: Path, columns: Sequence[str]) -> dict[str, list[str]]:
    """The named columns of a comma- or tab-separated file with a header row, as lists of strings."""
    if not path.is_file():
        raise LstmkitError(f"file not found: {path}")
    text = _decode(path.read_bytes(), path)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=_separator(path, text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise LstmkitError(f"cannot read {path} as a table: {str(err).strip()}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LstmkitError(
            f"{path} has no column {', '.join(repr(c) for c in missing)}; its columns are "
            f"{', '.join(repr(str(c)) for c in frame.columns)}"
        )
    return {c: frame[c].tolist() for c in columns}


def read_table(path: str | Path, text_col: str, label_col: str | None) -> LabelledTexts:
    """Reads a comma- or tab-separated file (by extension, else sniffed; gzip allowed) with a header row.

    Rows whose text is empty (or only spaces) are refused with their count, as are missing labels. With
    ``label_col`` None (prediction) the labels are empty strings.
    """
    path = Path(path)
    columns = _read_columns(path, [text_col] if label_col is None else [text_col, label_col])
    texts = columns[text_col]
    _refuse_empty(texts, f"{path}, column {text_col!r}", "text")
    if label_col is None:
        return LabelledTexts(texts, [""] * len(texts))
    labels = [s.strip() for s in columns[label_col]]
    _refuse_empty(labels, f"{path}, column {label_col!r}", "label")
    return LabelledTexts(texts, labels)


def _refuse_empty(values: Sequence[str], where: str, what: str) -> None:
    empty = [row for row, value in enumerate(values, start=1) if not value.strip()]
    if empty:
        shown = ", ".join(str(r) for r in empty[:10]) + (", ..." if len(empty) > 10 else "")
        raise LstmkitError(
            f"{where}: {len(empty)} of {len(values)} rows have an empty {what} (data rows {shown}); "
            f"remove or fill them"
        )


def read_class_folders(folder: str | Path) -> LabelledTexts:
    """Reads a folder with one sub-folder per class, each holding UTF-8 text files (every file is one text;
    hidden files are skipped), as Keras's text_dataset_from_directory does."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LstmkitError(f"folder not found: {folder}")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise LstmkitError(f"{folder} has no class folders; expected one sub-folder of text files per class")
    texts, labels, empty = [], [], []
    for cls in classes:
        for file in sorted(p for p in cls.rglob("*") if p.is_file() and not p.name.startswith(".")):
            texts.append(_decode(file.read_bytes(), file))
            labels.append(cls.name)
            if not texts[-1].strip():
                empty.append(str(file.relative_to(folder)))
    if empty:
        shown = ", ".join(empty[:10]) + (", ..." if len(empty) > 10 else "")
        raise LstmkitError(f"{folder}: {len(empty)} of {len(texts)} text files are empty ({shown}); remove them")
    return LabelledTexts(texts, labels)


def read_imdb(
    path: str | Path, splits: Sequence[str] = ("train", "test"), label_col: str = "label"
) -> list[LabelledTexts]:
    """The official splits of the IMDB reviews CSV (columns split, id, rating, label, text), read once.
    With label_col "label" the labels are neg / pos; "rating" gives the stars (1-4, 7-10)."""
    path = Path(path)
    columns = _read_columns(path, ["split", "text", label_col])
    labels = [IMDB_LABELS.get(v, v) for v in columns[label_col]] if label_col == "label" else columns[label_col]
    parts = []
    for split in splits:
        rows = [r for r, s in enumerate(columns["split"]) if s == split]
        parts.append(LabelledTexts([columns["text"][r] for r in rows], [labels[r] for r in rows]))
    return parts


def check_classes(data: LabelledTexts, where: str) -> list[str]:
    """The class names of a training set; refuses a set with a single class."""
    classes = label_order(data.labels)
    if len(classes) < 2:
        raise LstmkitError(
            f"{where}: the label column has one class ({classes[0]!r}); classification needs at least two"
        )
    return classes


def stratified_split(labels: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Row indices of a training part and a held-out part with ``fraction`` of the rows, each class
    represented in both in proportion."""
    rows = np.arange(len(labels))
    counts = pd.Series(list(labels)).value_counts()
    if int(counts.min()) < 2:
        raise LstmkitError(
            f"class {counts.idxmin()!r} has a single example; every class needs at least two for a stratified split"
        )
    try:
        train, held = train_test_split(rows, test_size=fraction, random_state=seed, stratify=list(labels))
    except ValueError as err:
        raise LstmkitError(f"cannot hold out {fraction:.0%} of {len(labels)} texts per class: {err}") from None
    return sorted(train.tolist()), sorted(held.tolist())


def stratified_folds(labels: Sequence[str], k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """k (train rows, held-out rows) pairs covering every row once as held-out."""
    smallest = int(pd.Series(list(labels)).value_counts().min())
    if smallest < k:
        raise LstmkitError(
            f"{k}-fold cross-validation needs at least {k} examples per class; the smallest class has {smallest}"
        )
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), list(labels))
    return [(train.tolist(), held.tolist()) for train, held in folds]


class EncodedSet:
    """Encoded texts with class ids; yields padded batches with true lengths.

    Args:
        ids: one id list per text (each at least one id long).
        targets: (N,) class ids.
        batch_size: texts per batch.
        trim: cut every training batch to its shortest text, so that it holds no padding at all. The
            length bucketing of ``epoch`` keeps the words lost this way to about 1% (different words each
            epoch), and a batch without padding runs PyTorch's fused CPU kernels instead of packed sequences,
            whose backward pass is several times slower. Evaluation batches are never trimmed.
    """

    def __init__(self, ids: Sequence[Sequence[int]], targets: Tensor, batch_size: int, trim: bool = False) -> None:
        self.ids, self.targets, self.batch_size, self.trim = list(ids), targets, batch_size, trim
        self.lengths = np.array([len(s) for s in self.ids])

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.ids) // self.batch_size)

    def _batch(self, rows: Sequence[int], trim: bool = False) -> Batch:
        seqs = [self.ids[r] for r in rows]
        if trim:
            shortest = min(len(s) for s in seqs)
            seqs = [s[:shortest] for s in seqs]
        inputs, lengths = pad(seqs)                                   # (B, T), (B,)
        return Batch(inputs, self.targets[list(rows)], lengths)

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        """Shuffled, length-bucketed training batches: the texts are shuffled, cut into pools of 100 batches,
        sorted by length within a pool and cut into batches, whose order is shuffled again; texts of similar
        length share a batch, so little time goes into padding."""
        for rows in bucketed_rows(self.lengths, self.batch_size, 100, generator):
            yield self._batch(rows, self.trim)

    def in_order(self) -> Iterator[tuple[np.ndarray, Batch]]:
        """Evaluation batches sorted by length, each with the row indices it holds."""
        for rows in rows_by_length(self.lengths, self.batch_size):
            yield rows, self._batch(rows.tolist())


@dataclass
class LabelledSplits:
    """The texts of one classification job: train (what the model and the vectoriser learn from), val
    (early stopping), test (the reported figures; the official split when there is one), and the classes."""

    train: LabelledTexts
    val: LabelledTexts
    test: LabelledTexts
    classes: list[str]
    test_source: str  # "official" or "hold-out"


def _source_sets(config: ClassificationDataConfig) -> tuple[LabelledTexts, LabelledTexts | None, str]:
    if config.data is not None:
        dataset = get_dataset(config.data)
        if dataset.name not in LABELLED_DATASETS:
            raise LstmkitError(
                f"dataset {dataset.name!r} has no labelled texts; labelled datasets: {', '.join(LABELLED_DATASETS)}"
            )
        if config.label_col not in ("label", "rating"):
            raise LstmkitError(
                f"dataset {dataset.name!r} has the label columns 'label' (neg / pos) and 'rating' (stars), "
                f"got {config.label_col!r}"
            )
        train, test = read_imdb(locate(dataset.name), ("train", "test"), config.label_col)
        return train, test, dataset.name
    if config.csv is not None:
        train = read_table(config.csv, config.text_col, config.label_col)
        test = read_table(config.test_csv, config.text_col, config.label_col) if config.test_csv else None
        return train, test, str(config.csv)
    train = read_class_folders(config.dir)
    test = read_class_folders(config.test_dir) if config.test_dir else None
    return train, test, str(config.dir)


def load_splits(config: ClassificationDataConfig, seed: int) -> LabelledSplits:
    """Reads the configured source and splits it: the official test set when there is one (else a
    stratified hold-out of ``test_fraction``), then a stratified validation hold-out of ``val_fraction``."""
    data, test, where = _source_sets(config)
    classes = check_classes(data, where)
    source = "official"
    if test is None:
        rest, held = stratified_split(data.labels, config.test_fraction, seed)
        data, test, source = data.subset(rest), data.subset(held), "hold-out"
    unknown = sorted(set(test.labels) - set(classes))
    if unknown:
        raise LstmkitError(
            f"the test set has labels never seen in training: {', '.join(repr(u) for u in unknown)}; "
            f"training classes: {', '.join(repr(c) for c in classes)}"
        )
    train_rows, val_rows = stratified_split(data.labels, config.val_fraction, seed)
    return LabelledSplits(data.subset(train_rows), data.subset(val_rows), test, classes, source)
