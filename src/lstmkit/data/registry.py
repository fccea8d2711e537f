"""Named datasets: where each file lives canonically, its checksum, and where to find a copy on this machine.

Lookup order for a file: the offline folder named by ``LSTMKIT_DATA_DIR`` (``<dir>/<dataset>/<file>``, or the
file's gzip-compressed twin ``<file>.gz``), then the cache (``LSTMKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/lstmkit``, else ``~/.cache/lstmkit``), then a download from the canonical address,
checked against its sha256 before it enters the cache.
"""

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import LstmkitError


@dataclass(frozen=True)
class DataFile:
    name: str     # file name inside the dataset's folder
    url: str      # canonical address
    sha256: str   # of the canonical bytes


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    license: str
    files: tuple[DataFile, ...]

    def file(self, name: str | None = None) -> DataFile:
        if name is None:
            return self.files[0]
        for f in self.files:
            if f.name == name:
                return f
        names = ", ".join(f.name for f in self.files)
        raise LstmkitError(f"dataset {self.name!r} has no file {name!r}; it has {names}")


_NLTK = "https://raw.githubusercontent.com/nltk/nltk/4dc39fbf6965509f7b74316eff239bd110a03b49/nltk_data/corpora/gutenberg"

REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "macbeth",
            "Shakespeare's Macbeth, Project Gutenberg text as in NLTK's gutenberg corpus (100,351 characters)",
            "public domain",
            (
                DataFile(
                    "shakespeare-macbeth.txt",
                    f"{_NLTK}/shakespeare-macbeth.txt",
                    "d4a204352cfe5924cbae76f764225d120e9f7617d39cb8c949dedd3f306353ac",
                ),
            ),
        ),
    )
}


def get_dataset(name: str) -> Dataset:
    if name not in REGISTRY:
        raise LstmkitError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def offline_dir() -> Path | None:
    value = os.environ.get("LSTMKIT_DATA_DIR")
    return Path(value).expanduser().resolve() if value else None


def cache_dir() -> Path:
    if os.environ.get("LSTMKIT_CACHE_DIR"):
        return Path(os.environ["LSTMKIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstmkit"


def find_local(dataset: str, file: str | None = None) -> Path | None:
    """The offline or cached copy of a dataset file, or None when there is neither."""
    ds = get_dataset(dataset)
    f = ds.file(file)
    root = offline_dir()
    candidates = [root / ds.name / f.name, root / ds.name / f"{f.name}.gz"] if root else []
    candidates.append(cache_dir() / ds.name / f.name)
    return next((p for p in candidates if p.is_file()), None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(dataset: str, force: bool = False) -> list[Path]:
    """Downloads every file of a dataset into the cache (checksum verified) and returns their paths."""
    ds = get_dataset(dataset)
    folder = cache_dir() / ds.name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in ds.files:
        target = folder / f.name
        if force or not target.is_file():
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{f.name}.")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(f.url, timeout=60) as response:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                got = _sha256(tmp)
                if got != f.sha256:
                    raise LstmkitError(
                        f"checksum mismatch for {ds.name}/{f.name} from {f.url}: expected {f.sha256}, got {got}"
                    )
                tmp.replace(target)
            except (urllib.error.URLError, OSError) as err:
                raise LstmkitError(
                    f"could not download {f.url} ({err}); to work offline, set LSTMKIT_DATA_DIR to a folder "
                    f"holding {ds.name}/{f.name}"
                ) from None
            finally:
                tmp.unlink(missing_ok=True)
        paths.append(target)
    return paths


def locate(dataset: str, file: str | None = None) -> Path:
    """The path of a dataset file: offline copy, cache, or a fresh verified download, in that order."""
    path = find_local(dataset, file)
    if path is not None:
        return path
    download(dataset)
    return cache_dir() / dataset / get_dataset(dataset).file(file).name
