"""Argument types and the parser class shared by every command."""

import argparse

from ..backends import BACKEND_NAMES


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2), like every other input error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value




TRAINING_SETTINGS = (
    "batch_size", "epochs", "max_steps", "max_time", "optimizer", "lr", "weight_decay", "lr_schedule", "patience",
    "seed", "deterministic", "backend", "device", "precision", "quiet",
)


def add_training_arguments(
    p: argparse.ArgumentParser, *, batch: str, epochs: str, lr: str, lr_schedule: str, patience: str
) -> None:
    """The training engine's options, shared by every `train` command; the strings give the task's defaults."""
    p.add_argument("--batch-size", type=positive_int, help=f"{batch}")
    p.add_argument("--epochs", type=positive_int, help=f"passes over the training data (default {epochs})")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many optimizer steps in the run")
    p.add_argument("--max-time", type=float, help="stop after this many seconds of training (this invocation)")
    p.add_argument("--optimizer", choices=("adam", "adamw", "rmsprop", "sgd"), help="(default adam)")
    p.add_argument("--lr", type=float, help=f"learning rate (default {lr})")
    p.add_argument("--weight-decay", type=float, help="(default 0)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine", "plateau"), help=f"(default {lr_schedule})")
    p.add_argument("--patience", type=positive_int, help=f"early-stopping patience in epochs (default {patience})")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--deterministic", action="store_true", default=None, help="ask torch for deterministic kernels")
    p.add_argument("--backend", choices=BACKEND_NAMES, help="recurrent backend (default auto)")
    p.add_argument("--precision", choices=("fp32", "bf16"), help="bf16: mixed-precision training (default fp32)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument("--quiet", action="store_true", default=None, help="no progress bar or per-epoch log")
    p.add_argument("--dry-run", action="store_true", help="train for 2 steps only, to check the set-up")


def training_settings(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """The settings given on the command line (unset ones left to the task), ``names`` plus the engine's;
    ``--dry-run`` caps the run at 2 steps."""
    settings = {n: getattr(args, n) for n in (*names, *TRAINING_SETTINGS) if getattr(args, n, None) is not None}
    if getattr(args, "dry_run", False):
        settings |= {"max_steps": 2, "epochs": 1}
    return settings
