"""`lstmkit` command line. Each command parses its arguments, calls the library, and prints.

Exit status: 0 success, 2 usage or input error (one line on stderr), 1 unexpected error, 130 interrupted.
"""

import os
import sys
import traceback
from collections.abc import Sequence

from ..errors import LstmkitError
from . import classify, data, experiment, forecast, inspect, speech, textgen
from .args import Parser

# each adds its sub-command: add_parser(sub)
COMMANDS = (textgen, data, forecast, inspect, experiment, classify, speech)


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The whole parser; with ``argv``, only the command it names gets its options (the others are listed
    with their help), so that a command does not import every task to start."""
    parser = Parser(prog="lstmkit", description="LSTM networks for text and time series.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    named = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    for command in COMMANDS:
        if argv is None or command.NAME == named:
            command.add_parser(sub)
        else:
            sub.add_parser(command.NAME, help=command.HELP)
    return parser


def _version() -> str:
    from .. import __version__

    return f"lstmkit {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    from ..utils.logging import configure

    configure(quiet=bool(getattr(args, "quiet", False)))
    try:
        return args.run(args)
    except LstmkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug: say so in one line, the traceback on request
        if os.environ.get("LSTMKIT_DEBUG"):
            traceback.print_exc()
        print(f"unexpected error: {type(err).__name__}: {err} (set LSTMKIT_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
