"""Markers: ``data`` tests need the real datasets: LSTMKIT_DATA_DIR, or else ``../shared/data`` beside the
repository, which the tests use when it exists (so the README's plain ``pytest`` runs them); ``gpu`` tests need
CUDA.

Backend ``auto`` runs as users get it: it measures torch against fused for each new shape, as on a first run
(into a cache of this session's own, not the user's). End-to-end tests take a ``backend`` parameter ("auto",
"fused" ...); the summary at the end counts the tests that passed with each, and those on real data.
"""

import logging
import os
from collections import Counter
from pathlib import Path

import pytest
import torch

_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("LSTMKIT_DATA_DIR") and _SHARED_DATA.is_dir():
    os.environ["LSTMKIT_DATA_DIR"] = str(_SHARED_DATA)

_KINDS: dict[str, list[str]] = {}  # test id -> what it ran on ("auto", "fused", "data" ...)


def _kinds(item) -> list[str]:
    kinds = []
    params = getattr(getattr(item, "callspec", None), "params", {})
    if isinstance(params.get("backend"), str):
        kinds.append(f"backend {params['backend']}")
    if item.get_closest_marker("data"):
        kinds.append("real data")
    return kinds


def pytest_collection_modifyitems(config, items):
    for item in items:
        _KINDS[item.nodeid] = _kinds(item)
        if item.get_closest_marker("data") and not os.environ.get("LSTMKIT_DATA_DIR"):
            item.add_marker(pytest.mark.skip(reason="set LSTMKIT_DATA_DIR to the offline datasets to run this"))
        if item.get_closest_marker("gpu") and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


def pytest_terminal_summary(terminalreporter):
    """How many tests passed with backend auto, with fused (and the others), and on real data."""
    counts, skipped = Counter(), Counter()
    for kind, target in (("passed", counts), ("skipped", skipped)):
        for report in terminalreporter.stats.get(kind, []):
            if getattr(report, "when", "call") in ("call", "setup") and hasattr(report, "nodeid"):
                target.update(_KINDS.get(report.nodeid, []))
    if counts or skipped:
        terminalreporter.write_sep("-", "what the passing tests ran on")
        for kind in sorted(set(counts) | set(skipped)):
            terminalreporter.write_line(f"{kind}: {counts[kind]} passed, {skipped[kind]} skipped")


@pytest.fixture(autouse=True, scope="session")
def _own_autotune_cache(tmp_path_factory):
    """auto measures as on a first run, into this session's cache: the user's cached choices neither steer
    the tests nor get written by them."""
    from lstmkit.backends import autotune

    before = os.environ.get("LSTMKIT_AUTOTUNE_CACHE")
    os.environ["LSTMKIT_AUTOTUNE_CACHE"] = str(tmp_path_factory.mktemp("autotune") / "autotune.json")
    autotune.forget()
    autotune._loaded = False
    yield
    if before is None:
        del os.environ["LSTMKIT_AUTOTUNE_CACHE"]
    else:
        os.environ["LSTMKIT_AUTOTUNE_CACHE"] = before
    autotune.forget()


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
