"""Every command end to end on small real data, and every error a user can meet, through main()."""

import json
import os
import subprocess
import sys

import pytest

from lstmkit.cli.main import main

TINY = [
    "--seq-len",
    "20",
    "--embed-dim",
    "8",
    "--hidden-size",
    "16",
    "--num-layers",
    "1",
    "--batch-size",
    "8",
    "--quiet",
]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained_run(macbeth_excerpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["textgen", "train", "--text", str(macbeth_excerpt), "--out", str(out), "--epochs", "1", *TINY]) == 0
    return out


@pytest.mark.data
def test_train_then_sample(trained_run, capsys):
    code, out, _ = _run(
        capsys,
        "textgen",
        "sample",
        str(trained_run),
        "--prime",
        "MACBETH",
        "--length",
        "40",
        "--temperature",
        "0.5",
        "--top-k",
        "5",
        "--seed",
        "1",
    )
    assert code == 0
    assert out.startswith("MACBETH") and len(out) == len("MACBETH") + 40 + 1
    code, again, _ = _run(
        capsys,
        "textgen",
        "sample",
        str(trained_run),
        "--prime",
        "MACBETH",
        "--length",
        "40",
        "--temperature",
        "0.5",
        "--top-k",
        "5",
        "--seed",
        "1",
    )
    assert again == out


@pytest.mark.data
def test_train_prints_a_summary_and_dry_run(macbeth_excerpt, tmp_path, capsys):
    code, out, _ = _run(
        capsys, "textgen", "train", "--text", str(macbeth_excerpt), "--out", str(tmp_path / "r"), "--dry-run", *TINY
    )
    assert code == 0
    assert out.startswith(f"saved {tmp_path / 'r'}: val loss ") and "stopped: max_steps" in out
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["run"]["steps"] == 2


@pytest.mark.data
def test_bf16_training_through_the_fused_backend(macbeth_excerpt, tmp_path, capsys):
    """bf16 trains as well as fp32 from the same seed: 30 steps take the validation loss from the untrained
    model's 4.28 nats to 3.47 in both precisions."""
    losses = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        argv = ["textgen", "train", "--text", str(macbeth_excerpt), "--out", str(out), "--max-steps", "30", *TINY]
        assert _run(capsys, *argv, "--precision", precision, "--backend", "fused", "--recurrent-dropout", "0.1")[0] == 0
        config = json.loads((out / "config.json").read_text())
        assert config["train"]["precision"] == precision and config["model"]["backend_used"] == "fused"
        losses[precision] = json.loads((out / "metrics.json").read_text())["val"]["loss"]
    assert losses["bf16"] < 3.8, losses
    assert abs(losses["bf16"] - losses["fp32"]) < 0.02, losses


@pytest.mark.data
def test_resume_and_overwrite(macbeth_excerpt, tmp_path, capsys):
    out = str(tmp_path / "r")
    base = ["textgen", "train", "--text", str(macbeth_excerpt), "--out", out, *TINY]
    assert _run(capsys, *base, "--max-steps", "2")[0] == 0
    code, _, err = _run(capsys, *base)
    assert (
        code == 2
        and err
        == f"error: output folder {out} already exists; pass --overwrite to replace it or --resume to continue it\n"
    )
    assert _run(capsys, "textgen", "train", "--out", out, "--resume", "--max-steps", "4", "--quiet")[0] == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["run"]["steps"] == 4
    assert _run(capsys, *base, "--max-steps", "1", "--overwrite")[0] == 0
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["run"]["steps"] == 1


@pytest.mark.data
def test_data_list_and_download_from_offline_copy(macbeth_path, tmp_path, monkeypatch, capsys):
    """``data download macbeth`` fetches the registered file (its address pointed at the offline copy, as no
    network is assumed) into the cache and checks it against the registry's sha256; a changed copy is refused."""
    import dataclasses

    from lstmkit.data import REGISTRY, registry

    code, out, _ = _run(capsys, "data", "list")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert names == sorted(REGISTRY)
    assert "license: public domain; local copy: " in out

    def served_from(path):
        macbeth = REGISTRY["macbeth"]
        files = tuple(dataclasses.replace(f, url=path.as_uri()) for f in macbeth.files)
        monkeypatch.setitem(registry.REGISTRY, "macbeth", dataclasses.replace(macbeth, files=files))

    served_from(macbeth_path)
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = _run(capsys, "data", "download", "macbeth")
    cached = tmp_path / "cache" / "macbeth" / "shakespeare-macbeth.txt"
    assert code == 0 and out == f"{cached}\n"
    assert cached.read_bytes() == macbeth_path.read_bytes()
    changed = tmp_path / "changed.txt"
    changed.write_bytes(macbeth_path.read_bytes().replace(b"Macbeth", b"Macbech", 1))
    served_from(changed)
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path / "cache2"))
    code, _, err = _run(capsys, "data", "download", "macbeth")
    assert code == 2 and err.startswith("error: checksum mismatch for macbeth/shakespeare-macbeth.txt from ")
    assert not (tmp_path / "cache2" / "macbeth" / "shakespeare-macbeth.txt").exists()


