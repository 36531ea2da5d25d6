"""``Presampler``: load a model once, presample many times.

    from presample import Presampler
    p = Presampler()                       # the shipped default model
    print(p("1girl, scenery").prompt)
    results = p.presample_many([...])      # batched: shared forward passes

Importing this module is cheap; PyTorch loads when the model does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import secrets
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .engine import hub, scheduler
from .engine.backend import Backend, Generation, ModelError, generate_samples
from .engine.sampling import DTG_DEFAULT, TIPO_DEFAULT, Sampling
from .engine.scheduler import OnDone, resume, run_all
from .errors import InputError, install_hint
from .prepare import Prepared, prepare
from .registry import FOLDER_GGUF, ModelSource, resolve
from .request import PresampleRequest, PresampleResult, StepResult
from .runs import Run, RunOptions, dtg_run, tipo_run
from .tag_prior import CooccurrenceTable
from .tagdb import TagDatabase
from .tipo import Length

RequestLike = PresampleRequest | str | dict[str, Any]


def as_request(request: RequestLike) -> PresampleRequest:
    if isinstance(request, PresampleRequest):
        return request
    if isinstance(request, str):
        return PresampleRequest(prompt=request)
    return PresampleRequest.model_validate(request)


BACKENDS = ("auto", "onnx", "transformers", "llama.cpp")
# TIPO v2's architecture, as a kohaku folder or a dots1 GGUF (engine/dots1.py).
MOE_MODEL_TYPES = ("kohaku", "dots1")
log = logging.getLogger("presample")


def load_backend(
    source: ModelSource, *, backend: str = "auto", device: str = "auto", dtype: str = "auto"
) -> Backend:
    """Load a model with the chosen engine.

    ``auto`` is ONNX Runtime on the CPU for LLaMA-family models when
    ``presample[onnx]`` is installed (the fastest engine that needs no
    compiler; README, ``benchmarks/bench_engines.py``), else transformers. It
    never depends on llama.cpp being installed: a seed's prompt must not change
    because some other command installed an engine (``--backend llama.cpp``
    asks for it). When ``auto`` picked ONNX Runtime and it cannot run the
    model, transformers runs it and one line says why; an engine the user
    named is never swapped.
    """
    backend = "llama.cpp" if backend == "llamacpp" else backend
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    if source.kind == "hub" and backend == "llama.cpp":
        source = _hub_gguf(source)
    if source.kind == "hub":
        # The cached copy or one download, failing fast offline (engine/hub.py);
        # every engine then reads a local folder.
        folder = hub.model_folder(source.location)
        source = replace(source, kind="folder", location=str(folder))
    if backend == "llama.cpp":
        return _load_llamacpp(source, device=device, dtype=dtype)
    if backend == "onnx":
        return _load_onnx(source, device=device, dtype=dtype)
    if backend == "auto" and _onnx_fits(source, device=device, dtype=dtype):
        try:
            return _load_onnx(source, device=device, dtype=dtype)
        except ModelError as exc:
            log.warning("presample: ONNX Runtime cannot run %s (%s); using transformers",
                        source.name, exc)  # fmt: skip
    return _load_transformers(source, device=device, dtype=dtype)


def _hub_gguf(source: ModelSource) -> ModelSource:
    """A known model's published GGUF for llama.cpp: the smallest near-lossless file
    (Q8_0 where published, as the reference's users run it), else its first."""
    from .registry import known

    model = known(source.location)
    if model is None or not model.gguf_files:
        raise ModelError(
            f"the llama.cpp backend runs GGUF files; {source.name} publishes none presample "
            "knows of (pass a .gguf file, or use --backend transformers)"
        )
    name = next((f for f in model.gguf_files if "q8_0" in f.lower()), model.gguf_files[0])
    path = hub.gguf_file(model.repo, name)
    return replace(source, kind="gguf", location=str(path.parent), gguf_file=path.name)


def _load_transformers(source: ModelSource, *, device: str, dtype: str) -> Backend:
    try:
        from .engine.torch_backend import TorchBackend
    except ImportError as exc:
        raise ModelError(
            f"no engine to run the model: {install_hint('onnx')} (the default engine; "
            f"{exc})"
        ) from None
    gguf_folder = source.kind == "folder" and _gguf_only(Path(source.location))
    gguf_file = FOLDER_GGUF if gguf_folder else source.gguf_file
    return TorchBackend.load(
        source.location, gguf_file=gguf_file, device=device, dtype=dtype, name=source.name
    )


def _onnx_fits(source: ModelSource, *, device: str, dtype: str) -> bool:
    """Whether ``auto`` should try ONNX Runtime: installed, on the CPU, at the
    default precision, for a model its builder writes (LLaMA family)."""
    from .engine import onnx_export

    if device not in ("auto", "cpu") or dtype != "auto" or not onnx_export.available():
        return False
    if device == "auto" and _accelerator_present():
        return False  # transformers on the GPU
    return _model_type(source) in (*onnx_export.SUPPORTED_MODEL_TYPES, "")


def _accelerator_present() -> bool:
    """Whether PyTorch sees a GPU (CUDA, ROCm, Apple MPS).

    PyTorch is imported only where a GPU driver or Apple silicon is there to
    be found: the import alone costs 1.5 s, most of a fresh command's time on
    the ONNX engine.
    """
    if sys.platform == "linux":
        drivers = ("/proc/driver/nvidia/version", "/dev/kfd", "/dev/dxg")
        if not any(os.path.exists(d) for d in drivers):
            return False
    elif sys.platform == "darwin":
        if platform.machine() != "arm64":
            return False
    elif shutil.which("nvidia-smi") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps is not None and mps.is_available())


