"""`lstmkit data`: the dataset registry."""

import argparse

NAME, HELP = "data", "the dataset registry"


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(NAME, help=HELP).add_subparsers(
        dest="action", required=True, metavar="{list,download}"
    )
    data.add_parser("list", help="registered datasets and where a copy was found").set_defaults(run=_data_list)
    d = data.add_parser("download", help="download a dataset into the cache, checking its sha256")
    d.add_argument("name", help="dataset name")
    d.add_argument("--force", action="store_true", help="download again even if cached")
    d.set_defaults(run=_data_download)


def _data_list(args: argparse.Namespace) -> int:
    from ..data import REGISTRY, find_local

    for name, ds in sorted(REGISTRY.items()):
        local = find_local(name)
        where = str(local.parent) if local else "not downloaded"
        print(f"{name:<12} {ds.description}\n{'':<12} license: {ds.license}; local copy: {where}")
    return 0


def _data_download(args: argparse.Namespace) -> int:
    from ..data import download

    for path in download(args.name, force=args.force):
        print(path)
    return 0


