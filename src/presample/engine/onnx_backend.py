"""The ONNX Runtime backend: the default engine on the CPU, with no compiler.

ONNX Runtime installs as a prebuilt wheel and runs small decoders near
llama.cpp's speed on a CPU (int8 weights and activations; the table is in
the README, ``benchmarks/bench_default_path.py`` and
``benchmarks/results/engines-prebuilt-2026-12-05.md``). The model is converted once
(``engine/onnx_export.py``); here we only drive its forward pass.

Our own decode loop, for the reasons the transformers backend gives: the
logits come back as NumPy and each row's token is drawn by
``engine/choose.py`` with its own settings, random stream and constraint,
exactly as on the llama.cpp backend. Every job of a call decodes in one
batch: each distinct prompt is read once (the draws of one caption share it)
and its key/value cache copied to its rows, which may then be of different
lengths: the attention mask tells each row's length, and the graph's attention
(GroupQueryAttention) reads and writes each row's cache up to its own length.
A row's bits do not depend on its neighbours: every operator of the graph
works row by row, the int8 matmuls quantize each row's activations on their
own (checked in the tests, logits compared bit for bit alone and beside
longer and shorter rows).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import install_hint
from .backend import (
    BackendInfo,
    Generation,
    GenerationJob,
    ModelError,
    ProgressCallback,
    check_context,
    usable_cores,
)
from .choose import choose
from .onnx_export import MODEL_FILE, SOURCE_FILE, TOKENIZER_FILE


@dataclass(frozen=True, slots=True)
class ThreadPolicy:
    threads: int
    spinning: bool


# Other work on the machine, in cores, from which ONNX Runtime's threads wait
# passively instead of spinning.
BUSY_LOAD = 0.5
# How long the machine is watched at load time to tell (seconds).
LOAD_SAMPLE_SECONDS = 0.1  # /proc/stat counts in 10 ms ticks


def foreign_load(seconds: float = LOAD_SAMPLE_SECONDS) -> float:
    """Cores kept busy by other processes right now.

    The machine's busy time from /proc/stat over a short sleep, minus this
    process's own (NumPy's threads may still spin after import). Not the load
    average: it remembers this process's own last minute of work (the previous
    prompts of a batch), which is no reason to stop spinning. Elsewhere than
    Linux the load average is all there is.
    """
    def sample() -> tuple[float, float, float]:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        own = os.times()
        return (sum(fields) - idle) / ticks, own.user + own.system, time.monotonic()

    try:
        ticks = os.sysconf("SC_CLK_TCK")
        busy0, own0, at0 = sample()
        time.sleep(seconds)
        busy1, own1, at1 = sample()
    except (OSError, ValueError, IndexError, AttributeError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):
            return 0.0
    return max(0.0, (busy1 - busy0) - (own1 - own0)) / max(at1 - at0, 1e-3)


def thread_policy(load: float | None = None) -> ThreadPolicy:
    """Threads for ONNX Runtime: every usable core; spinning between operators
    only on a quiet machine.

    Measured on the shipped model (benchmarks/bench_threads.py, 2-core AMD
    EPYC, benchmarks/results/threads-2026-12-05.txt): quiet, spinning threads
    are 1.2x faster than passive ones; with one core busy elsewhere they are
    1.5x slower (a spinning thread fights the foreign process for its core),
    and passive threads do as well as one thread.
    """
    if load is None:
        load = foreign_load()
    return ThreadPolicy(threads=usable_cores(), spinning=load < BUSY_LOAD)


class KVCache:
    """Every layer's keys and values for a batch of rows, allocated once to the
    longest length a row may reach.

    ONNX Runtime's attention writes each step's keys and values in place when a
    layer's past and present are the same buffer (how ONNX Runtime GenAI runs
    these models), instead of returning a longer copy of the whole cache at
    every step: the same logits bit for bit, 1.1-1.2x the decoding speed at 200-340
    tokens of context, about 1.02x on a whole default prompt (mostly shorter).

    A pass runs on a block of consecutive rows (a view, no copy): the whole
    batch, or one row while its prompt is read. A row that finishes makes room
    by taking the last running row's keys and values (``move``), so the running
    rows stay a block at the front; copying the whole cache instead, as each row
    finished, took a quarter of a 16-prompt batch.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays  # the OrtValues of ``block`` share this memory
        self._blocks: dict[tuple[int, int], tuple[dict[str, Any], list[np.ndarray]]] = {}

    @classmethod
    def empty(cls, names: Sequence[str], shape: tuple[int, int, int, int]) -> KVCache:
        return cls({name: np.zeros(shape, dtype=np.float32) for name in names})

    def block(self, start: int, rows: int) -> dict[str, Any]:
        """The OrtValues of rows ``start`` .. ``start + rows - 1``, by input name."""
        key = (start, rows)
        if key not in self._blocks:
            import onnxruntime as ort

            views = [a[start : start + rows] for a in self.arrays.values()]
            values = {n: ort.OrtValue.ortvalue_from_numpy(v)
                      for n, v in zip(self.arrays, views, strict=True)}  # fmt: skip
            self._blocks[key] = (values, views)  # the views keep the memory referenced
        return self._blocks[key][0]

    def move(self, source: int, target: int, length: int) -> None:
        """Row ``source``'s first ``length`` positions into row ``target``."""
        for array in self.arrays.values():
            array[target, :, :length] = array[source, :, :length]


