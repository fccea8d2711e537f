"""The package logger; the CLI decides where it goes."""

import logging


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def configure(quiet: bool = False) -> None:
    """Sends lstmkit's log to stderr as plain lines: INFO normally, WARNING when quiet."""
    logger = logging.getLogger("lstmkit")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
