"""Run folders, written atomically: everything goes to a temporary folder beside the target, which then
takes the target's place in one step, so that a reader, or a process killed at any moment (SIGKILL too),
finds either the last whole folder or the new whole folder, never a mix or nothing.

The one step is the kernel's atomic exchange of two paths (Linux's renameat2 with RENAME_EXCHANGE); where
the system has none, the old folder is renamed aside first, and a reader that finds the target missing
takes that aside copy back (``recover``).
"""

import csv
import ctypes
import ctypes.util
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LstmkitError

FileContent = bytes | Callable[[Path], None]  # raw bytes, or a function that writes the file at a path


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def check_new_output(path: Path, overwrite: bool, resumable: bool = True) -> None:
    """Refuses an existing output path unless ``overwrite``; nothing is deleted here. ``resumable``: the
    command has --resume, which the message then offers."""
    if path.exists() and not overwrite:
        resume = " or --resume to continue it" if resumable else ""
        raise LstmkitError(f"output folder {path} already exists; pass --overwrite to replace it{resume}")
    if path.exists() and not path.is_dir():
        raise LstmkitError(f"output path {path} exists and is not a folder")


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two existing paths atomically; False where the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def recover(path: Path) -> None:
    """Puts back a folder left renamed aside by a write killed between its two renames (systems without an
    atomic exchange), and removes temporary folders of killed writes."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    aside = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if aside and not path.exists():
        aside.pop().rename(path)
    for stale in aside + list(path.parent.glob(f".{path.name}.tmp-*")):
        shutil.rmtree(stale, ignore_errors=True)


def write_folder(path: Path, files: dict[str, FileContent]) -> None:
    """Writes ``files`` (relative name -> content) as the folder ``path``, replacing any folder there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)
        for name, content in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                content(target)
            os.chmod(target, 0o666 & ~umask)
        if not path.exists():
            tmp.rename(path)
        elif _exchange(tmp, path):
            shutil.rmtree(tmp)  # now the old folder
        else:
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def add_to_folder(path: Path, files: dict[str, FileContent]) -> None:
    """Rewrites the folder ``path`` atomically with ``files`` added (or replaced) beside what it holds."""
    path = Path(path)
    existing: dict[str, FileContent] = {
        p.relative_to(path).as_posix(): (lambda dst, src=p: shutil.copyfile(src, dst))
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }
    write_folder(path, {**existing, **files})


def read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise LstmkitError(f"missing {what}: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LstmkitError(f"cannot read {path}: not valid JSON ({err})") from None


def read_run_config(folder: Path, task: str | None = None) -> dict[str, Any]:
    """The config.json of a run folder (made by ``task``, when given), with clear errors when the folder is
    not one: it names the task that made it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LstmkitError(f"run folder not found: {folder}")
    if not (folder / "config.json").is_file():
        raise LstmkitError(f"{folder} is not an lstmkit run folder (no config.json)")
    config = read_json(folder / "config.json", "config.json")
    found = config.get("task") if isinstance(config, dict) else None
    if not isinstance(found, str):
        raise LstmkitError(f"{folder}/config.json names no task")
    if task is not None and found != task:
        raise LstmkitError(f"{folder} is a {found} run, not a {task} run")
    return config
