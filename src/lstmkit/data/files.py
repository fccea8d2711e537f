"""Reading user files with errors a person can act on."""

from pathlib import Path

from ..errors import LstmkitError


def read_text(path: str | Path) -> str:
    """Reads a UTF-8 text file, refusing missing, empty, binary and non-UTF-8 files with a clear message."""
    path = Path(path)
    if not path.exists():
        raise LstmkitError(f"text file not found: {path}")
    if not path.is_file():
        raise LstmkitError(f"not a file: {path}")
    raw = path.read_bytes()
    if not raw.strip():
        raise LstmkitError(f"text file is empty: {path}")
    if b"\x00" in raw:
        raise LstmkitError(f"{path} looks binary (it contains NUL bytes); expected a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LstmkitError(
            f"{path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); convert it to UTF-8"
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")