def _model_type(source: ModelSource) -> str:
    """The architecture of a local model, "" when it cannot be told without loading it."""
    from .engine.dots1 import read_config
    from .engine.llamacpp_backend import gguf_architecture

    folder = Path(source.location)
    if source.kind == "gguf" and source.gguf_file:
        return gguf_architecture(folder / source.gguf_file)
    if source.kind == "folder":
        return str(read_config(folder).get("model_type", ""))
    return ""


def _load_onnx(source: ModelSource, *, device: str, dtype: str) -> Backend:
    from .engine import onnx_export
    from .engine.onnx_backend import OnnxBackend

    if device not in ("auto", "cpu"):
        raise ModelError("presample runs ONNX Runtime on the CPU only; use --backend transformers")
    if _model_type(source) in MOE_MODEL_TYPES:
        raise ModelError(
            f"ONNX Runtime cannot run {source.name}: its converter has no mixture-of-experts "
            "(TIPO v2) models; use --backend transformers, or llama.cpp for a .gguf file"
        )
    precisions = {"auto": onnx_export.DEFAULT_PRECISION, "int8": "int8", "float32": "fp32"}
    if dtype not in precisions:
        raise ModelError(f"ONNX Runtime runs int8 or float32, not {dtype}; use --dtype auto")
    precision = precisions[dtype]
    folder = Path(source.location)
    gguf_file = source.gguf_file
    if source.kind == "folder" and _gguf_only(folder):
        gguf_file = FOLDER_GGUF
    identity = onnx_export.file_identity(folder / gguf_file if gguf_file else folder)
    converted = onnx_export.convert(
        source.location, gguf_file=gguf_file, identity=identity, precision=precision,
        announce=lambda line: log.warning("presample: %s", line),
    )  # fmt: skip
    return OnnxBackend.load(converted, name=source.name)


def _gguf_only(folder: Path) -> bool:
    """One of our folders whose weights are only ``model.gguf`` (the smallest to ship)."""
    return (folder / FOLDER_GGUF).is_file() and not any(folder.glob("*.safetensors"))


def _load_llamacpp(source: ModelSource, *, device: str, dtype: str) -> Backend:
    from .engine.llamacpp_backend import LlamaCppBackend

    if source.kind == "gguf" and source.gguf_file is not None:
        path = Path(source.location) / source.gguf_file
    elif source.kind == "folder" and (Path(source.location) / FOLDER_GGUF).is_file():
        path = Path(source.location) / FOLDER_GGUF  # our folders carry a GGUF copy
    else:
        raise ModelError(
            f"the llama.cpp backend runs GGUF files; {source.name} is a "
            f"{'Hub id' if source.kind == 'hub' else 'transformers folder'} without "
            f"{FOLDER_GGUF} (use --backend transformers, or pass a .gguf file)"
        )
    if device not in ("auto", "cpu"):
        raise ModelError("presample runs llama.cpp on the CPU only; use --backend transformers")
    if dtype != "auto":
        raise ModelError(
            "with llama.cpp the GGUF file decides the precision; leave --dtype at auto"
        )
    return LlamaCppBackend.load(path, name=source.name)


