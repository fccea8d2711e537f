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


_ETT = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/1d16c8f4f943005d613b5bc962e9eeb06058cf07/ETT-small"
_JB = "https://raw.githubusercontent.com/jbrownlee/Datasets/d20fcb6402ae34e653d4513b00f39257bb37ed7f"
_GSPC = (
    "https://raw.githubusercontent.com/BenjiKCF/Neural-Net-with-Financial-Time-Series-Data/"
    "15e0640c799e106c3a3fb8901e25663a13197574/%5EGSPC.csv"
)

REGISTRY.update(
    {
        d.name: d
        for d in (
            Dataset(
                "ett",
                "ETT-small transformer 1 (ETDataset): 7 load and oil-temperature columns, hourly (ETTh1, 17,420 "
                "rows) and 15-minute (ETTm1, 69,680 rows), 2016-07 to 2018-06; target OT",
                "CC BY-ND 4.0",
                (
                    DataFile(
                        "ETTh1.csv", f"{_ETT}/ETTh1.csv",
                        "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
                    ),
                    DataFile(
                        "ETTm1.csv", f"{_ETT}/ETTm1.csv",
                        "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e",
                    ),
                ),
            ),
            Dataset(
                "classic_series",
                "classic univariate series (Time Series Data Library copies): airline passengers (monthly, 144), "
                "Melbourne daily minimum temperatures (3,650), monthly sunspots (2,820), shampoo sales (36)",
                "no explicit license (textbook series; cite the original sources)",
                (
                    DataFile(
                        "airline-passengers.csv", f"{_JB}/airline-passengers.csv",
                        "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621",
                    ),
                    DataFile(
                        "daily-min-temperatures.csv", f"{_JB}/daily-min-temperatures.csv",
                        "8b9de63ed6789492bf497625e7f9beb96a63d367b4b0a21754006f749fa5e5da",
                    ),
                    DataFile(
                        "monthly-sunspots.csv", f"{_JB}/monthly-sunspots.csv",
                        "c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3",
                    ),
                    DataFile(
                        "shampoo.csv", f"{_JB}/shampoo.csv",
                        "f709eaa344b2d07039a49e2193cbff5e56206354f3a8203c0e02471beb39a451",
                    ),
                ),
            ),
            Dataset(
                "stocks_sp500",
                "S&P 500 index (^GSPC) daily open, high, low, close, adjusted close and volume, 1990-01-02 to "
                "2018-10-10 (7,252 trading days, Yahoo Finance)",
                "Yahoo Finance terms of use; research and testing only",
                (
                    DataFile(
                        "GSPC.csv", _GSPC, "e798ac64cf923cad773239bb169eb98ee131fcd3d1357bf8174ea58857452f9a",
                    ),
                ),
            ),
        )
    }
)


REGISTRY["imdb"] = Dataset(
    "imdb",
    "IMDB Large Movie Review Dataset v1.0 (Maas et al., ACL 2011): the 50,000 labelled reviews with the official "
    "25,000 train / 25,000 test split, balanced neg / pos. The canonical form is the aclImdb_v1.tar.gz archive of "
    "one file per review; lstmkit reads the offline layout imdb/imdb_reviews.csv[.gz] (columns split, id, rating, "
    "label, text; one row per aclImdb/{split}/{neg,pos}/{id}_{rating}.txt), whose sha256 is the one given here. "
    "Build it from the archive and place it under LSTMKIT_DATA_DIR; the download of the archive itself does not "
    "produce this file and fails the checksum",
    "research use, no explicit license; cite Maas et al. (2011)",
    (
        DataFile(
            "imdb_reviews.csv",
            "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            "6e681037d9cfaf62e351942e0ad813e54ce1d8c36ad1ef2b4181648a333c9611",
        ),
    ),
)

REGISTRY["fsdd"] = Dataset(
    "fsdd",
    "Free Spoken Digit Dataset v1.0.10: 3,000 recordings of the digits 0-9 (8 kHz mono 16-bit WAV) by six "
    "speakers, 50 of each digit per speaker; official split: recordings 0-4 of each speaker and digit are the "
    "test set. The canonical form is the recordings/ folder of the Jakobovski/free-spoken-digit-dataset "
    "repository (tag v1.0.10); lstmkit reads fsdd/recordings.tar.gz, those 3,000 files byte for byte in one "
    "deterministic tarball (tar --sort=name --mtime=2020-01-01 --owner=0 --group=0 --numeric-owner, gzip -9 -n), "
    "whose sha256 is the one given here. Build it from the repository and place it under LSTMKIT_DATA_DIR; the "
    "download of the repository archive itself does not produce this file and fails the checksum",
    "CC BY-SA 4.0 (Zohar Jackson and contributors)",
    (
        DataFile(
            "recordings.tar.gz",
            "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz",
            "fee8138a9de48c1a6bd517821950efa19772f4ef811b8a78208896d008de0ec5",
        ),
    ),
)
