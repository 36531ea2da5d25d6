"""Which models exist and where their weights are.

A model spec is one of: ``default`` (the model shipped in the package), a Hugging
Face repo id (``KBlueLeaf/TIPO-200M-ft2``), a local transformers folder, or a
local GGUF file — including the reference's ``<Repo>_<file>.gguf`` names in a
models folder, so people keep the downloads they have.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from .engine.backend import ModelError
from .engine.dots1 import is_kohaku
from .engine.sampling import Sampling
from .tipo import Dialect

Layout = Literal["tipo", "dtg"]
# The TIPO v2 model cards' sampling (spec/TIPO_V2.md §9): the models were tuned to
# be drawn from at temperature 1 with only min-p cutting the tail.
TIPO_V2_SAMPLING = Sampling(
    temperature=1.0, top_p=1.0, top_k=0, min_p=0.1, repetition_penalty=1.0, max_new_tokens=512
)


@dataclass(frozen=True, slots=True)
class KnownModel:
    repo: str
    layout: Layout
    quality: bool
    """DanTagGen: trained with a ``quality:`` line."""
    gguf_files: tuple[str, ...] = ()
    """Published GGUF files, by their path in the repo."""
    params: str = ""
    dialect: Dialect = Dialect.V1
    sampling: Sampling | None = None
    """The model card's sampling, when it differs from the layout's default."""

    @property
    def short_name(self) -> str:
        return self.repo.split("/")[-1]


KNOWN_MODELS: tuple[KnownModel, ...] = (
    # First, as in the reference's list: what its UIs now default to.
    KnownModel(
        "KBlueLeaf/TIPO-v2.1-1B-A200M",
        "tipo",
        True,
        ("TIPO-v2.1-1B-A200M-f16.gguf", "gguf/TIPO-v2.1-1B-A200M-Q8_0.gguf"),
        "1B-A200M",
        Dialect.V2_1,
        TIPO_V2_SAMPLING,
    ),
    KnownModel(
        "KBlueLeaf/TIPOv2-1B-A200M",
        "tipo",
        True,
        ("TIPOv2-1B-A200M-f16.gguf",),
        "1B-A200M",
        Dialect.V2,
        TIPO_V2_SAMPLING,
    ),
    KnownModel("KBlueLeaf/TIPO-500M-ft", "tipo", True, ("TIPO-500M-ft-F16.gguf",), "508M"),
    KnownModel("KBlueLeaf/TIPO-500M", "tipo", True, ("TIPO-500M_epoch5-F16.gguf",), "508M"),
    KnownModel("KBlueLeaf/TIPO-200M-ft2", "tipo", True, ("TIPO-200M-ft2-F16.gguf",), "203M"),
    KnownModel("KBlueLeaf/TIPO-200M-ft", "tipo", True, ("TIPO-200M-ft-F16.gguf",), "203M"),
    KnownModel("KBlueLeaf/TIPO-200M", "tipo", True, ("TIPO-200M-40Btok-F16.gguf",), "203M"),
    KnownModel("KBlueLeaf/TIPO-100M", "tipo", True, ("TIPO-100M-F16.gguf",), "100M"),
    *(
        KnownModel(
            f"KBlueLeaf/DanTagGen-{name}",
            "dtg",
            quality,
            ("ggml-model-Q6_K.gguf", "ggml-model-Q8_0.gguf", "ggml-model-f16.gguf"),
            "400M" if name.startswith("delta") else "",
        )
        for name, quality in (
            ("delta-rev2", True),
            ("delta", True),
            ("beta", False),
            ("alpha", False),
            ("gamma", False),
        )
    ),
)
DEFAULT_MODEL = "default"
# Written beside our own models' weights: which layout they speak.
CARD_FILE = "presample.json"
# Our model folders may carry the same weights as GGUF for the llama.cpp backend.
FOLDER_GGUF = "model.gguf"
SAFETENSORS_FILE = "model.safetensors"


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where to load a model from and how to talk to it."""

    name: str
    location: str
    """A folder path, a repo id, or the folder holding ``gguf_file``."""
    kind: Literal["folder", "hub", "gguf"]
    layout: Layout
    quality: bool = True
    gguf_file: str | None = None
    defaults: tuple[tuple[str, str | float], ...] = ()
    """Request fields the model's card sets when a request leaves them out
    (``tag_length``, ``nl_length``, ``tag_prior``, ``tag_draw``): what the model does well."""
    dialect: Dialect = Dialect.V1
    """Which TIPO generation's strings the model reads (``tipo.Dialect``)."""
    sampling: Sampling | None = None
    """The model card's sampling; ``None``: the layout's default."""


def known(spec: str) -> KnownModel | None:
    lowered = spec.lower()
    for model in KNOWN_MODELS:
        if lowered in (model.repo.lower(), model.short_name.lower()):
            return model
    return None


def default_model_dir() -> Path:
    return Path(str(resources.files("presample") / "models" / "default"))


def models_dirs(extra: tuple[Path, ...] = ()) -> tuple[Path, ...]:
    """Folders searched for downloaded GGUF files: given ones, then $PRESAMPLE_MODELS."""
    env = os.environ.get("PRESAMPLE_MODELS")
    found = list(extra)
    if env:
        found += [Path(p) for p in env.split(os.pathsep) if p]
    return tuple(found)


