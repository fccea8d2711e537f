"""`lstmkit experiment`: reproducible experiments, such as RNN vs GRU vs LSTM on long-range memory."""

import argparse

NAME, HELP = "experiment", "reproducible experiments"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..tasks.registry import get
    from .options import add_train_command

    actions = sub.add_parser(NAME, help=HELP).add_subparsers(dest="action", required=True, metavar="{memory}")
    task = get("memory")
    add_train_command(actions, task, _report, name="memory", help=task.help)


def _report(results) -> None:
    metric = results.metric
    print(f"{'cell':<6}{'length':>8}{metric:>16}{'seconds':>10}")
    for row in results.rows:
        print(f"{row['cell']:<6}{row['length']:>8}{row[metric]:>16.4f}{row['seconds']:>10.1f}")
    if results.path is not None:
        print(f"wrote {results.path}")
