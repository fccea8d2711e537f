"""Markers: ``data`` tests need LSTMKIT_DATA_DIR (set by CI) and skip without it; ``gpu`` tests need CUDA."""

import logging
import os
from pathlib import Path

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("data") and not os.environ.get("LSTMKIT_DATA_DIR"):
            item.add_marker(pytest.mark.skip(reason="set LSTMKIT_DATA_DIR to the offline datasets to run this"))
        if item.get_closest_marker("gpu") and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture(autouse=True)
def _no_backend_measuring(monkeypatch):
    # backend "auto" would time torch against fused for every new shape: tests want the same choice on
    # every machine (torch where it runs); tests/backends/test_autotune.py turns measuring back on
    monkeypatch.setenv("LSTMKIT_AUTOTUNE", "0")


@pytest.fixture(autouse=True)
def _reset_lstmkit_logging():
    """The CLI's main() configures the package logger for the process; each test starts from a clean one."""
    yield
    logger = logging.getLogger("lstmkit")
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)


@pytest.fixture
def macbeth_path() -> Path:
    path = Path(os.environ["LSTMKIT_DATA_DIR"]) / "macbeth" / "shakespeare-macbeth.txt"
    assert path.is_file(), f"LSTMKIT_DATA_DIR is set but {path} is missing"
    return path


@pytest.fixture
def macbeth_excerpt(macbeth_path: Path, tmp_path: Path) -> Path:
    """The first 6,000 characters of Macbeth: real text, small enough for tests of a few steps."""
    path = tmp_path / "macbeth-excerpt.txt"
    path.write_text(macbeth_path.read_text()[:6000])
    return path
