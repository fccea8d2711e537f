"""Speech recognition of single words: wiring of labelled recordings (FSDD or class folders), features computed
on the fly (data/audio.py), the CNN-LSTM (models/speech.py), the engine, the test evaluation beside an
MFCC-statistics + logistic-regression baseline (speech_eval.py), and a predictor that labels WAV files."""

import logging
import math
import wave
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConvFrontConfig, ModelConfig, SpeechDataConfig, SpeechRunConfig, TrainConfig
from ..data import Batch
from ..data.audio import Featurizer, read_wav
from ..data.speech import FeatureSet, Recording, SpeechSplits, feature_spec, featurize, load_speech_splits
from ..models.speech import SpeechClassifier
from ..utils.seed import set_seed
from .base import Example, Task, fit_run
from .speech_eval import evaluate_recognition

TASK = "speech"
EVAL_BATCH = 128

_log = logging.getLogger(__name__)


def default_config() -> SpeechRunConfig:
    """20 MFCCs per frame in slices of 4 frames, a two-block CNN (16 and 32 channels) to 64 features per slice, a
    bidirectional LSTM (96 units each way), max-pooled; up to 30 epochs with cosine decay. The backend is torch:
    batches of recordings come in many lengths, and auto would time both CPU backends once for each."""
    return SpeechRunConfig(
        task=TASK,
        data=SpeechDataConfig(),
        frontend=ConvFrontConfig(),
        model=ModelConfig(embed_dim=64, hidden_size=96, num_layers=1, dropout=0.2, bidirectional=True,
                          pooling="max", backend="torch"),
        train=TrainConfig(epochs=30, batch_size=32, lr=3e-3, patience=10, grad_clip=5.0, lr_schedule="cosine"),
    )


class SpeechObjective:
    """Cross-entropy on C logits."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def outputs(self, model: nn.Module, batch: Batch) -> Tensor:
        return model(batch.inputs, batch.lengths)                            # (B, C)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def items(self, batch: Batch) -> int:
        return len(batch)

    def probabilities(self, model: nn.Module, data: FeatureSet, device: torch.device) -> np.ndarray:
        """(N, C) class probabilities in the data's own row order."""
        probs = np.zeros((len(data.features), self.num_classes))
        for rows, batch in data.in_order():
            probs[rows] = torch.softmax(self.outputs(model, batch.to(device)).float(), dim=-1).cpu().numpy()
        return probs

    def evaluate(self, model: nn.Module, data: FeatureSet, device: torch.device) -> dict[str, float]:
        """Validation loss (mean cross-entropy, nats) and accuracy."""
        probs = self.probabilities(model, data, device)
        truth = data.targets.numpy()
        picked = np.clip(probs[np.arange(len(truth)), truth], 1e-12, 1.0)
        return {"loss": float(-np.log(picked).mean()), "accuracy": float((probs.argmax(1) == truth).mean())}


def _feature_set(recordings: list[Recording], featurizer: Featurizer, classes: list[str], batch_size: int,
                 augment: tuple[int, int, int, int] | None = None) -> FeatureSet:
    index = {c: k for k, c in enumerate(classes)}
    targets = torch.tensor([index[r.label] for r in recordings], dtype=torch.long)
    return FeatureSet(featurize(recordings, featurizer), targets, batch_size, augment)


class SpeechTask(Task):
    """``speech``: spoken-word recognition with a CNN-LSTM, evaluated beside MFCC statistics + logistic regression."""

    name = TASK
    help = "speech: spoken-word recognition with a CNN-LSTM"
    fitted_files = ("labels",)

    def default_config(self) -> SpeechRunConfig:
        return default_config()

    def build_model(self, config: SpeechRunConfig, fitted: dict[str, Any]) -> nn.Module:
        size = feature_spec(config.data).size
        return SpeechClassifier(config.frontend, config.model, size, len(fitted["labels"]["classes"]))

    def _splits(self, config: SpeechRunConfig) -> SpeechSplits:
        splits = load_speech_splits(config.data, config.train.seed)
        _log.info("%d training, %d validation and %d test recordings (%s test set), labels %s", len(splits.train),
                  len(splits.val), len(splits.test), splits.test_source, ", ".join(splits.classes))
        return splits

    def fit(self, config: SpeechRunConfig, out: Path, resume: bool) -> "Recognizer":
        set_seed(config.train.seed, config.train.deterministic)
        splits = self._splits(config)
        featurizer = Featurizer(feature_spec(config.data))
        d = config.data
        augment = (d.time_masks, d.time_mask_frames, d.freq_masks, d.freq_mask_bins)
        fitted = {"labels": {"classes": splits.classes}}
        model = self.build_model(config, fitted)
        result = fit_run(out, config, fitted, model, SpeechObjective(len(splits.classes)),
                         _feature_set(splits.train, featurizer, splits.classes, config.train.batch_size, augment),
                         _feature_set(splits.val, featurizer, splits.classes, EVAL_BATCH), restore=resume)
        recognizer = Recognizer(model.cpu().eval(), splits.classes, config, result.metrics, out)
        recognizer.metrics = evaluate_recognition(out, recognizer, splits, config.data.baseline)
        return recognizer

    def finish(self, config: SpeechRunConfig, out: Path) -> "Recognizer":
        recognizer = self.load(out)
        if "test" not in recognizer.metrics:
            recognizer.metrics = evaluate_recognition(out, recognizer, self._splits(config), config.data.baseline)
        return recognizer

    def predictor(self, model: nn.Module, config: SpeechRunConfig, fitted: dict[str, Any], metrics: dict,
                  path: Path) -> "Recognizer":
        return Recognizer(model, fitted["labels"]["classes"], config, metrics, path)

    def example(self, folder: Path) -> Example:
        """Two labels of synthetic tones (300 Hz "low", 1,200 Hz "high", 0.2-0.4 s, some noise), 12 each."""
        root = Path(folder) / "tones"
        rng = np.random.default_rng(0)
        for label, pitch in (("low", 300.0), ("high", 1200.0)):
            (root / label).mkdir(parents=True, exist_ok=True)
            for k in range(12):
                write_tone(root / label / f"{label}_{k}.wav", pitch, 0.2 + 0.2 * rng.random(), rng)
        (Path(folder) / "silence").mkdir(exist_ok=True)
        tiny = {"dir": str(root), "embed_dim": 8, "hidden_size": 8, "channels": (4,), "batch_size": 8, "epochs": 3,
                "max_steps": 8, "baseline": False, "quiet": True}
        files = [str(root / "low" / "low_0.wav"), str(root / "high" / "high_0.wav")]
        return Example(tiny, (files,), {**tiny, "dir": str(Path(folder) / "silence")}, "no .wav files in ")


