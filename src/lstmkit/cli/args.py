"""Argument types and the parser class shared by every command."""

import argparse


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2), like every other input error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


