"""Labelled recordings for spoken-word recognition: the Free Spoken Digit Dataset (read straight from its
tarball) and folders of class folders; the official, speaker-held-out and stratified splits; and batches of
padded feature sequences with true lengths, SpecAugment-masked while training.

Shape legend: B batch, T frames, M features per frame.
"""

import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..config import SpeechDataConfig
from ..errors import LstmkitError
from .audio import FeatureSpec, Featurizer, read_wav, spec_augment
from .batch import Batch, bucketed_rows, rows_by_length
from .labelled import label_order, stratified_split
from .registry import locate

FSDD_TEST_INDICES = range(5)   # the dataset's README: recordings 0-4 of each speaker and digit are the test set


@dataclass
class Recording:
    """One labelled utterance: its name (file or archive member), label, speaker ("" when unknown), samples."""

    name: str
    label: str
    speaker: str
    samples: np.ndarray
    rate: int


@dataclass
class SpeechSplits:
    """train (what the model learns from), val (early stopping), test (the reported figures), the classes,
    and where the test set comes from ("official", "speaker NAME" or "hold-out")."""

    train: list[Recording]
    val: list[Recording]
    test: list[Recording]
    classes: list[str]
    test_source: str


def feature_spec(config: SpeechDataConfig) -> FeatureSpec:
    return FeatureSpec(config.sample_rate, config.feature, config.n_mels, config.n_mfcc, config.win_ms, config.hop_ms)


def read_fsdd() -> list[Recording]:
    """The 3,000 FSDD recordings, read from recordings.tar.gz without extracting it; names are
    ``{digit}_{speaker}_{index}.wav``."""
    path = locate("fsdd", "recordings.tar.gz")
    recordings = []
    with tarfile.open(path) as tar:
        for member in tar:
            if not (member.isfile() and member.name.endswith(".wav")):
                continue
            name = member.name.rsplit("/", 1)[-1]
            digit, speaker, _ = name[:-4].split("_")
            samples, rate = read_wav(tar.extractfile(member).read(), f"{path}:{member.name}")
            recordings.append(Recording(name, digit, speaker, samples, rate))
    if not recordings:
        raise LstmkitError(f"{path} holds no .wav files; expected the FSDD recordings")
    return recordings


def fsdd_index(recording: Recording) -> int:
    return int(recording.name[:-4].rsplit("_", 1)[1])


def read_folder(folder: str | Path) -> list[Recording]:
    """Recordings from ``folder/<label>/*.wav`` (sub-folders sorted; each sub-folder's name is its label)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LstmkitError(f"folder not found: {folder}")
    files = sorted(p for p in folder.glob("*/*") if p.is_file() and p.suffix.lower() == ".wav")
    if not files:
        raise LstmkitError(f"no .wav files in {folder}; expected one sub-folder of .wav files per label")
    return [Recording(p.name, p.parent.name, "", *read_wav(p)) for p in files]


def _stratified(recordings: list[Recording], fraction: float, seed: int) -> tuple[list[Recording], list[Recording]]:
    keep, held = stratified_split([r.label for r in recordings], fraction, seed)
    return [recordings[k] for k in keep], [recordings[k] for k in held]


def load_speech_splits(config: SpeechDataConfig, seed: int) -> SpeechSplits:
    """The splits of the configured source. FSDD: the official split (recordings 0-4 test), or with
    ``test_speaker`` that speaker's 500 recordings as the test set and the other speakers' for training.
    A folder: ``test_dir`` as the test set, else a stratified hold-out. Validation is always a stratified share
    of the training recordings."""
    if config.data == "fsdd":
        everything = read_fsdd()
        if config.test_speaker:
            speakers = sorted({r.speaker for r in everything})
            if config.test_speaker not in speakers:
                raise LstmkitError(f"test_speaker must be one of {', '.join(speakers)}, got {config.test_speaker!r}")
            train = [r for r in everything if r.speaker != config.test_speaker]
            test = [r for r in everything if r.speaker == config.test_speaker]
            source = f"speaker {config.test_speaker}"
        else:
            train = [r for r in everything if fsdd_index(r) not in FSDD_TEST_INDICES]
            test = [r for r in everything if fsdd_index(r) in FSDD_TEST_INDICES]
            source = "official"
    elif config.test_dir:
        train, test, source = read_folder(config.dir), read_folder(config.test_dir), "official"
    else:
        train, test = _stratified(read_folder(config.dir), config.test_fraction, seed)
        source = "hold-out"
    classes = label_order([r.label for r in train])
    if len(classes) < 2:
        raise LstmkitError(f"a recogniser needs at least 2 labels, got {len(classes)} ({', '.join(classes)})")
    unknown = sorted({r.label for r in test} - set(classes))
    if unknown:
        raise LstmkitError(f"test labels absent from training: {', '.join(unknown)}")
    train, val = _stratified(train, config.val_fraction, seed)
    return SpeechSplits(train, val, test, classes, source)


def pad_features(features: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pads (T_b, M) feature sequences with zeros -> (B, T, M) and lengths (B,)."""
    lengths = torch.tensor([len(f) for f in features])                          # (B,)
    return torch.nn.utils.rnn.pad_sequence(list(features), batch_first=True), lengths


class FeatureSet:
    """Feature sequences with class ids; yields padded batches with true lengths.

    Args:
        features: one (T, M) tensor per recording.
        targets: (N,) class ids.
        batch_size: recordings per batch.
        augment: SpecAugment settings (time_masks, time_mask_frames, freq_masks, freq_mask_bins) applied to
            training batches, the masks drawn from the epoch's generator so that a resumed run draws the same;
            None: no masking.
    """

    def __init__(self, features: Sequence[Tensor], targets: Tensor, batch_size: int,
                 augment: tuple[int, int, int, int] | None = None) -> None:
        self.features, self.targets, self.batch_size, self.augment = list(features), targets, batch_size, augment
        self.lengths = np.array([len(f) for f in self.features])

    def __len__(self) -> int:
        """Batches per epoch."""
        return -(-len(self.features) // self.batch_size)

    def _batch(self, rows: Sequence[int], generator: torch.Generator | None = None) -> Batch:
        seqs = [self.features[r] for r in rows]
        if generator is not None and self.augment is not None and any(self.augment):
            time_masks, time_width, freq_masks, freq_width = self.augment
            seqs = [spec_augment(f, len(f), generator, time_masks, time_width, freq_masks, freq_width) for f in seqs]
        inputs, lengths = pad_features(seqs)                                    # (B, T, M), (B,)
        return Batch(inputs, self.targets[list(rows)], lengths)

    def epoch(self, generator: torch.Generator) -> Iterator[Batch]:
        """Shuffled training batches, each of recordings of similar length (sorted within pools of 20 batches)."""
        for rows in bucketed_rows(self.lengths, self.batch_size, 20, generator):
            yield self._batch(rows, generator)

    def in_order(self) -> Iterator[tuple[np.ndarray, Batch]]:
        """Evaluation batches sorted by length, each with the row indices it holds; never masked."""
        for rows in rows_by_length(self.lengths, self.batch_size):
            yield rows, self._batch(rows.tolist())


def featurize(recordings: Sequence[Recording], featurizer: Featurizer) -> list[Tensor]:
    """The normalised features (T, M) of each recording."""
    return [featurizer(r.samples, r.rate) for r in recordings]
