"""Every lstmkit command written in README.md and docs/*.md parses with today's command line: the flags the
documents promise exist, with the values they show (running them is the job of the end-to-end tests)."""

import re
import shlex
from pathlib import Path

import pytest

from lstmkit.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDERS = {"DIR": "runs/x", "FILE": "x.csv", "N": "3", "SECONDS": "60", "P": "fp32", "S": "0"}


def _commands(path: Path) -> list[str]:
    text = path.read_text()
    found, blocks, inside = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            blocks += [[]] if inside else []
        elif inside:
            blocks[-1].append(line)
    for block in blocks:
        joined = "\n".join(block).replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            found += [part.strip() for part in line.split("&&") if part.strip().startswith("lstmkit ")]
    found += [m for m in re.findall(r"`(lstmkit [^`]+)`", text) if " " in m[8:]]
    return found


def _cases():
    for path in DOCS:
        for command in _commands(path):
            words = shlex.split(command)[1:]
            if len(words) < 3 or words[0] not in {"textgen", "forecast", "classify", "inspect", "experiment",
                                                  "data"}:
                continue  # a mention (`lstmkit forecast train` or `lstmkit import ...`), not a whole command
            if words[1] in {"train", "backtest"} and "--out" not in words and words[0] != "forecast":
                continue  # a fragment quoted in prose
            yield pytest.param([PLACEHOLDERS.get(w, w) for w in words], id=f"{path.name}:{' '.join(words)[:60]}")


CASES = list(_cases())


def test_the_documents_hold_commands():
    assert len(CASES) >= 20


@pytest.mark.parametrize("argv", CASES)
def test_documented_command_parses(argv):
    args = build_parser(argv).parse_args(argv)
    assert callable(args.run)
