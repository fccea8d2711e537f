"""`lstmkit textgen`: train a character model (options from its configuration), sample from it."""

import argparse
import sys

from .args import positive_int

NAME, HELP = "textgen", "character-level text generation"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..tasks.registry import get
    from .options import add_train_command

    actions = sub.add_parser(NAME, help=HELP).add_subparsers(dest="action", required=True, metavar="{train,sample}")
    add_train_command(actions, get(NAME), _report, help="train a character model on a text file")

    s = actions.add_parser("sample", help="generate text from a trained run, streamed as it is produced")
    s.add_argument("run_dir", metavar="DIR", help="run folder made by `lstmkit textgen train`")
    s.add_argument("--prime", help="text to start from (default: a line break)")
    s.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    s.add_argument("--temperature", type=float, default=1.0, help="0 is greedy; higher is wilder (default 1)")
    s.add_argument("--top-k", type=positive_int, help="sample only among the k likeliest characters")
    s.add_argument("--seed", type=int, help="random seed for reproducible samples")
    s.set_defaults(run=_sample)


def _report(gen) -> None:
    val, run = gen.metrics.get("val", {}), gen.metrics.get("run", {})
    print(
        f"saved {gen.path}: val loss {val.get('loss', float('nan')):.4f} nats/char, "
        f"perplexity {val.get('perplexity', float('nan')):.3f}, {val.get('bits_per_char', float('nan')):.4f} bits/char "
        f"({run.get('epochs', 0)} epochs, {run.get('steps', 0)} steps, {run.get('seconds', 0):.0f} s, "
        f"stopped: {run.get('stop_reason', '?')})"
    )


def _sample(args: argparse.Namespace) -> int:
    from .. import textgen

    gen = textgen.load(args.run_dir)
    stream = gen.stream(args.prime, args.length, args.temperature, args.top_k, args.seed)
    first = next(stream, "")  # validates the arguments before anything is printed
    sys.stdout.write((args.prime or "") + first)
    for ch in stream:
        sys.stdout.write(ch)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
