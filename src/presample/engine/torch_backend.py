"""The PyTorch / transformers backend: batched, seeded, constrained decoding.

We run our own decode loop over ``model(...)`` with a KV cache instead of
``model.generate`` for three reasons ``generate`` cannot serve: every row
of a batch has its own sampling settings and its own random generator (so a
request gives the same output in any batch position and never touches global
random state), finished rows leave the batch at once (requests of different
lengths share forward passes without paying for each other), and ban
constraints inspect candidate tokens as text before they are drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from . import gguf_cache, int8, invariant
from .backend import (
    BOOST_CANDIDATES,
    NO_REMOTE_CODE,
    BackendInfo,
    Boost,
    Generation,
    GenerationJob,
    ModelError,
    ProgressCallback,
    boost_additions,
    check_context,
    load_error,
)
from .choose import FALLBACK_CANDIDATES, GREEDY_CANDIDATES
from .sampling import Sampling

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEFAULT_MAX_BATCH = 32


def pick_device(device: str) -> str:
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' asked for, but PyTorch sees no CUDA GPU")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ModelError("device 'mps' asked for, but this PyTorch has no MPS support")
    return device


DTYPE_NAMES = ("auto", *DTYPES, "int8")


def pick_dtype(dtype: str, device: str) -> str:
    """The precision to run in; ``auto`` is what benchmarks/bench_engine.py found fastest."""
    if dtype == "auto":
        # bfloat16 on a CPU with oneDNN bf16 kernels: run batch-invariant
        # (engine/invariant.py), so a seed reproduces in any batch, and fastest
        # batched (docs/how-it-works.md). Elsewhere on the CPU float32, whose kernels can move
        # a row's logits in the last bits with the batch size (a sampled token
        # flips about once in a million draws).
        if device == "cpu":
            return "bfloat16" if invariant.supported() else "float32"
        return "float16"
    if dtype not in DTYPE_NAMES:
        raise ModelError(f"unknown dtype {dtype!r}; use {', '.join(DTYPE_NAMES)}")
    if dtype == "int8" and device != "cpu":
        raise ModelError("int8 runs on the CPU only; use float16 or bfloat16 on a GPU")
    return dtype


class TorchBackend:
    """A causal LM from transformers (a folder, a Hub repo id or a GGUF file)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.device = next(model.parameters()).device
        config = model.config
        self.eos_id: int = tokenizer.eos_token_id
        self.pad_id: int = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        )
        self.info = BackendInfo(
            name="transformers",
            model=name,
            device=str(self.device),
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            context_length=int(getattr(config, "max_position_embeddings", 1024)),
        )
        self._token_texts: list[str] | None = None

    @classmethod
    def load(
        cls,
        source: str | Path,
        *,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        name: str | None = None,
        local_files_only: bool = False,
    ) -> TorchBackend:
        """Load weights and tokenizer; a GGUF file is dequantised by transformers."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = pick_device(device)
        precision = pick_dtype(dtype, device)
        torch_dtype = torch.float32 if precision == "int8" else DTYPES[precision]
        kwargs: dict[str, Any] = {"local_files_only": local_files_only, **NO_REMOTE_CODE}
        if gguf_file is not None:
            kwargs["gguf_file"] = gguf_file
        # Our GGUF-only folders keep the tokenizer files next to model.gguf: they
        # hold the exact pre-tokenizer, which transformers' GGUF reader rebuilds
        # only approximately (it drops SmolLM2's digit splitting).
        folder_tokenizer = gguf_file is not None and (Path(source) / "tokenizer.json").is_file()
        tokenizer_kwargs = (
            {"local_files_only": local_files_only, **NO_REMOTE_CODE} if folder_tokenizer else kwargs
        )
        local_gguf = Path(source, gguf_file) if gguf_file is not None else None
        if _is_tipo_v2(Path(source), local_gguf):
            return cls._load_tipo_v2(
                Path(source), gguf_file, device=device, precision=precision, name=name
            )
        cached = None
        if local_gguf is not None and local_gguf.is_file():
            cached = gguf_cache.cache_folder(local_gguf, str(torch_dtype))
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source), **tokenizer_kwargs)
            if gguf_cache.ready(cached):
                model = AutoModelForCausalLM.from_pretrained(
                    str(cached), dtype=torch_dtype, **NO_REMOTE_CODE
                )
            else:
                model = AutoModelForCausalLM.from_pretrained(
                    str(source), dtype=torch_dtype, **kwargs
                )
                if cached is not None:
                    gguf_cache.store(model, cached, local_gguf)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            where = f"{source}/{gguf_file}" if gguf_file else str(source)
            raise load_error(where, exc) from exc
        return cls._ready(model, tokenizer, device, precision, name or str(source))

    @classmethod
    def _ready(
        cls, model: Any, tokenizer: Any, device: str, precision: str, name: str
    ) -> TorchBackend:
        """A loaded model on its device, in the precision's CPU form (int8, invariant bf16)."""
        model = model.to(device)
        if precision == "int8":
            model = int8.quantize_int8(model)
        elif precision == "bfloat16" and device == "cpu" and invariant.supported():
            model = invariant.make_invariant(model)
        backend = cls(model, tokenizer, name=name)
        backend.info.dtype = precision
        return backend

    @classmethod
    def _load_tipo_v2(
        cls,
        folder: Path,
        gguf_file: str | None,
        *,
        device: str,
        precision: str,
        name: str | None,
    ) -> TorchBackend:
        """A kohaku folder or a dots1 GGUF, mapped onto transformers' Dots1 (engine/dots1.py)."""
        from . import dots1

        where = str(folder / gguf_file) if gguf_file else str(folder)
        if precision == "int8":
            raise ModelError("TIPO v2 runs in bfloat16 or float32 on transformers, not int8")
        if gguf_file is not None:
            tokenizer = dots1.gguf_tokenizer(folder / gguf_file)
        else:
            tokenizer = dots1.folder_tokenizer(folder, where=where)
        model = dots1.load_model(folder, gguf_file=gguf_file, dtype=DTYPES[precision], where=where)
        return cls._ready(model, tokenizer, device, precision, name or where)

    # ------------------------------------------------------------------ public

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def single_tokens(self, texts: Sequence[str]) -> list[bool]:
        return [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) == 1 for t in texts]

    def generate(
        self, jobs: Sequence[GenerationJob], progress: ProgressCallback | None = None
    ) -> list[Generation]:
        results: list[Generation] = []
        # Similar prompt lengths batch together so left padding stays small.
        order = sorted(range(len(jobs)), key=lambda i: len(jobs[i].prompt))
        by_index: dict[int, Generation] = {}
        for start in range(0, len(order), self.max_batch):
            chunk = order[start : start + self.max_batch]
            for index, generation in zip(
                chunk, self._generate_batch([jobs[i] for i in chunk], progress), strict=True
            ):
                by_index[index] = generation
        results = [by_index[i] for i in range(len(jobs))]
        return results

    # ----------------------------------------------------------------- decoding

    @torch.inference_mode()
    def _generate_batch(
        self, jobs: Sequence[GenerationJob], progress: ProgressCallback | None
    ) -> list[Generation]:
        from .kvcache import cache_keyword, growing_cache

        prompts = [self.tokenizer(job.prompt)["input_ids"] for job in jobs]
        context = self.info.context_length
        budgets = []
        for job, ids in zip(jobs, prompts, strict=True):
            check_context(len(ids), context)
            budgets.append(min(job.sampling.max_new_tokens, context - len(ids)))

        width = max(len(ids) for ids in prompts)
        batch = len(jobs)
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # Row-wise attention (engine/invariant.py) needs each row's left padding.
        rowwise = invariant.is_rowwise(self.model)
        starts = [width - len(ids) for ids in prompts]
        extra: dict[str, Any] = {"row_starts": starts} if rowwise else {}

        generators = [torch.Generator().manual_seed(job.seed % 2**63) for job in jobs]
        history = [list(ids) for ids in prompts]  # prompt + generated, for penalties
        generated: list[list[int]] = [[] for _ in jobs]
        finish: list[str] = ["length"] * batch
        texts = [job.prompt for job in jobs]  # only maintained for constrained or boosted rows
        active = list(range(batch))

        cache = growing_cache()
        extra[cache_keyword(self.model)] = cache
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **extra,
        )
        while True:
            logits = out.logits[:, -1, :].float().cpu()
            rows = [jobs[i] for i in active]
            tokens = self._sample(
                logits,
                [r.sampling for r in rows],
                [history[i] for i in active],
                [generators[i] for i in active],
                [r.constraint for r in rows],
                [texts[i] for i in active],
                [r.boost for r in rows],
            )
            keep: list[int] = []
            for slot, (row, token) in enumerate(zip(active, tokens, strict=True)):
                if token == self.eos_id:
                    finish[row] = "eos"
                    continue
                generated[row].append(token)
                history[row].append(token)
                if jobs[row].reads_text:
                    texts[row] += self._piece(token)
                if len(generated[row]) >= budgets[row]:
                    continue
                keep.append(slot)
            if progress is not None and len(keep) < len(active):
                progress(len(active) - len(keep))
            if not keep:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, dtype=torch.long, device=self.device)
                cache.batch_select_indices(index)
                mask = mask.index_select(0, index)
                active = [active[s] for s in keep]
                if rowwise:
                    extra["row_starts"] = [starts[row] for row in active]
            next_ids = torch.tensor(
                [[generated[row][-1]] for row in active], dtype=torch.long, device=self.device
            )
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            positions = mask.sum(-1, keepdim=True) - 1
            out = self.model(
                input_ids=next_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **extra,
            )

        return [
            Generation(
                text=self._continuation(prompts[i], generated[i]),
                prompt_tokens=len(prompts[i]),
                new_tokens=len(generated[i]) + (finish[i] == "eos"),
                finish="eos" if finish[i] == "eos" else "length",
            )
            for i in range(batch)
        ]

    def _continuation(self, prompt: list[int], new: list[int]) -> str:
        """The generated text with the spacing it has after the prompt.

        SentencePiece drops the leading space of the first token of a decoded
        sequence, so the continuation is cut from the decoded whole.
        """
        head = self.tokenizer.decode(prompt, skip_special_tokens=False)
        whole = self.tokenizer.decode(prompt + new, skip_special_tokens=False)
        text = whole[len(head) :] if whole.startswith(head) else self.tokenizer.decode(new)
        for marker in (self.tokenizer.eos_token, self.tokenizer.bos_token):
            if marker:
                text = text.replace(marker, "")
        return text

    def _sample(
        self,
        logits: torch.Tensor,
        settings: Sequence[Sampling],
        history: Sequence[list[int]],
        generators: Sequence[torch.Generator],
        constraints: Sequence[Any],
        texts: Sequence[str],
        boosts: Sequence[Boost | None],
    ) -> list[int]:
        """Draw one token per row: penalty, temperature, boost, top-k, top-p, min-p,
        constraint."""
        leans = [
            None if boost is None else self._lean(boost, text)
            for boost, text in zip(boosts, texts, strict=True)
        ]
        ids, probs, scaled = filtered(logits, settings, history, leans)
        chosen: list[int] = []
        for r, s in enumerate(settings):
            row_probs, row_ids = probs[r], ids[r]
            if constraints[r] is not None:
                row_probs = self._constrain(constraints[r], texts[r], row_probs, row_ids, scaled[r])
                if row_probs is None:
                    chosen.append(self._fallback(constraints[r], texts[r], scaled[r]))
                    continue
            if s.greedy:
                chosen.append(int(row_ids[int(torch.argmax(row_probs))]))
            else:
                pick = torch.multinomial(row_probs, 1, generator=generators[r])
                chosen.append(int(row_ids[int(pick)]))
        return chosen

    def _lean(
        self, boost: Boost, text: str
    ) -> Callable[[Sequence[int]], Sequence[float | None]]:
        return lambda ids: boost.boosts(text, [self._candidate_text(i) for i in ids])

    def _constrain(
        self,
        constraint: Any,
        text: str,
        probs: torch.Tensor,
        ids: torch.Tensor,
        scores: torch.Tensor,
    ) -> torch.Tensor | None:
        live = torch.nonzero(probs > 0).flatten().tolist()
        pieces = [self._candidate_text(int(ids[i])) for i in live]
        allowed = constraint.allowed(text, pieces)
        if all(allowed):
            return probs
        probs = probs.clone()
        for i, ok in zip(live, allowed, strict=True):
            if not ok:
                probs[i] = 0.0
        return probs if float(probs.sum()) > 0 else None

    def _fallback(self, constraint: Any, text: str, scores: torch.Tensor) -> int:
        """Every sampled candidate was refused: the best allowed token overall (see
        ``choose._fallback``), searched a block at a time."""
        order = torch.argsort(scores, descending=True, stable=True).tolist()
        for start in range(0, len(order), FALLBACK_CANDIDATES):
            block = order[start : start + FALLBACK_CANDIDATES]
            pieces = [self._candidate_text(t) for t in block]
            allowed = constraint.allowed(text, pieces)
            for token, piece, ok in zip(block, pieces, allowed, strict=True):
                if ok and piece != "":  # empty: writes nothing (see choose._fallback)
                    return int(token)
        return self.eos_id

    def _candidate_text(self, token: int) -> str | None:
        return None if token == self.eos_id else self._piece(token)

    def _piece(self, token: int) -> str:
        """The text a token appends, including its leading space."""
        if self._token_texts is None:
            self._token_texts = token_texts(self.tokenizer)
        return self._token_texts[token] if token < len(self._token_texts) else ""


