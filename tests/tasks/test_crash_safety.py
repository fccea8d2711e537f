"""Real training processes killed with SIGKILL at random moments leave either their last whole checkpoint
or nothing, and ``--resume`` from what they leave reaches the weights of an uninterrupted run."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

import lstmkit
from lstmkit.tasks import registry
from lstmkit.train.checkpoint import load_tensors

EPOCHS = 30


def _epochs_done(folder) -> int:
    try:
        return len(json.loads((folder / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "lstmkit", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _check_whole(folder) -> None:
    """A run folder that exists is complete: every file readable and the checkpoint consistent."""
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "metrics.json", "history.json", "checkpoint/trainer.json",
            "checkpoint/last_model.safetensors", "checkpoint/optimizer.safetensors"} <= names, names
    state = json.loads((folder / "checkpoint" / "trainer.json").read_text())["state"]
    assert len(json.loads((folder / "history.json").read_text())) == state["epoch"]
    load_tensors(folder / "checkpoint" / "last_model.safetensors")
    lstmkit.load(folder)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path):
    task = registry.get("textgen")
    example = task.example(tmp_path)
    text = example.settings["text"]
    args = ["--text", text, "--seq-len", "20", "--hidden-size", "16", "--embed-dim", "8", "--num-layers", "1",
            "--batch-size", "8", "--epochs", str(EPOCHS), "--patience", "100", "--backend", "torch", "--quiet"]
    full = tmp_path / "full"
    done = _start(["textgen", "train", *args, "--out", str(full)])
    assert done.wait(timeout=300) == 0, done.stderr.read()

    run, rng, kills = tmp_path / "run", random.Random(0), 0
    for _ in range(40):
        resume = ["--resume"] if (run / "checkpoint" / "trainer.json").is_file() else []
        process = _start(["textgen", "train", *args, "--out", str(run), *resume])
        if kills == 0:
            time.sleep(rng.uniform(0.5, 3.0))  # during start-up, before any checkpoint
        elif _epochs_done(run) >= EPOCHS - 4:
            process.wait(timeout=300)  # let it finish
        else:  # after a random number of further epochs, at a random moment inside the next one
            target = _epochs_done(run) + rng.randint(1, 4)
            while process.poll() is None and _epochs_done(run) < target:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.2))
        if process.poll() is not None:
            assert process.returncode == 0, process.stderr.read()
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        if run.exists():
            _check_whole(run)
    else:
        pytest.fail("the run never finished")
    want, got = lstmkit.load(full).model.state_dict(), lstmkit.load(run).model.state_dict()
    for name in want:
        assert torch.equal(want[name], got[name]), name
    assert json.loads((run / "metrics.json").read_text())["run"]["epochs"] == EPOCHS
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".run.")]  # killed writes cleaned up
    assert kills >= 4
