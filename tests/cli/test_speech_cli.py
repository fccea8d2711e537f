"""`lstmkit speech` end to end on a few dozen real recordings (FSDD), and its errors, through main()."""

import json
import os
import tarfile
from pathlib import Path

import pytest

from lstmkit.cli.main import main

pytestmark = pytest.mark.data

TINY = ["--channels", "4", "--embed-dim", "16", "--hidden-size", "16", "--batch-size", "8", "--epochs", "8",
        "--lr", "0.01", "--quiet"]


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fsdd_folders(tmp_path_factory) -> Path:
    """Real FSDD recordings of the digits 0, 1 and 2 by jackson and theo as class folders: train/{digit}/
    (recordings 5-12, 48 files) and test/{digit}/ (recordings 0-2, the official test indices; 18 files)."""
    folder = tmp_path_factory.mktemp("fsdd")
    archive = Path(os.environ["LSTMKIT_DATA_DIR"]) / "fsdd" / "recordings.tar.gz"
    with tarfile.open(archive) as tar:
        for digit in "012":
            for speaker in ("jackson", "theo"):
                for index in range(13):
                    split = "test" if index < 3 else "train" if index >= 5 else None
                    if split is None:
                        continue
                    name = f"{digit}_{speaker}_{index}.wav"
                    target = folder / split / digit / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(f"recordings/{name}").read())
    return folder


@pytest.fixture(scope="module")
def trained(fsdd_folders, tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("runs") / "digits"
    code = main(["speech", "train", "--dir", str(fsdd_folders / "train"), "--test-dir", str(fsdd_folders / "test"),
                 "--out", str(out), "--val-fraction", "0.25", *TINY])
    assert code == 0
    return out, fsdd_folders


def test_train_writes_a_run_with_test_metrics_baseline_and_confusion_matrix(trained):
    out, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["test_source"] == "official" and metrics["run"]["test_recordings"] == 18
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert set(metrics["test"]["per_class"]) == {"0", "1", "2"}
    assert {"precision", "recall", "f1"} <= set(metrics["test"]["per_class"]["1"])
    # three digits from MFCC statistics are easy: the baseline must be far above chance (1/3)
    assert metrics["baselines"]["mfcc_logreg"]["accuracy"] >= 0.8
    matrix = json.loads((out / "confusion_matrix.json").read_text())
    assert sum(map(sum, matrix["cnn_lstm"])) == 18
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "config.json").read_text())["task"] == "speech"


def test_predict_prints_file_label_probability_per_file(trained, capsys):
    out, folders = trained
    files = sorted((folders / "test").glob("*/*.wav"))[:4]
    code, printed, err = _run(capsys, "speech", "predict", out, *files)
    assert code == 0, err
    lines = printed.splitlines()
    assert len(lines) == 4
    for line, path in zip(lines, files, strict=True):
        name, label, probability = line.split("\t")
        assert name == str(path) and label in {"0", "1", "2"} and 1 / 3 <= float(probability) <= 1.0


def test_predict_refuses_bad_audio_in_one_line(trained, tmp_path, capsys):
    out, _ = trained
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    code, printed, err = _run(capsys, "speech", "predict", out, text)
    assert code == 2 and printed == ""
    assert err == f"error: {text} is not a PCM WAV file (file does not start with RIFF id)\n"


def test_train_refuses_a_folder_without_audio(tmp_path, capsys):
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    code, _, err = _run(capsys, "speech", "train", "--dir", tmp_path / "empty", "--out", tmp_path / "run", *TINY)
    assert code == 2
    assert err == f"error: no .wav files in {tmp_path / 'empty'}; expected one sub-folder of .wav files per label\n"
    assert not (tmp_path / "run").exists()


def test_fsdd_official_split_and_a_held_out_speaker(monkeypatch):
    from lstmkit.config import SpeechDataConfig
    from lstmkit.data.speech import load_speech_splits

    official = load_speech_splits(SpeechDataConfig(data="fsdd"), seed=0)
    assert len(official.test) == 300 and len(official.train) + len(official.val) == 2700
    assert all(int(r.name[:-4].rsplit("_", 1)[1]) <= 4 for r in official.test)
    held = load_speech_splits(SpeechDataConfig(data="fsdd", test_speaker="theo"), seed=0)
    assert held.test_source == "speaker theo" and len(held.test) == 500
    assert {r.speaker for r in held.test} == {"theo"} and "theo" not in {r.speaker for r in held.train + held.val}