class OnnxBackend:
    """A decoder-only model converted for ONNX Runtime, run on the CPU."""

    def __init__(
        self, session: Any, tokenizer: Any, card: dict[str, Any], *, name: str, precision: str
    ) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.kv_heads = int(card["kv_heads"])
        self.head_size = int(card["head_size"])
        eos = card.get("eos_token_id")
        if eos is None and card.get("eos_token"):
            eos = tokenizer.token_to_id(card["eos_token"])
        if eos is None:
            raise ModelError(f"{name}: the model names no end-of-sequence token")
        self.eos_id = int(eos)
        self.vocab = int(tokenizer.get_vocab_size(with_added_tokens=True))
        self._markers = tuple(t for t in (card.get("eos_token"), card.get("bos_token")) if t)
        self._outputs = [o.name for o in session.get_outputs()]
        self._past_names = [
            name.replace("present", "past_key_values") for name in self._outputs[1:]
        ]
        self.folder: Path | None = None
        """The converted model's folder (``engine/onnx_export.py``), when loaded from one."""
        self._pieces: dict[int, str] = {}
        anchor = tokenizer.encode("a", add_special_tokens=False).ids
        self._anchor = anchor[-1] if anchor else 0
        self._anchor_text = tokenizer.decode([self._anchor], skip_special_tokens=False)
        self.info = BackendInfo(
            name="onnx",
            model=name,
            device="cpu",
            dtype=precision,
            context_length=int(card.get("context_length", 2048)),
        )

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        name: str,
        threads: int | None = None,
        spinning: bool | None = None,
    ) -> OnnxBackend:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(
                f"the ONNX Runtime engine needs onnxruntime: {install_hint('onnx')} ({exc})"
            ) from None
        folder = Path(folder)
        try:
            source = json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))
            card = source["model"]
            options = ort.SessionOptions()
            # The machine is watched once (0.1 s), and only when a setting is left open.
            policy = thread_policy() if threads is None or spinning is None else None
            options.intra_op_num_threads = threads or policy.threads  # type: ignore[union-attr]
            options.inter_op_num_threads = 1
            spin = policy.spinning if spinning is None else spinning  # type: ignore[union-attr]
            spin_entry = "1" if spin else "0"
            options.add_session_config_entry("session.intra_op.allow_spinning", spin_entry)
            session = ort.InferenceSession(
                str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as exc:
            # onnxruntime raises its own exception classes (Fail, InvalidGraph ...).
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load the ONNX model in {folder}: {first}") from None
        backend = cls(session, tokenizer, card, name=name, precision=source.get("precision", ""))
        backend.folder = folder
        return backend

    # ------------------------------------------------------------------ public

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text))

    def single_tokens(self, texts: Sequence[str]) -> list[bool]:
        return [len(self.tokenizer.encode(t, add_special_tokens=False).ids) == 1 for t in texts]

    def generate(
        self, jobs: Sequence[GenerationJob], progress: ProgressCallback | None = None
    ) -> list[Generation]:
        if not jobs:
            return []
        context = self.info.context_length
        prompts: dict[str, list[int]] = {}
        for job in jobs:
            if job.prompt not in prompts:
                ids = self._tokenize(job.prompt)
                check_context(len(ids), context)
                prompts[job.prompt] = ids
        rows = len(jobs)
        lengths = [len(prompts[job.prompt]) for job in jobs]
        budgets = [min(job.sampling.max_new_tokens, context - n)
                   for job, n in zip(jobs, lengths, strict=True)]  # fmt: skip
        cache = self._empty_cache(max(n + b for n, b in zip(lengths, budgets, strict=True)), rows)
        logits = self._prefill(jobs, prompts, cache)

        rngs = [np.random.default_rng(job.seed % 2**63) for job in jobs]
        history = [list(prompts[job.prompt]) for job in jobs]
        generated: list[list[int]] = [[] for _ in jobs]
        finish = ["length"] * rows
        texts = [job.prompt for job in jobs]  # kept for constrained or boosted rows only
        active = list(range(rows))  # the job in each running slot of the cache
        while True:
            keep: list[int] = []
            for slot, row in enumerate(active):
                job = jobs[row]
                token = choose(
                    logits[slot],
                    job.sampling,
                    history[row],
                    rngs[row],
                    eos_id=self.eos_id,
                    constraint=job.constraint,
                    text=texts[row],
                    piece=self._candidate,
                    boost=job.boost,
                )
                if token == self.eos_id:
                    finish[row] = "eos"
                    continue
                generated[row].append(token)
                history[row].append(token)
                if job.reads_text:
                    texts[row] += self._piece(token)
                if len(generated[row]) < budgets[row]:
                    keep.append(slot)
            if progress is not None and len(keep) < len(active):
                progress(len(active) - len(keep))
            if not keep:
                break
            if len(keep) < len(active):
                active = self._close_gaps(cache, active, keep, history)
            step = np.asarray([[generated[row][-1]] for row in active])
            logits = self._forward(step, [len(history[row]) for row in active], cache)

        return [
            Generation(
                text=self._continuation(prompts[jobs[i].prompt], generated[i]),
                prompt_tokens=lengths[i],
                new_tokens=len(generated[i]) + (finish[i] == "eos"),
                finish="eos" if finish[i] == "eos" else "length",
            )
            for i in range(rows)
        ]

    # ----------------------------------------------------------------- decoding

    def _tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text).ids)

    def _empty_cache(self, longest: int, rows: int = 1) -> KVCache:
        return KVCache.empty(self._past_names, (rows, self.kv_heads, longest, self.head_size))

    def _forward(
        self, tokens: np.ndarray, lengths: Sequence[int] | int, cache: KVCache, start: int = 0
    ) -> np.ndarray:
        """A pass of ``tokens`` (rows x new) after the cache's rows from ``start``, which
        it extends in place; row ``r`` is ``lengths[r]`` tokens long after it (one
        number: every row). The last position's logits, one row each."""
        rows = tokens.shape[0]
        ends = np.broadcast_to(np.asarray(lengths, dtype=np.int64), (rows,))
        # Each row's mask is ones up to its own length: its attention reads no further.
        mask = (np.arange(int(ends.max()))[None, :] < ends[:, None]).astype(np.int64)
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", tokens.astype(np.int64, copy=False))
        binding.bind_cpu_input("attention_mask", mask)
        binding.bind_output(self._outputs[0])
        values = cache.block(start, rows)
        for past, present in zip(self._past_names, self._outputs[1:], strict=True):
            value = values[past]
            binding.bind_ortvalue_input(past, value)
            binding.bind_ortvalue_output(present, value)
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()[:, -1, :]

    def _prefill(
        self, jobs: Sequence[GenerationJob], prompts: dict[str, list[int]], cache: KVCache
    ) -> np.ndarray:
        """Read each distinct prompt once, alone, into the first row of a job that has
        it, and copy that row to the other jobs' rows: the first logits of every row."""
        firsts: dict[str, np.ndarray] = {}
        home: dict[str, int] = {}
        for row, job in enumerate(jobs):
            ids = prompts[job.prompt]
            if job.prompt in home:
                cache.move(home[job.prompt], row, len(ids))
                continue
            home[job.prompt] = row
            firsts[job.prompt] = self._forward(np.asarray([ids]), len(ids), cache, row)[0]
        return np.stack([firsts[job.prompt] for job in jobs])

    @staticmethod
    def _close_gaps(
        cache: KVCache, active: list[int], keep: list[int], history: list[list[int]]
    ) -> list[int]:
        """The running rows as a block at the front again: each slot a finished row
        leaves inside the new block takes a running row from beyond it."""
        size = len(keep)
        kept = set(keep)
        holes = [slot for slot in range(size) if slot not in kept]
        movers = [slot for slot in keep if slot >= size]
        slots = list(active[:size])
        for hole, mover in zip(holes, movers, strict=True):
            row = active[mover]
            cache.move(mover, hole, len(history[row]) - 1)  # the last token is not in yet
            slots[hole] = row
        return slots

    def _continuation(self, prompt: list[int], new: list[int]) -> str:
        """The generated text with the spacing it has after the prompt (see TorchBackend)."""
        head = self.tokenizer.decode(prompt, skip_special_tokens=False)
        whole = self.tokenizer.decode(prompt + new, skip_special_tokens=False)
        text = (
            whole[len(head) :]
            if whole.startswith(head)
            else self.tokenizer.decode(new, skip_special_tokens=False)
        )
        for marker in self._markers:
            text = text.replace(marker, "")
        return text

    def _candidate(self, token: int) -> str | None:
        return None if token == self.eos_id else self._piece(token)

    def _piece(self, token: int) -> str:
        """The text a token appends, leading space included: decoded after an
        anchor token, since decoding a token alone loses a SentencePiece space."""
        piece = self._pieces.get(token)
        if piece is None:
            if token >= self.vocab:
                piece = ""
            else:
                text = self.tokenizer.decode([self._anchor, token], skip_special_tokens=False)
                base = self._anchor_text
                piece = text[len(base) :] if text.startswith(base) else text
            self._pieces[token] = piece
        return piece