def write_tone(path: Path, pitch: float, seconds: float, rng: np.random.Generator, rate: int = 8000) -> None:
    """A 16-bit mono WAV of a sine at ``pitch`` Hz with a little noise and 20 ms fades."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * math.pi * pitch * t) + 0.02 * rng.standard_normal(len(t))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * fade * 32767).astype("<i2").tobytes())


SPEECH = SpeechTask()


def train(*, out: str | Path, data: str | None = None, dir: str | Path | None = None,
          test_dir: str | Path | None = None, overwrite: bool = False, resume: bool = False,
          **settings: Any) -> "Recognizer":
    """Trains a spoken-word recogniser, evaluates it on the test set beside the baseline, and writes its run folder.

    Args:
        data: a registered speech corpus ("fsdd": the official split; ``test_speaker=NAME`` holds out a speaker); or
        dir: a folder with one sub-folder of .wav files per label (``test_dir``: its official test set).
        out: the run folder to create (refused if it exists, unless ``overwrite``).
        resume: continue the run in ``out`` from its checkpoint.
        **settings: any field of SpeechDataConfig, ConvFrontConfig, ModelConfig or TrainConfig.
    """
    sources = {"dir": str(dir) if dir is not None else None, "test_dir": str(test_dir) if test_dir else None}
    return SPEECH.train(out=out, overwrite=overwrite, resume=resume, data=data, **sources, **settings)


class Recognizer:
    """A trained spoken-word recogniser. Build with ``train(...)`` or ``load(folder)``.

    Example:
        >>> rec = load("runs/fsdd")
        >>> rec.predict(["7_jackson_0.wav"])[0]["label"]
        '7'
    """

    def __init__(self, model: SpeechClassifier, classes: list[str], config: SpeechRunConfig, metrics: dict,
                 path: Path) -> None:
        self.model, self.classes, self.config, self.metrics, self.path = model, classes, config, metrics, path
        self.featurizer = Featurizer(feature_spec(config.data))

    @torch.no_grad()
    def probabilities(self, recordings: list[Recording]) -> np.ndarray:
        """(N, C) class probabilities of recordings, columns in ``self.classes`` order."""
        self.model.eval()
        data = FeatureSet(featurize(recordings, self.featurizer), torch.zeros(len(recordings), dtype=torch.long),
                          EVAL_BATCH)
        return SpeechObjective(len(self.classes)).probabilities(self.model, data, torch.device("cpu"))

    def predict_proba(self, files: list[str | Path]) -> np.ndarray:
        """(N, C) class probabilities of WAV files (any rate: resampled; mono PCM)."""
        return self.probabilities([Recording(str(f), "", "", *read_wav(f)) for f in files])

    def predict(self, files: list[str | Path]) -> list[dict[str, Any]]:
        """One {"file", "label", "probability", "probabilities": {label: p}} per WAV file."""
        probs = self.predict_proba(files)
        return [{"file": str(f), "label": self.classes[int(p.argmax())], "probability": float(p.max()),
                 "probabilities": {c: float(v) for c, v in zip(self.classes, p, strict=True)}}
                for f, p in zip(files, probs, strict=True)]


def load(folder: str | Path) -> Recognizer:
    """Loads a speech run folder (config.json, labels.json, model.safetensors)."""
    return SPEECH.load(folder)
