"""The llama.cpp backend: GGUF files through ``llama-cpp-python`` (optional extra).

llama.cpp only computes logits here; tokens are drawn by ``engine/choose.py``
so temperature, top-k, top-p, min-p, repetition penalty and ban constraints
mean exactly what they mean on the transformers backend. The same seed gives
the same output on every run of this backend; it is not the output of the
transformers backend (different kernels, different random streams).

Jobs run one after another (llama-cpp-python's high-level API has one
sequence per context); the KV cache of the shared prompt prefix is kept
between jobs, so the meta lines of a multi-step run are not re-read.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
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

# Quantised weights crash llama.cpp's AMX matmul path on Xeons with AMX on the
# first generated token (an open upstream issue); plain f32/f16/bf16 files are
# unaffected. The switch is a model parameter llama-cpp-python does not expose,
# so it is set while the model loads (see ``_without_extra_buffers``).
QUANTISED_SAFE = {"F32", "F16", "BF16"}
_LOAD_LOCK = threading.Lock()


def available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _without_extra_buffers(llama_cpp: Any) -> Iterator[None]:
    """Load with ``use_extra_bufts = False`` (weight repacking off, see above)."""
    original = llama_cpp.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = False
        return value

    with _LOAD_LOCK:
        llama_cpp.llama_model_default_params = params
        try:
            yield
        finally:
            llama_cpp.llama_model_default_params = original


class LlamaCppBackend:
    """A GGUF model run by llama.cpp on the CPU."""

    def __init__(self, llm: Any, *, name: str, file_type: str = "") -> None:
        self.llm = llm
        self.eos_id = int(llm.token_eos())
        self.bos_id = int(llm.token_bos())
        self.vocab = int(llm.n_vocab())
        self.info = BackendInfo(
            name="llama.cpp",
            model=name,
            device="cpu",
            dtype=file_type.lower() or "gguf",
            context_length=int(llm.n_ctx()),
            supports=frozenset(
                {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "constraints"}
            ),
        )
        self._pieces: dict[int, str] = {}
        self._marker_texts = {
            self._piece(t) for t in (self.eos_id, self.bos_id) if 0 <= t < self.vocab
        } - {""}

    @classmethod
    def load(
        cls, path: str | Path, *, name: str | None = None, threads: int | None = None
    ) -> LlamaCppBackend:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(
                f"the llama.cpp backend needs llama-cpp-python: {install_hint('llamacpp')} "
                f"(it compiles llama.cpp, which takes a while) ({exc})"
            ) from None
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        file_type, architecture = _gguf_info(path)
        if architecture == "dots1":
            from .dots1 import check_gguf_tokens

            check_gguf_tokens(path)
        safe = file_type in QUANTISED_SAFE
        loading = contextlib.nullcontext() if safe else _without_extra_buffers(llama_cpp.llama_cpp)
        try:
            with loading:
                llm = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=0,  # the model's own context length
                    n_batch=512,
                    n_threads=threads or usable_cores(),
                    logits_all=False,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            why = str(exc).strip() or type(exc).__name__
            what = f"architecture {architecture!r}" if architecture else "architecture"
            raise ModelError(
                f"cannot load model from {path} with llama.cpp: a corrupt file, or an "
                f"{what} this llama.cpp does not run ({why})"
            ) from None
        return cls(llm, name=name or path.name, file_type=file_type)

    # ------------------------------------------------------------------ public

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text))

    def single_tokens(self, texts: Sequence[str]) -> list[bool]:
        return [len(self._tokenize(t, bos=False)) == 1 for t in texts]

    def generate(
        self, jobs: Sequence[GenerationJob], progress: ProgressCallback | None = None
    ) -> list[Generation]:
        results = []
        for job in jobs:
            results.append(self._generate_one(job))
            if progress is not None:
                progress(1)
        return results

    # ----------------------------------------------------------------- decoding

    def _tokenize(self, text: str, *, bos: bool = True) -> list[int]:
        tokens = list(self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=True))
        if bos and 0 <= self.bos_id < self.vocab and tokens[:1] != [self.bos_id]:
            # Every TIPO / DanTagGen model was trained with one BOS first; early
            # TIPO v2 exports say add_bos_token false, and llama.cpp obeys the file.
            tokens.insert(0, self.bos_id)
        return tokens

    def _generate_one(self, job: GenerationJob) -> Generation:
        import llama_cpp

        prompt = self._tokenize(job.prompt)
        context = self.info.context_length
        check_context(len(prompt), context)
        budget = min(job.sampling.max_new_tokens, context - len(prompt))
        rng = np.random.default_rng(job.seed % 2**63)
        history = list(prompt)
        generated: list[int] = []
        text = job.prompt
        finish = "length"

        self._feed_prompt(prompt)
        while True:
            pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
            logits = np.ctypeslib.as_array(pointer, shape=(self.vocab,))
            token = choose(
                logits,
                job.sampling,
                history,
                rng,
                eos_id=self.eos_id,
                constraint=job.constraint,
                text=text,
                piece=self._candidate,
                boost=job.boost,
            )
            if token == self.eos_id:
                finish = "eos"
                break
            generated.append(token)
            history.append(token)
            if job.reads_text:
                text += self._piece(token)
            if len(generated) >= budget:
                break
            self.llm.eval([token])

        return Generation(
            text=self._continuation(generated),
            prompt_tokens=len(prompt),
            new_tokens=len(generated) + (finish == "eos"),
            finish="eos" if finish == "eos" else "length",
        )

    def _feed_prompt(self, prompt: list[int]) -> None:
        """Evaluate the prompt, reusing the cached prefix it shares with the last one."""
        cached = self.llm.input_ids[: self.llm.n_tokens].tolist()
        shared = 0
        for a, b in zip(cached, prompt, strict=False):
            if a != b:
                break
            shared += 1
        shared = min(shared, len(prompt) - 1)  # the last token must run for its logits
        self.llm.n_tokens = shared  # eval() drops the cache beyond this point
        self.llm.eval(prompt[shared:])

    def _continuation(self, tokens: list[int]) -> str:
        data = self.llm.detokenize(tokens, special=True) if tokens else b""
        text = data.decode("utf-8", errors="replace")
        for marker in self._marker_texts:
            text = text.replace(marker, "")
        return text

    def _candidate(self, token: int) -> str | None:
        return None if token == self.eos_id else self._piece(token)

    def _piece(self, token: int) -> str:
        """The text a token appends (llama.cpp's pieces keep their leading space)."""
        piece = self._pieces.get(token)
        if piece is None:
            raw = self.llm.detokenize([token], special=True)
            piece = self._pieces[token] = raw.decode("utf-8", errors="replace")
        return piece


def gguf_file_type(path: Path) -> str:
    """The weight type of a GGUF file (``F16``, ``Q8_0``, ``Q4_K_M`` ...), or "" if unknown."""
    return _gguf_info(path)[0]


def gguf_architecture(path: Path) -> str:
    """The architecture a GGUF file declares (``llama``, ``dots1`` ...), or "" if unknown."""
    return _gguf_info(path)[1]


def gguf_reader(path: Path) -> Any:
    """A parsed GGUF file (``gguf.GGUFReader``), read once per file version.

    Parsing a TIPO v2 file takes about 1.8 s (65,536 token strings, a thousand
    tensor headers), and one load asks several questions of it (architecture,
    tokens, weights): the parse is kept for the same path, size and mtime.
    Raises ``ImportError`` without gguf and ``ValueError``/``OSError`` for an
    unreadable file.
    """
    stat = Path(path).stat()
    return _parsed(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _parsed(path: str, size: int, mtime_ns: int) -> Any:
    import gguf

    del size, mtime_ns  # part of the cache key only
    return gguf.GGUFReader(path)


def _gguf_info(path: Path) -> tuple[str, str]:
    """(weight type, architecture) from a GGUF header; "" where unreadable."""
    try:
        import gguf

        reader = gguf_reader(path)
    except ImportError:
        return "", ""
    except (ValueError, OSError, KeyError, IndexError):
        return "", ""
    kind = architecture = ""
    field = reader.fields.get("general.file_type")
    if field is not None:
        with contextlib.suppress(ValueError, IndexError):
            value = gguf.LlamaFileType(int(field.parts[field.data[0]][0]))
            kind = value.name.removeprefix("MOSTLY_").replace("ALL_", "")
    field = reader.fields.get("general.architecture")
    if field is not None:
        with contextlib.suppress(ValueError, IndexError, UnicodeDecodeError):
            architecture = str(field.contents())
    return kind, architecture
