"""Command-line options generated from a task's configuration: one option per config field, its type,
choices, help and the task's default all read from the field and its metadata (config.setting), so the
command line restates nothing. Also the one ``train`` command every task shares."""

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

from ..tasks.base import Task


def _scalar(kind: type, name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def _list_of(kind: type, lower: bool) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        items = [v.strip() for v in text.split(",") if v.strip()]
        try:
            values = tuple(kind(v.lower() if lower else v) for v in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError("expected at least one value")
        return values

    return parse


def _option_type(annotation: Any) -> tuple[type, bool]:
    """(the scalar type, whether it is a comma-separated list) of a field's annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _option_type(args[0])
    if typing.get_origin(annotation) is tuple:
        return args[0], True
    return annotation, False


def _show(value: Any, unit: str | None) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == "":
        return "none"
    if isinstance(value, tuple):
        value = ",".join(map(str, value))
    return f"{value} {unit}" if unit else str(value)


def add_config_options(parser: argparse.ArgumentParser, task: Task) -> list[str]:
    """Adds an option per field of the task's config sections (minus ``task.unused``), grouped by section,
    with the task's defaults in the help; returns the field names. Options default to None: unset ones are
    left to the configuration (or, on resume, to the saved run)."""
    names: list[str] = []
    for section, part in task.sections(task.default_config()).items():
        group = parser.add_argument_group(f"{section} settings")
        for f in dataclasses.fields(part):
            meta = f.metadata
            if not meta.get("cli", True) or f.name in task.unused or f.name in names:
                continue
            names.append(f.name)
            flag = "--" + f.name.replace("_", "-")
            kind, many = _option_type(f.type)
            text = f"{meta.get('help', '')} (default {_show(getattr(part, f.name), meta.get('unit'))})"
            choices = meta.get("choices")
            if kind is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
            elif many:
                if choices:
                    text = f"{text}; from {', '.join(choices)}"
                group.add_argument(flag, type=_list_of(kind, bool(choices)), metavar="A,B,...", help=text)
            elif choices:
                group.add_argument(flag, choices=choices, help=text)
            else:
                metavar = "PATH" if meta.get("path") else None
                parse = _scalar(kind, kind.__name__) if kind in (int, float) else kind
                group.add_argument(flag, type=parse, metavar=metavar, help=text)
    return names


def add_train_command(
    actions: argparse._SubParsersAction,
    task: Task,
    report: Callable[[Any], None],
    *,
    name: str = "train",
    help: str = "train a model and write its run folder",
    run: Callable[..., Any] | None = None,
    resumable: bool = True,
    passed: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """The ``train`` command of ``task`` (or another that takes the same options, with ``run``): its config
    options, --out, --overwrite, --resume, --dry-run; ``report(result)`` prints the outcome. ``passed`` names
    options the caller adds to the returned parser that go to ``run`` as keyword arguments too. A task that
    writes a run folder through ``Task.train`` also gets --config (start from a run's config.json)."""
    p = actions.add_parser(name, help=help)
    names = add_config_options(p, task)
    run_group = p.add_argument_group("the run")
    required = task.writes_run and task.default_out({}) is None
    run_group.add_argument("--out", required=required, metavar="DIR", help="the run folder to write")
    run_group.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    if resumable:
        run_group.add_argument("--resume", action="store_true",
                               help="continue the run in --out from its last checkpoint (the other options may be "
                                    "given again with their saved values; epochs, max-steps and max-time may "
                                    "change)")
    if task.writes_run and run is None:
        run_group.add_argument("--config", metavar="PATH",
                               help="start from a run's config.json (or folder): its settings and the backend "
                                    "that trained it, so the same seed trains the same weights; options given "
                                    "override it")
    run_group.add_argument("--dry-run", action="store_true", help="train for 2 steps only, to check the set-up")
    p.set_defaults(run=lambda args: _train(task, [*names, *passed], report, run, args))
    return p


def _train(task: Task, names: list[str], report: Callable[[Any], None], run: Callable[..., Any] | None,
           args: argparse.Namespace) -> int:
    settings = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if args.dry_run:
        settings |= task.dry_run_settings()
    out = args.out or task.default_out(settings)
    extra = {"resume": True} if getattr(args, "resume", False) else {}
    if getattr(args, "config", None):
        extra["config"] = args.config
    result = (run or task.train)(out=out, overwrite=args.overwrite, **extra, **settings)
    report(result)
    stopped = getattr(result, "metrics", {}).get("run", {}).get("stop_reason") if hasattr(result, "metrics") else None
    if stopped == "interrupted":
        command = " ".join(part for part in ("lstmkit", *task.command) if part)
        print(f"continue with: {command} --out {out} --resume", file=sys.stderr)
        return 130
    return 0