def resolve(spec: str | None, *, search: tuple[Path, ...] = ()) -> ModelSource:
    """Turn what the user wrote into a loadable source, with a clear error if none."""
    for folder in search:
        if not folder.is_dir():
            raise ModelError(f"models folder {folder} does not exist (--models-dir)")
    spec = (spec or DEFAULT_MODEL).strip()
    if spec == DEFAULT_MODEL:
        folder = default_model_dir()
        if not (folder / "config.json").is_file():
            raise ModelError(
                "the default model is not installed in this copy of presample; "
                "pass --model with a folder, a GGUF file or a Hugging Face id "
                "(e.g. KBlueLeaf/TIPO-200M-ft2)"
            )
        return _folder_source(folder, name="presample-default")

    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        return _gguf_source(path)
    if path.is_dir():
        return _folder_source(path, name=path.name)

    model = known(spec)
    if model is not None:
        # A GGUF downloaded by the reference extension: <Repo>_<file>.gguf.
        for folder in models_dirs(search):
            for file in model.gguf_files:
                candidate = folder / f"{model.short_name}_{Path(file).name}"
                if candidate.is_file():
                    return _gguf_source(candidate)
        return _known_source(model, model.repo, "hub")
    if "/" in spec and not path.exists() and not spec.startswith((".", "/", "~")):
        # An unknown Hub id: assume TIPO unless the name says DanTagGen.
        layout: Layout = "dtg" if "dantaggen" in spec.lower() else "tipo"
        return ModelSource(spec, spec, "hub", layout, True)
    raise ModelError(
        f"no model {spec!r}: not a folder, not a .gguf file and not a known model "
        f"({', '.join(m.short_name for m in KNOWN_MODELS)})"
    )


def _known_source(
    model: KnownModel, location: str, kind: Literal["folder", "hub", "gguf"], **extra: str
) -> ModelSource:
    return ModelSource(
        extra.pop("name", model.short_name if kind != "hub" else model.repo),
        location,
        kind,
        model.layout,
        model.quality,
        extra.pop("gguf_file", None),
        dialect=model.dialect,
        sampling=model.sampling,
    )


def _gguf_source(path: Path) -> ModelSource:
    stem = path.name
    model = next(
        (
            m
            for m in KNOWN_MODELS
            if stem.startswith(m.short_name + "_") or stem in {Path(f).name for f in m.gguf_files}
        ),
        None,
    )
    if model is not None:
        return _known_source(model, str(path.parent), "gguf", name=stem, gguf_file=path.name)
    if _gguf_architecture(path) == "dots1":
        # A TIPO v2 file under another name: the current generation's strings.
        v21 = KNOWN_MODELS[0]
        return _known_source(v21, str(path.parent), "gguf", name=stem, gguf_file=path.name)
    layout: Layout = "dtg" if "dantaggen" in stem.lower() else "tipo"
    return ModelSource(stem, str(path.parent), "gguf", layout, True, path.name)


def _gguf_architecture(path: Path) -> str:
    from .engine.llamacpp_backend import gguf_architecture

    return gguf_architecture(path)


def _folder_source(path: Path, *, name: str) -> ModelSource:
    card = path / CARD_FILE
    if card.is_file():
        try:
            data = json.loads(card.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{card} is not valid JSON: {exc}") from None
        layout = data.get("layout", "tipo")
        if layout not in ("tipo", "dtg"):
            raise ModelError(f"{card}: layout must be 'tipo' or 'dtg', not {layout!r}")
        return ModelSource(
            data.get("name", name),
            str(path),
            "folder",
            layout,
            bool(data.get("quality", True)),
            defaults=_card_defaults(card, data.get("defaults", {})),
        )
    model = known(path.name)
    if model is not None:
        return _known_source(model, str(path), "folder")
    if is_kohaku(path):
        # The publisher's TIPO v2 format under another folder name (a Hub snapshot).
        return _known_source(KNOWN_MODELS[0], str(path), "folder", name=name)
    layout = _layout_from_tokenizer(path)
    return ModelSource(name, str(path), "folder", layout, True)


CARD_DEFAULT_FIELDS = ("tag_length", "nl_length", "tag_prior", "tag_draw")


def _card_defaults(card: Path, defaults: object) -> tuple[tuple[str, str | float], ...]:
    from .request import MAX_TAG_PRIOR
    from .tipo import Length

    lengths = {x.value for x in Length}
    numbers = {"tag_prior": MAX_TAG_PRIOR, "tag_draw": 1.0}

    def valid(key: str, value: object) -> bool:
        if key in numbers:
            return isinstance(value, (int, float)) and 0 <= value <= numbers[key]
        return key in CARD_DEFAULT_FIELDS and value in lengths

    if not isinstance(defaults, dict) or not all(valid(k, v) for k, v in defaults.items()):
        raise ModelError(
            f"{card}: 'defaults' may set tag_length and nl_length to one of "
            f"{', '.join(sorted(lengths))}, tag_prior to a number from 0 to {MAX_TAG_PRIOR} "
            "and tag_draw to a share from 0 to 1"
        )
    return tuple(sorted((k, float(v) if k in numbers else v) for k, v in defaults.items()))


def _layout_from_tokenizer(path: Path) -> Layout:
    """Tell TIPO from DanTagGen by their special tokens."""
    for file in ("tokenizer.json", "added_tokens.json", "tokenizer_config.json"):
        target = path / file
        if target.is_file():
            text = target.read_text(encoding="utf-8", errors="replace")
            if "<|input_end|>" in text:
                return "dtg"
            if "<|tag_to_long|>" in text:
                return "tipo"
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a model folder (no config.json)")
    return "tipo"
