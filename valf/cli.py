"""The ``valf`` command.

    valf data download lunghist700 --dest DIR [--archive FILE] [--url URL]
    valf data make-synthetic --dest DIR [--seed S] [--scale X] [--difficulty D]
                             [--image-size H W]

Errors in the input (a bad argument, a broken release, no network) end with a
one-paragraph message on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def _download(args):
    from valf.data import lunghist700

    kwargs = {"progress": not args.quiet}
    if args.url:
        kwargs["url"] = args.url
    if args.archive:
        kwargs["archive"] = args.archive
    root = lunghist700.download_lunghist700(args.dest, **kwargs)
    print(f"LungHist700 is ready at {root}")


def _make_synthetic(args):
    from valf.data import synthetic

    root = synthetic.make_synthetic_release(
        args.dest,
        seed=args.seed,
        scale=args.scale,
        image_size=tuple(args.image_size),
        difficulty=args.difficulty,
        progress=not args.quiet,
    )
    print(f"Generated data set (LungHist700 layout) written to {root}")


def build_parser():
    parser = argparse.ArgumentParser(prog="valf", description="The VALF study's command line.")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="get or generate data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    download = data_commands.add_parser(
        "download", help="download and check a public data set",
        description="Download LungHist700 (figshare article 25459174), resuming a partial "
                    "download, extract it and check that every image the CSV names is there.")
    download.add_argument("dataset", choices=["lunghist700"])
    download.add_argument("--dest", required=True, help="folder to download and extract into")
    download.add_argument("--archive", help="use this already-downloaded archive instead")
    download.add_argument("--url", help="download from this address instead of figshare")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(handler=_download)

    synthetic = data_commands.add_parser(
        "make-synthetic", help="write the generated stand-in for LungHist700",
        description="Write generated H&E-like tiles in exactly LungHist700's released layout.")
    synthetic.add_argument("--dest", required=True, help="folder to write the release into")
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--scale", type=float, default=1.0,
                           help="share of the release's images to generate, in (0, 1]")
    synthetic.add_argument("--difficulty", type=float, default=0.5,
                           help="0: classes clearly distinct; 1: ACA and SCC overlap most")
    synthetic.add_argument("--image-size", type=int, nargs=2, default=(240, 320),
                           metavar=("HEIGHT", "WIDTH"))
    synthetic.add_argument("--quiet", action="store_true", help="no progress bar")
    synthetic.set_defaults(handler=_make_synthetic)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, OSError) as error:
        print(f"valf: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