def test_data_download_verifies_checksum(tmp_path, monkeypatch, capsys):
    import hashlib

    from lstmkit.data import registry
    from lstmkit.data.registry import DataFile, Dataset

    source = tmp_path / "src.txt"
    source.write_text("When shall we three meet again\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setitem(
        registry.REGISTRY, "witches", Dataset("witches", "", "", (DataFile("w.txt", source.as_uri(), digest),))
    )
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path / "cache"))
    code, out, _ = _run(capsys, "data", "download", "witches")
    assert code == 0 and out == f"{tmp_path / 'cache' / 'witches' / 'w.txt'}\n"
    code, _, err = _run(capsys, "data", "download", "nope")
    known = ", ".join(sorted(registry.REGISTRY))
    assert "witches" in known
    assert code == 2 and err == f"error: unknown dataset 'nope'; known datasets: {known}\n"


def _bad_file(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.txt", None, "text file not found: {path}"),
        ("empty.txt", b"", "text file is empty: {path}"),
        (
            "binary.bin",
            b"\x89PNG\r\n\x1a\n\x00\x00",
            "{path} looks binary (it contains NUL bytes); expected a UTF-8 text file",
        ),
        (
            "short.txt",
            b"Fair is foul\n",
            "text too short: its training part has 12 characters and one training window "
            "needs seq_len + 1 = 21; use a longer text or a smaller --seq-len",
        ),
    ],
)
def test_bad_text_files(tmp_path, capsys, name, content, message):
    path = _bad_file(tmp_path, name, content)
    out = tmp_path / "run"
    code, _, err = _run(capsys, "textgen", "train", "--text", str(path), "--out", str(out), *TINY)
    assert code == 2
    assert err == f"error: {message.format(path=path)}\n"
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ([name] if content is not None else [])


def test_non_utf8_file(tmp_path, capsys):
    path = _bad_file(tmp_path, "latin1.txt", "Thane of Cawdor, ma\xeetre\n".encode("latin-1") * 20)
    code, _, err = _run(capsys, "textgen", "train", "--text", str(path), "--out", str(tmp_path / "run"), *TINY)
    assert code == 2 and err == f"error: {path} is not UTF-8 text (byte 0xee at offset 19); convert it to UTF-8\n"


@pytest.mark.data
def test_unknown_prime_characters_are_named(trained_run, capsys):
    code, out, err = _run(capsys, "textgen", "sample", str(trained_run), "--prime", "Macbeth ☃ §")
    assert code == 2 and out == ""
    assert err == "error: the prime text has characters the model never saw in training: '☃', '§'\n"


def test_sample_from_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, _, err = _run(capsys, "textgen", "sample", str(tmp_path))
    assert code == 2 and err == f"error: {tmp_path} is not an lstmkit run folder (no config.json)\n"
    code, _, err = _run(capsys, "textgen", "sample", str(tmp_path / "nothing"))
    assert code == 2 and err == f"error: run folder not found: {tmp_path / 'nothing'}\n"


@pytest.mark.data
@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_damaged_model_file(trained_run, capsys, damage):
    model = trained_run / "model.safetensors"
    raw = model.read_bytes()
    if damage == "truncate":
        model.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        model.write_bytes(b"\xff" * 64)
    else:
        model.unlink()
    code, _, err = _run(capsys, "textgen", "sample", str(trained_run), "--length", "5")
    assert code == 2
    if damage == "delete":
        assert err == f"error: missing file: {model}\n"
    else:
        assert (
            err.startswith(f"error: cannot read {model}: the file is truncated or corrupted (") and err.count("\n") == 1
        )


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["textgen", "train", "--out"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: argument --out: expected one argument (see `lstmkit textgen train --help`)\n"
    code, _, err = _run(capsys, "textgen", "train", "--out", "x")
    assert code == 2 and err == "error: give either a text file or a dataset name (data=...), not both or neither\n"


def test_console_script_and_module_entry_points(tmp_path):
    env = {**os.environ, "PYTHONPATH": ""}
    for argv in (["lstmkit", "--version"], [sys.executable, "-m", "lstmkit", "--version"]):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path)
        assert done.returncode == 0 and done.stdout.strip() == "lstmkit 0.1.0"
    done = subprocess.run(
        [sys.executable, "-m", "lstmkit", "textgen", "sample", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1