def model_sampling(source: ModelSource) -> Sampling:
    """A model's own sampling settings: its card's, else its family's usual ones."""
    return source.sampling or (DTG_DEFAULT if source.layout == "dtg" else TIPO_DEFAULT)


@dataclass(frozen=True)
class LoadSettings:
    """How to load a model, the same for every front end (the CLI's model options,
    the server's settings, the ComfyUI and A1111 plug-ins): ``settings.open()``."""

    model: str | None = None
    """A model name, folder, ``.gguf`` file or Hugging Face id; None: the shipped default."""
    backend: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    models_dirs: tuple[Path, ...] = ()
    """Folders searched for a model given by name (ComfyUI's ``models/kgen`` ...)."""
    sampling: Mapping[str, float | int] = field(default_factory=dict)
    """Overrides of the model's own sampling settings (``temperature`` ...)."""

    def open(self, source: ModelSource | None = None) -> Presampler:
        """Load the model (``source``: already resolved); bad sampling values are an
        ``InputError`` naming the setting."""
        presampler = Presampler(
            self.model,
            backend=self.backend,
            device=self.device,
            dtype=self.dtype,
            models_dirs=self.models_dirs,
            source=source,
        )
        if self.sampling:
            try:
                presampler.sampling = self._sampling(presampler.sampling)
            except InputError:
                presampler.close()
                raise
        return presampler

    def check(self) -> ModelSource:
        """What ``open`` would fail on without loading anything: the model is found and
        the sampling settings are valid (before work is sent to other machines)."""
        source = resolve(self.model, search=tuple(self.models_dirs))
        self._sampling(model_sampling(source))
        return source

    def _sampling(self, model_default: Sampling) -> Sampling:
        try:
            return Sampling(**{**model_default.to_dict(), **self.sampling})
        except (TypeError, ValueError) as exc:
            raise InputError(f"invalid sampling setting: {exc}") from None


