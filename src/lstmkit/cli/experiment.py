"""`lstmkit experiment`: reproducible experiments, such as RNN vs GRU vs LSTM on long-range memory."""

import argparse

from .args import positive_int


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in text.split(",") if v.strip())


def add_parser(sub: argparse._SubParsersAction) -> None:
    experiment = sub.add_parser("experiment", help="reproducible experiments").add_subparsers(
        dest="action", required=True, metavar="{memory}"
    )
    m = experiment.add_parser("memory", help="RNN vs GRU vs LSTM on the adding problem or the copy task")
    m.add_argument("--task", choices=("adding", "copy"), default="adding", help="(default adding)")
    m.add_argument("--cells", type=_name_list, default=("rnn", "gru", "lstm"),
                   help="comma-separated cell types (default rnn,gru,lstm)")
    m.add_argument("--lengths", type=_int_list, default=(50, 100, 200, 400),
                   help="comma-separated sequence lengths (copy: delays) (default 50,100,200,400)")
    m.add_argument("--out", help="folder to write results.json, gradients.json and the PNG plots into")
    m.add_argument("--seed", type=int, help="random seed (default 0)")
    m.add_argument("--steps", type=positive_int, help="optimizer steps per cell type and length")
    m.add_argument("--batch-size", type=positive_int, help="sequences per step")
    m.add_argument("--hidden-size", type=positive_int, help="units of the recurrent layer")
    m.add_argument("--lr", type=float, help="Adam learning rate")
    m.add_argument("--grad-clip", type=float, help="max global gradient norm")
    m.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    m.add_argument("--quiet", action="store_true", help="no progress bars")
    m.set_defaults(run=_memory)


def _memory(args: argparse.Namespace) -> int:
    from ..config import override
    from ..experiment import MemoryConfig, run_memory

    config = override(
        MemoryConfig(), task=args.task, cells=args.cells, lengths=args.lengths, seed=args.seed, steps=args.steps,
        batch_size=args.batch_size, hidden_size=args.hidden_size, lr=args.lr, grad_clip=args.grad_clip,
        quiet=args.quiet,
    )
    results = run_memory(config, out=args.out, overwrite=args.overwrite)
    metric = results.metric
    print(f"{'cell':<6}{'length':>8}{metric:>16}{'seconds':>10}")
    for row in results.rows:
        print(f"{row['cell']:<6}{row['length']:>8}{row[metric]:>16.4f}{row['seconds']:>10.1f}")
    if args.out:
        print(f"wrote {args.out}")
    return 0
