"""``presample prepare``: load a model once so that later commands start fast.

On the ONNX Runtime engine the first load converts the model (about 25 s for
the shipped one on 2 cores) and keeps the result in the cache folder;
``scripts/run.sh`` runs this right after installing, so the first prompt a
user asks for is not the one that pays for it. On other engines it loads the
model (a Hub id is downloaded) and says which engine runs it.
"""

from __future__ import annotations

import argparse
import sys

from .model_options import add_model_options, open_presampler


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="get a model ready for its engine (convert once, download once)",
        description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", ""),
    )
    add_model_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with open_presampler(args) as presampler:
        folder = getattr(presampler.backend, "folder", None)
        where = f" ({folder})" if folder else ""
        print(f"ready: {presampler.source.name} on {presampler.engine}{where}", file=sys.stderr)
    return 0
