"""`lstmkit textgen`: train a character model, sample from it."""

import argparse
import sys

from ..errors import LstmkitError
from .args import add_training_arguments, positive_int, training_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    textgen = sub.add_parser("textgen", help="character-level text generation").add_subparsers(
        dest="action", required=True, metavar="{train,sample}"
    )
    t = textgen.add_parser("train", help="train a character model on a text file")
    source = t.add_mutually_exclusive_group()
    source.add_argument("--text", help="UTF-8 text file to learn from")
    source.add_argument("--data", help="registered dataset name instead of a file (see `lstmkit data list`)")
    t.add_argument("--out", required=True, help="run folder to create")
    t.add_argument("--seq-len", type=positive_int, help="characters per training window (default 100)")
    t.add_argument("--val-fraction", type=float, help="share of the text held out at its end (default 0.1)")
    t.add_argument("--lowercase", action="store_true", default=None, help="lower-case the text first")
    t.add_argument("--cell", choices=("lstm", "gru", "rnn"), help="recurrent cell (default lstm)")
    t.add_argument("--embed-dim", type=positive_int, help="character embedding size (default 64)")
    t.add_argument("--hidden-size", type=positive_int, help="units per layer (default 256)")
    t.add_argument("--num-layers", type=positive_int, help="stacked layers (default 2)")
    t.add_argument("--dropout", type=float, help="dropout between layers and before the output (default 0.2)")
    t.add_argument("--recurrent-dropout", type=float, help="variational dropout inside the recurrence")
    t.add_argument("--zoneout", type=float, help="LSTM: probability a unit keeps its previous state at a step")
    t.add_argument("--layer-norm", action="store_true", default=None, help="LSTM: layer-normalised gates")
    add_training_arguments(
        t, batch="windows per batch (default 32)", epochs="40", lr="0.003", lr_schedule="cosine",
        patience="4",
    )
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    t.set_defaults(run=_textgen_train)

    s = textgen.add_parser("sample", help="generate text from a trained run, streamed as it is produced")
    s.add_argument("run_dir", metavar="DIR", help="run folder made by `lstmkit textgen train`")
    s.add_argument("--prime", help="text to start from (default: a line break)")
    s.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    s.add_argument("--temperature", type=float, default=1.0, help="0 is greedy; higher is wilder (default 1)")
    s.add_argument("--top-k", type=positive_int, help="sample only among the k likeliest characters")
    s.add_argument("--seed", type=int, help="random seed for reproducible samples")
    s.set_defaults(run=_textgen_sample)


def _textgen_train(args: argparse.Namespace) -> int:
    from .. import textgen

    names = ("seq_len", "val_fraction", "lowercase", "cell", "embed_dim", "hidden_size", "num_layers", "dropout",
             "recurrent_dropout", "zoneout", "layer_norm")
    settings = training_settings(args, names)
    if args.resume:
        gen = textgen.train(out=args.out, resume=True, **settings)
    else:
        if args.text is None and args.data is None:
            raise LstmkitError("give the text to learn from with --text FILE or --data NAME")
        gen = textgen.train(args.text, data=args.data, out=args.out, overwrite=args.overwrite, **settings)
    val, run = gen.metrics.get("val", {}), gen.metrics.get("run", {})
    print(
        f"saved {gen.path}: val loss {val.get('loss', float('nan')):.4f} nats/char, "
        f"perplexity {val.get('perplexity', float('nan')):.3f}, {val.get('bits_per_char', float('nan')):.4f} bits/char "
        f"({run.get('epochs', 0)} epochs, {run.get('steps', 0)} steps, {run.get('seconds', 0):.0f} s, "
        f"stopped: {run.get('stop_reason', '?')})"
    )
    if run.get("stop_reason") == "interrupted":
        print(f"continue with: lstmkit textgen train --out {gen.path} --resume", file=sys.stderr)
        return 130
    return 0


def _textgen_sample(args: argparse.Namespace) -> int:
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


