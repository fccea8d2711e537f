"""The package logger; the CLI decides where it goes."""

import logging
import sys


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, so a replaced stderr (a capturing test
    runner, a redirected notebook cell) still receives the log."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure(quiet: bool = False) -> None:
    """Sends lstmkit's log to stderr as plain lines: INFO normally, WARNING when quiet."""
    logger = logging.getLogger("lstmkit")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