def filtered(
    logits: torch.Tensor,
    settings: Sequence[Sampling],
    history: Sequence[Sequence[int]],
    boosts: Sequence[Callable[[Sequence[int]], Sequence[float | None]] | None] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's distribution after penalty, temperature, boost, top-k, top-p and min-p.

    Returns (candidate ids best first, their probabilities, scaled logits);
    ``engine/choose.py`` computes the same for one row in NumPy (tested equal).
    ``logits`` is changed in place by the repetition penalty. ``boosts``: per row,
    ``None`` or a map from its ``BOOST_CANDIDATES`` best ids to a ``Boost``'s scores.
    """
    vocab = logits.shape[1]
    for r, s in enumerate(settings):
        if s.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(history[r])), dtype=torch.long)
            scores = logits[r, seen]
            logits[r, seen] = torch.where(
                scores < 0, scores * s.repetition_penalty, scores / s.repetition_penalty
            )

    temps = torch.tensor([s.temperature if s.temperature > 0 else 1.0 for s in settings])
    scaled = logits / temps[:, None]
    for r, lean in enumerate(boosts):
        if lean is not None:
            order = torch.topk(scaled[r], min(BOOST_CANDIDATES, vocab)).indices
            adds = boost_additions(scaled[r, order].tolist(), lean(order.tolist()))
            scaled[r, order] += torch.tensor(adds, dtype=scaled.dtype)
    ks = [s.top_k if 0 < s.top_k < vocab else vocab for s in settings]
    # Greedy rows need only their best candidates (kept for the constraint).
    ks = [min(k, GREEDY_CANDIDATES) if s.greedy else k for k, s in zip(ks, settings, strict=True)]
    width = max(ks)
    values, ids = torch.topk(scaled, width, dim=-1)  # sorted, best first
    column = torch.arange(width)[None, :]
    values = values.masked_fill(column >= torch.tensor(ks)[:, None], float("-inf"))
    probs = torch.softmax(values, dim=-1)
    # top_p 1.0 is off: float32 sums reach 1.0 before the tail, which would cut it.
    top_p = torch.tensor([s.top_p if s.top_p < 1.0 else float("inf") for s in settings])[:, None]
    # Keep the smallest prefix whose mass reaches top_p (always the best token).
    probs = probs.masked_fill((probs.cumsum(-1) - probs) >= top_p, 0.0)
    min_p = torch.tensor([s.min_p for s in settings])[:, None]
    probs = probs.masked_fill(probs < min_p * probs[:, :1], 0.0)
    for r, s in enumerate(settings):
        if s.greedy:
            probs[r] = 0.0
            probs[r, 0] = 1.0
    return ids, probs, scaled


def token_texts(tokenizer: Any) -> list[str]:
    """What each token id appends to a text, leading spaces included.

    Decoding a token on its own loses SentencePiece's leading space, so each is
    decoded after an anchor token and the anchor's text is cut off.
    """
    anchor = tokenizer("a", add_special_tokens=False)["input_ids"][-1]
    base = tokenizer.decode([anchor])
    size = len(tokenizer)
    texts = tokenizer.batch_decode([[anchor, i] for i in range(size)])
    return [t[len(base) :] if t.startswith(base) else t for t in texts]


def _is_tipo_v2(folder: Path, gguf: Path | None) -> bool:
    """A TIPO v2 model in either published format (read through engine/dots1.py)."""
    from . import dots1

    if gguf is not None:
        from .llamacpp_backend import gguf_architecture

        return gguf.is_file() and gguf_architecture(gguf) == dots1.DOTS1
    return folder.is_dir() and dots1.is_kohaku(folder)
