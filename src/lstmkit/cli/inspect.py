"""`lstmkit inspect`: an HTML view of a trained LSTM's gates and cell states on a text."""

import argparse
from pathlib import Path

from ..errors import LstmkitError
from .args import positive_int

NAME, HELP = "inspect", "see inside a trained LSTM: gates, cell states, units that track features"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help=HELP)
    p.add_argument("run_dir", metavar="DIR", help="run folder of an LSTM (made by `lstmkit textgen train`)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--text", help="the text to read")
    source.add_argument("--text-file", metavar="FILE", help="read the text from this UTF-8 file instead")
    p.add_argument(
        "--out", default="inspect.html", metavar="FILE.html",
        help="HTML page to write (default inspect.html); the PNG figures go beside it as <name>-features.png, "
        "-unit.png, -saturation.png",
    )
    p.add_argument("--unit", type=int, help="unit to show in detail (default: the best line-position unit)")
    p.add_argument("--layer", type=int, help="show the unit in this layer only (default: every layer)")
    p.add_argument("--quantity", choices=("c", "h", "i", "f", "o", "g"), default="c",
                   help="what to correlate with the features: c cell state (default), h hidden state, or a gate")
    p.add_argument("--top", type=positive_int, default=5, help="units listed per feature (default 5)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing page and figures")
    p.set_defaults(run=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    from ..inspect import inspect_run

    if args.text is None and args.text_file is None:
        raise LstmkitError("give the text to read with --text TEXT or --text-file FILE")
    if args.text_file is not None:
        path = Path(args.text_file)
        if not path.is_file():
            raise LstmkitError(f"text file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LstmkitError(f"{path} is not UTF-8 text") from None
    else:
        text = args.text
    report = inspect_run(
        args.run_dir, text, args.out, overwrite=args.overwrite, unit=args.unit, layer=args.layer,
        quantity=args.quantity, k=args.top,
    )
    for row in (r for r in report.top if r["rank"] == 1):
        print(f"{row['feature']:<16} best: layer {row['layer']} unit {row['unit']:<4} r = {row['r']:+.3f}")
    print(f"wrote {args.out}")
    return 0