class Presampler:
    """A loaded model plus the tag database, ready for requests."""

    def __init__(
        self,
        model: str | None = None,
        *,
        backend: str = "auto",
        device: str = "auto",
        dtype: str = "auto",
        sampling: Sampling | None = None,
        models_dirs: Iterable[Path] = (),
        loaded: Backend | None = None,
        source: ModelSource | None = None,
    ) -> None:
        self.source = source or resolve(model, search=tuple(models_dirs))
        self.backend = loaded or load_backend(
            self.source, backend=backend, device=device, dtype=dtype
        )
        self._check_layout()
        self.sampling = sampling or model_sampling(self.source)
        self.db = TagDatabase()
        self.prior = CooccurrenceTable()
        self._model_hash: str | None = None

    def _check_layout(self) -> None:
        """A model without the layout's special tokens would read our prompts as noise."""
        layout = self.source.layout
        needed = ["<|input_end|>"] if layout == "dtg" else ["<|tag_to_long|>", "<|gen_meta|>"]
        if not all(self.backend.single_tokens(needed)):
            raise ModelError(
                f"{self.source.name} does not speak the {layout.upper()} layout: its "
                f"tokenizer has no {needed[0]} token (is it a TIPO or DanTagGen model?)"
            )

    def close(self) -> None:
        self.db.close()
        self.prior.close()

    def __enter__(self) -> Presampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, request: RequestLike) -> PresampleResult:
        return self.presample(request)

    @property
    def model_hash(self) -> str:
        """A short hash of the model's weight files (``record.weights_hash``), read once."""
        if self._model_hash is None:
            from .record import weights_hash

            files = self._weight_files()
            self._model_hash = weights_hash(files) if files else ""  # unknown, not a hash
        return self._model_hash

    def _weight_files(self) -> list[Path]:
        location = Path(self.source.location)
        if self.source.kind == "hub":  # loaded already: its folder is in the cache
            location = hub.cached_folder(self.source.location) or location
        if self.source.gguf_file:
            return [location / self.source.gguf_file]
        if location.is_file():
            return [location]
        if not location.is_dir():
            return []
        suffixes = {".gguf", ".safetensors", ".bin"}
        return [f for f in location.iterdir() if f.is_file() and f.suffix in suffixes]

    @property
    def engine(self) -> str:
        """The engine and precision running the model, e.g. ``onnx int8``."""
        info = self.backend.info
        return f"{info.name} {info.dtype}".strip()

    def run_for(
        self, request: RequestLike, on_step: Callable[[StepResult], None] | None = None
    ) -> Run:
        """The generator behind one request (for schedulers and streaming)."""
        req = self.with_model_defaults(as_request(request))
        seed = req.seed if req.seed >= 0 else secrets.randbelow(2**32)
        return self.run_prepared(self.prepare(req), seed=seed, on_step=on_step)

    def prepare(self, request: PresampleRequest) -> Prepared:
        """``request`` ready for this model's layout (its TIPO generation's strings)."""
        return prepare(request, self.db, dialect=self.source.dialect)

    def run_prepared(
        self,
        prepared: Prepared,
        *,
        seed: int,
        sampling: Sampling | None = None,
        on_step: Callable[[StepResult], None] | None = None,
    ) -> Run:
        """The run of a prepared request on this model: its layout's steps, its rules
        and the tag prior. Every front end starts its runs here (presample, refine,
        the plug-ins' single steps)."""
        options = RunOptions(
            sampling=sampling or self.sampling,
            seed=seed,
            model=self.source.name,
            engine=self.engine,
            quality=self.source.quality,
            on_step=on_step,
        )
        if self.source.layout == "dtg":
            return dtg_run(prepared, self.db, options)
        return tipo_run(prepared, self.db, options, self.prior)

    def with_model_defaults(self, request: PresampleRequest) -> PresampleRequest:
        """Fill the fields the request left out with the model card's defaults.

        The shipped model was trained on prompts that mostly have 6-36 tags, so
        its card asks for ``short`` tag lists unless the request says otherwise.
        """
        unset = {
            k: Length(v) if k.endswith("_length") else v
            for k, v in self.source.defaults
            if k not in request.model_fields_set
        }
        return request.model_copy(update=unset) if unset else request

    def presample(self, request: RequestLike) -> PresampleResult:
        (result,) = self.presample_many([request], raise_errors=True)
        assert isinstance(result, PresampleResult)
        return result

    def presample_many(
        self,
        requests: Sequence[RequestLike],
        *,
        on_result: Callable[[int, PresampleResult | Exception], None] | None = None,
        raise_errors: bool = False,
    ) -> list[PresampleResult | Exception]:
        """Presample many requests in shared batches.

        ``on_result`` is called as each request finishes (in completion order).
        Without ``raise_errors`` a failed request yields its exception in the list.
        """
        runs = []
        for request in requests:
            try:
                runs.append(self.run_for(request))
            except (ValueError, ModelError) as exc:  # invalid request: fail it alone
                runs.append(_failed(exc))
        results = self.run_many(runs, on_done=on_result)  # type: ignore[arg-type]
        if raise_errors:
            for item in results:
                if isinstance(item, Exception):
                    raise item
        return results  # type: ignore[return-value]

    def run_many(
        self, runs: Sequence[scheduler.Run], *, on_done: OnDone | None = None
    ) -> list[object]:
        """Drive runs (``run_for``, ``run_prepared``) to the end in shared model calls;
        each run's result or exception, in order. A server drives them through its
        own queue instead, beside other requests (``server/engine.Engine.run_many``)."""
        return run_all(self.backend, runs, on_done=on_done)

    def stream(self, request: RequestLike) -> Iterator[StepResult | PresampleResult]:
        """Each step's details as soon as it finishes, then the result."""
        finished: list[StepResult] = []
        run = self.run_for(request, on_step=finished.append)
        try:
            job = next(run)
            while True:
                outcome: Generation | Exception
                try:
                    (outcome,) = generate_samples(self.backend, [job])
                except Exception as exc:  # the run decides (scheduler.resume)
                    outcome = exc
                job = resume(run, outcome)
                yield from finished
                finished.clear()
        except StopIteration as stop:
            yield from finished
            yield stop.value

    async def apresample(self, request: RequestLike) -> PresampleResult:
        """Presample without blocking the event loop."""
        return await asyncio.to_thread(self.presample, request)


def _failed(exc: Exception) -> Run:
    raise exc
    yield  # a generator that fails on its first step
