import gzip
import hashlib

import pytest

from lstmkit.data import registry
from lstmkit.data.registry import DataFile, Dataset
from lstmkit.errors import LstmkitError


@pytest.fixture
def fake_dataset(tmp_path, monkeypatch):
    """A registry entry whose canonical address is a local file, so downloads run without a network."""
    source = tmp_path / "remote" / "tiny.txt"
    source.parent.mkdir()
    source.write_text("to be or not to be\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    ds = Dataset("tiny", "a tiny text", "public domain", (DataFile("tiny.txt", source.as_uri(), digest),))
    monkeypatch.setitem(registry.REGISTRY, "tiny", ds)
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LSTMKIT_DATA_DIR", raising=False)
    return ds


def test_download_verifies_and_caches(fake_dataset, tmp_path):
    assert registry.find_local("tiny") is None
    (path,) = registry.download("tiny")
    assert path == tmp_path / "cache" / "tiny" / "tiny.txt"
    assert path.read_text() == "to be or not to be\n"
    assert registry.locate("tiny") == path
    assert list((tmp_path / "cache" / "tiny").iterdir()) == [path]  # no temporary files left


def test_checksum_mismatch_is_refused_and_nothing_cached(fake_dataset, tmp_path, monkeypatch):
    bad = Dataset("tiny", "", "", (DataFile("tiny.txt", fake_dataset.files[0].url, "0" * 64),))
    monkeypatch.setitem(registry.REGISTRY, "tiny", bad)
    with pytest.raises(LstmkitError) as err:
        registry.download("tiny")
    assert str(err.value).startswith(f"checksum mismatch for tiny/tiny.txt from {bad.files[0].url}: expected 000")
    assert list((tmp_path / "cache" / "tiny").iterdir()) == []


def test_unreachable_address_says_how_to_work_offline(fake_dataset, tmp_path, monkeypatch):
    gone = Dataset("tiny", "", "", (DataFile("tiny.txt", (tmp_path / "missing.txt").as_uri(), "0" * 64),))
    monkeypatch.setitem(registry.REGISTRY, "tiny", gone)
    with pytest.raises(LstmkitError) as err:
        registry.download("tiny")
    assert "to work offline, set LSTMKIT_DATA_DIR to a folder holding tiny/tiny.txt" in str(err.value)


def test_offline_copy_wins_and_gzip_twins_are_found(fake_dataset, tmp_path, monkeypatch):
    offline = tmp_path / "offline"
    (offline / "tiny").mkdir(parents=True)
    with gzip.open(offline / "tiny" / "tiny.txt.gz", "wt") as fh:
        fh.write("to be")
    monkeypatch.setenv("LSTMKIT_DATA_DIR", str(offline))
    assert registry.locate("tiny") == offline / "tiny" / "tiny.txt.gz"


def test_unknown_dataset():
    with pytest.raises(LstmkitError) as err:
        registry.get_dataset("nope")
    assert str(err.value) == f"unknown dataset 'nope'; known datasets: {', '.join(sorted(registry.REGISTRY))}"
    assert "macbeth" in registry.REGISTRY


@pytest.mark.data
def test_offline_macbeth_matches_the_registered_checksum():
    path = registry.locate("macbeth")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == registry.REGISTRY["macbeth"].files[0].sha256
