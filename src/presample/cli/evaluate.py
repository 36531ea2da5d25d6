"""``presample eval``: the same numbers for a non-neural baseline and a model on
the held-out test split, written as ``report.md``, ``metrics.json``,
``samples.jsonl`` and PNG plots.

Needs the prepared records (``presample train prepare``) and the ``eval`` extra
(matplotlib, scipy and the all-MiniLM-L6-v2 package for the caption metrics).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..request import MAX_CAPTION_CANDIDATES, MAX_TAG_PRIOR
from .common import EXIT_FAILURE, UserError
from .model_options import add_model_options, open_presampler

MAX_LIMIT = 100_000


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..evaluation.run import DEFAULT_GIVEN, DEFAULT_SEEDS
    from ..training.data import default_out_dir

    p = sub.add_parser(
        "eval",
        help="evaluate a model against a non-neural baseline on the test split",
        description="Give the first tags of held-out test prompts and the short captions "
        "of held-out test captions to a retrieval / co-occurrence baseline over the training "
        "prompts and to a model, each with several seeds, and measure: real-tag share, "
        "recall of the held-out tags, length-target hits, input tags preserved, rating "
        "respected, diversity across seeds, caption similarity to the input and Fréchet "
        "distance to real captions (all-MiniLM-L6-v2). Writes OUT/report.md, "
        "OUT/metrics.json, OUT/samples.jsonl and OUT/*.png.",
        epilog="example: presample eval --limit 100 --out artifacts/eval/default",
    )
    p.add_argument("--data-dir", type=Path, default=default_out_dir(),
                   help="the prepared records (default %(default)s)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("artifacts/eval"),
                   help="output folder (default %(default)s)")  # fmt: skip
    p.add_argument("--limit", type=int, default=None,
                   help="test records to use, half tag and half caption items "
                   "(default 200; 60 with --quick)")  # fmt: skip
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds, each item runs once per seed "
                   f"(default {','.join(map(str, DEFAULT_SEEDS))}; 0 with --quick)")  # fmt: skip
    p.add_argument("--quick", action="store_true",
                   help=f"a small run for comparing changes: {QUICK['limit']} records, seed 0, "
                   f"{QUICK['tag_captions']} tag-caption records (about 2 minutes for the "
                   "shipped model on 2 cores); --limit, --seeds and --tag-captions still win")
    p.add_argument("--batch-size", type=int, default=8,
                   help="requests per model batch (default %(default)s)")  # fmt: skip
    p.add_argument("--given", type=parse_given, default=DEFAULT_GIVEN,
                   help="tags given from each test prompt, the rest held out: N gives the "
                   "first N, a percentage (30%%) that share of them drawn at random, the way "
                   "a post's tags are known in no order (default 30%%)")  # fmt: skip
    p.add_argument("--tag-captions", type=int, default=None,
                   help="test records with tags and a real caption on which to caption the "
                   "tags alone, half Civitai prompts; 0 skips (default 60; 30 with "
                   "--quick)")  # fmt: skip
    p.add_argument("--caption-candidates", type=int, metavar="N",
                   help="captions the model draws when it writes one from tags alone, the "
                   "one that fits the tags kept (default: the request default, 3)")  # fmt: skip
    p.add_argument("--tag-prior", type=float, metavar="STRENGTH",
                   help="the model's co-occurrence prior on the tag line, 0 off (default: "
                   "the model card's; see presample generate --help)")  # fmt: skip
    p.add_argument("--tag-draw", type=float, metavar="SHARE",
                   help="share of new tags drawn from the co-occurrence table before the "
                   "model writes, 0 to 1 (default: the model card's; see presample generate "
                   "--help)")  # fmt: skip
    p.add_argument("--baseline-only", action="store_true", help="evaluate only the baseline")
    p.add_argument("--no-embeddings", action="store_true",
                   help="skip the caption embedding metrics (no MiniLM)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_options(p)
    p.set_defaults(handler=run_eval)


# The sizes of a full run and of --quick (each overridden by its own option).
FULL: dict[str, Any] = {"limit": 200, "tag_captions": 60}  # seeds: evaluation's default
QUICK: dict[str, Any] = {"limit": 60, "seeds": "0", "tag_captions": 30}


def parse_given(text: str) -> int | float:
    """``--given``: a count (``4``) or a share of the tag line (``30%``)."""
    try:
        if text.strip().endswith("%"):
            share = float(text.strip()[:-1]) / 100
            if not 0 < share < 1:
                raise ValueError
            return share
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count of at least 1 or a percentage between 0% and 100%, got {text!r}"
        ) from None
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return count


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise UserError("--seeds needs at least one seed")
    if any(seed < 0 for seed in seeds):
        raise UserError("--seeds must not be negative")
    if len(set(seeds)) != len(seeds):
        raise UserError("--seeds must not repeat a seed")
    return seeds


def run_eval(args: argparse.Namespace) -> int:
    from ..evaluation.run import DEFAULT_SEEDS, EvalConfig, evaluate

    sizes = QUICK if args.quick else {**FULL, "seeds": ",".join(map(str, DEFAULT_SEEDS))}
    for name in ("limit", "seeds", "tag_captions"):
        if getattr(args, name) is None:
            setattr(args, name, sizes[name])

    if not 1 <= args.limit <= MAX_LIMIT:
        raise UserError(f"--limit must be between 1 and {MAX_LIMIT}")
    if not 1 <= args.batch_size <= 256:
        raise UserError("--batch-size must be between 1 and 256")
    if not 0 <= args.tag_captions <= MAX_LIMIT:
        raise UserError(f"--tag-captions must be between 0 and {MAX_LIMIT}")
    if args.caption_candidates is not None and not (
        1 <= args.caption_candidates <= MAX_CAPTION_CANDIDATES
    ):
        raise UserError(f"--caption-candidates must be between 1 and {MAX_CAPTION_CANDIDATES}")
    if args.tag_prior is not None and not 0 <= args.tag_prior <= MAX_TAG_PRIOR:
        raise UserError(f"--tag-prior must be between 0 and {MAX_TAG_PRIOR}")
    if args.tag_draw is not None and not 0 <= args.tag_draw <= 1:
        raise UserError("--tag-draw must be between 0 and 1")
    if not args.data_dir.is_dir():
        raise UserError(f"{args.data_dir}: no such folder; run 'presample train prepare'")
    config = EvalConfig(
        data_dir=args.data_dir,
        out_dir=args.out,
        limit=args.limit,
        seeds=parse_seeds(args.seeds),
        batch_size=args.batch_size,
        given=args.given,
        tag_captions=args.tag_captions,
        caption_candidates=args.caption_candidates,
        tag_prior=args.tag_prior,
        tag_draw=args.tag_draw,
        embeddings=not args.no_embeddings,
        progress=not args.no_progress,
    )
    open_model = None if args.baseline_only else (lambda: open_presampler(args))

    def log(message: str) -> None:
        if not args.no_progress:
            print(message, file=sys.stderr)

    try:
        result = evaluate(config, open_model, log=log)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        print(f"presample: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(json.dumps({"out": str(args.out), "samplers": result["samplers"]}, indent=2))
    return 0
