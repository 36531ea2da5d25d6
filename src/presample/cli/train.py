"""``presample train``: prepare data, train and export our own TIPO-format model.

Needs the ``train`` extra (PyTorch, transformers, accelerate, matplotlib);
``prepare`` needs only the core package.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import EXIT_FAILURE, EXIT_INTERRUPTED, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.data import default_data_dir, default_out_dir

    p = sub.add_parser(
        "train",
        help="prepare data, train and export presample's own TIPO-format model",
        description="Train a small TIPO-format LLaMA from the project's real data: "
        "'prepare' builds the training records, 'run' trains (and resumes) with "
        "checkpoints, 'export' writes a model folder presample can load.",
        epilog="example: presample train prepare && presample train run --threads 2 "
        "&& presample train export",
    )
    tsub = p.add_subparsers(dest="train_command", metavar="COMMAND", required=True)

    prep = tsub.add_parser(
        "prepare",
        help="build train/validation/test records from the shared data",
        description="Read the Civitai prompts and the caption sets (ImageInWords, DPG-Bench, "
        "ELLA, COCO, CC3M), clean and canonicalise them, split by source record and write "
        "{train,validation,test}.jsonl.gz and counts.json. Same inputs, same bytes.",
    )
    prep.add_argument("--data-dir", type=Path, default=default_data_dir(),
                      help="the shared data folder (default %(default)s; "
                      "or set $PRESAMPLE_SHARED_DATA)")  # fmt: skip
    prep.add_argument(
        "--out", type=Path, default=default_out_dir(), help="output folder (default %(default)s)"
    )
    prep.add_argument(
        "--limit",
        type=int,
        default=None,
        help="read at most this many records per source (quick trials)",
    )
    prep.set_defaults(handler=run_prepare)

    run = tsub.add_parser(
        "run",
        help="train a model, or resume the run in --run-dir",
        description="Train a LLaMA from scratch on prepared records, with our own tokenizer "
        "(trained first), AdamW and a cosine schedule. Checkpoints every few minutes and on "
        "Ctrl-C / SIGTERM; running again with the same --run-dir continues exactly. "
        "Loss curves go to RUN_DIR/log.jsonl and RUN_DIR/loss.png. For several GPUs or "
        "nodes: accelerate launch -m presample.training.train ...",
    )
    from ..training.train import build_arg_parser

    build_arg_parser(run)
    run.set_defaults(handler=run_train)

    export = tsub.add_parser(
        "export",
        help="write the latest checkpoint as a model folder presample loads",
        description="Write the latest checkpoint of a run as safetensors (bf16 by default) "
        "with its tokenizer, presample.json and a model card; load it with "
        "'presample --model FOLDER' or Presampler(FOLDER).",
    )
    export.add_argument(
        "--run-dir",
        type=Path,
        default=Path("artifacts/runs/default"),
        help="the training run (default %(default)s)",
    )
    export.add_argument(
        "--out",
        type=Path,
        default=Path("artifacts/models/default"),
        help="output folder (default %(default)s)",
    )
    export.add_argument(
        "--name",
        default="presample-tipo-20m",
        help="model name in presample.json (default %(default)s)",
    )
    export.add_argument(
        "--dtype",
        choices=("bfloat16", "float16", "float32"),
        default="bfloat16",
        help="weight type (default %(default)s)",
    )
    export.add_argument(
        "--gguf",
        choices=("none", "f16", "q8_0", "q5_0"),
        default="q8_0",
        help="also write the weights as model.gguf, which the llama.cpp backend runs "
        "(--backend llama.cpp; default %(default)s)",
    )
    export.add_argument(
        "--gguf-only",
        action="store_true",
        help="keep only model.gguf as the weights (no safetensors): the smallest folder; "
        "transformers dequantises it when loading",
    )
    export.set_defaults(handler=run_export)

    to_gguf = tsub.add_parser(
        "gguf",
        help="convert one of our model folders into a GGUF file (llama.cpp, ComfyUI, KGen)",
        description="Write a model folder (the shipped default, or one from 'train export') "
        "as one GGUF file that llama.cpp and its front ends load; run it with "
        "'presample --model FILE.gguf' (llama.cpp when presample[llamacpp] is installed).",
    )
    to_gguf.add_argument(
        "model_dir",
        type=Path,
        nargs="?",
        default=None,
        help="model folder (default: the shipped default model)",
    )
    to_gguf.add_argument("-o", "--out", type=Path, required=True, help="the .gguf file to write")
    to_gguf.add_argument(
        "--type",
        choices=("f32", "f16", "q8_0", "q5_0"),
        default="f16",
        help="weight type: f16 keeps the weights, q8_0 halves the file again, q5_0 takes "
        "5.5 bits a weight (default %(default)s)",
    )
    to_gguf.add_argument("--force", action="store_true", help="overwrite an existing file")
    to_gguf.set_defaults(handler=run_gguf)

    prior = tsub.add_parser(
        "prior",
        help="build the tag co-occurrence table behind --tag-prior",
        description="Count which tags accompany which in the prepared training split "
        "(special and general tags; characters and copyrights only as conditions, never as "
        "suggestions) into the SQLite table the tag prior reads. "
        "The shipped table is built with the defaults from 'presample train prepare' output. "
        "Same records, same bytes.",
        epilog="example: presample train prior --data-dir artifacts/data "
        "--out src/presample/data/cooccurrence.sqlite",
    )
    prior.add_argument("--data-dir", type=Path, default=default_out_dir(),
                       help="prepared records ('presample train prepare' output; "
                       "default %(default)s)")  # fmt: skip
    prior.add_argument("--out", type=Path, required=True, help="the .sqlite file to write")
    prior.add_argument("--force", action="store_true", help="overwrite an existing file")
    prior.set_defaults(handler=run_prior)


def run_prepare(args: argparse.Namespace) -> int:
    from ..training.data import prepare

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if not args.data_dir.is_dir():
        raise UserError(f"{args.data_dir}: no such folder (give --data-dir)")
    try:
        counts = prepare(args.data_dir, args.out, limit=args.limit)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    print(json.dumps({"out": str(args.out), **counts}, indent=2))
    return 0


def run_prior(args: argparse.Namespace) -> int:
    from ..training.cooccurrence import build_table
    from ..training.records import read_records, split_path

    train = split_path(args.data_dir, "train")
    if not train.is_file():
        raise UserError(f"{train}: no training records (run 'presample train prepare' first)")
    if args.out.exists() and not args.force:
        raise UserError(f"{args.out} exists (give --force to overwrite it)")
    source = f"{train.name} of {args.data_dir.name}"
    counts = build_table(read_records(train), args.out, source=source)
    print(json.dumps({"out": str(args.out), **counts}, indent=2))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ..training.records import split_path
    from ..training.train import run_config, train

    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be at least 1")
    config = run_config(args)
    run_dir = Path(args.run_dir)
    if config is not None and not (run_dir / "config.json").is_file():
        if not split_path(Path(config.data_dir), "train").is_file():
            raise UserError(f"no prepared data in {config.data_dir}; run 'presample train prepare'")
        for name in ("batch_size", "seq_len", "vocab_size"):
            if getattr(config, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    try:
        result = train(run_dir, config, threads=args.threads, progress_bar=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"presample: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(json.dumps({"step": result.step, "tokens": result.tokens, "loss": result.loss,
                      "val_loss": result.val_loss, "run_dir": str(run_dir)}))  # fmt: skip
    return EXIT_INTERRUPTED if result.interrupted else 0


def run_export(args: argparse.Namespace) -> int:
    from ..training.export import export_run

    if not (args.run_dir / "config.json").is_file():
        raise UserError(f"{args.run_dir} is not a training run (no config.json)")
    if args.gguf_only and args.gguf == "none":
        raise UserError("--gguf-only needs a GGUF type (--gguf f16, q8_0 or q5_0)")
    try:
        out = export_run(
            args.run_dir, args.out, name=args.name, dtype=args.dtype,
            gguf=None if args.gguf == "none" else args.gguf, gguf_only=args.gguf_only,
        )  # fmt: skip
    except FileNotFoundError as exc:
        print(f"presample: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(out)
    return 0


def run_gguf(args: argparse.Namespace) -> int:
    from ..engine.backend import ModelError
    from ..registry import default_model_dir, resolve
    from ..training.gguf_export import export_gguf

    model_dir = args.model_dir or default_model_dir()
    needed = ("config.json", "tokenizer.json")
    if not all((model_dir / name).is_file() for name in needed):
        raise UserError(f"{model_dir} is not one of our model folders ({', '.join(needed)})")
    if not list(model_dir.glob("*.safetensors")):
        shipped = model_dir / "model.gguf"
        if shipped.is_file():
            raise UserError(f"{model_dir} holds its weights as GGUF already: use {shipped}")
        raise UserError(f"{model_dir} has no safetensors weights to convert")
    try:
        name = resolve(str(model_dir)).name  # the card's name, as `presample` shows it
    except ModelError as exc:
        raise UserError(str(exc)) from None
    if args.out.suffix.lower() != ".gguf":
        raise UserError(f"{args.out}: the output name must end in .gguf")
    if args.out.exists() and not args.force:
        raise UserError(f"{args.out} exists; pass --force to overwrite it")
    partial = args.out.with_name(args.out.name + ".partial")
    try:
        export_gguf(model_dir, partial, dtype=args.type, name=str(name))
        partial.replace(args.out)  # never leave a half-written file under the real name
    except ValueError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(str(exc)) from None
    print(args.out)
    return 0
