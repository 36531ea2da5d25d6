"""What the ComfyUI nodes and the A1111 script share.

* ``ModelCache``: loaded models kept per (model, device, dtype), least recently
  used first out, with an explicit size. The reference extension reloaded its
  model whenever a widget changed; a host that keeps a cache object keeps models.
* Model folders: our own folder plus the reference's ``kgen`` folder, whose
  ``<Repo>_<file>.gguf`` downloads are listed and loaded as they are.
* Option parsing: comma-separated ban and ignore lists, reference template and
  model names, sampling settings.

Nothing here imports torch; the cache loads a model only when asked for one.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..engine.sampling import Sampling
from ..formatting import TEMPLATES, TYPED_TEMPLATE
from ..registry import CARD_FILE, DEFAULT_MODEL, KNOWN_MODELS, known, resolve
from ..request import BanRule
from ..syntax import unescape_tag
from ..tipo import Length

if TYPE_CHECKING:
    from ..presampler import Presampler

DEVICES = ("auto", "cpu", "cuda", "mps")
MODEL_DEFAULT = "model default"
# "model default" leaves the length to the model card (the shipped model asks
# for short lists and captions); the rest are the request's length classes.
LENGTHS = [MODEL_DEFAULT, *(length.value for length in Length)]
TEMPLATE_CHOICES = [*TEMPLATES, TYPED_TEMPLATE, "custom"]
SAMPLING_MODES = ["model default", "custom"]
DTYPES = ("auto", "float32", "bfloat16", "float16")
# Characters that only make sense in a pattern; a tag never has them (escaped
# brackets, as in ``ganyu \(genshin impact\)``, are not among them).
_REGEX_HINT = re.compile(r"[*+?^$|]")
_BAN_PREFIXES = {"category": "category", "group": "group", "regex": "regex", "re": "regex",
                 "exact": "exact", "substring": "substring"}  # fmt: skip


def split_list(text: str) -> list[str]:
    """Items of a comma- or newline-separated list, stripped, empty ones dropped."""
    return [item.strip() for item in re.split(r"[,\n]", text or "") if item.strip()]


def parse_bans(text: str) -> list[BanRule]:
    """Ban rules from one text box: ``red hair, official.*, category:artist, group:hair``.

    An item with a ``kind:`` prefix (category, group, regex/re, exact,
    substring) is that kind; an item with pattern characters (``* + ? ^ $ |``)
    is a regular expression, as in the reference extension; anything else is
    one tag, in any spelling. Invalid rules raise ``ValueError`` naming the item.
    """
    rules: list[BanRule] = []
    for item in split_list(text):
        head, sep, rest = item.partition(":")
        kind = _BAN_PREFIXES.get(head.strip().lower()) if sep else None
        if kind is not None and rest.strip():
            pattern = rest.strip()
        elif _REGEX_HINT.search(item):
            kind, pattern = "regex", item
        else:
            kind, pattern = "exact", unescape_tag(item)
        try:
            rules.append(BanRule(kind=kind, pattern=pattern))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"ban {item!r}: {_first_error(exc)}") from None
    return rules


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors(include_url=False)
        if found:
            return str(found[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


# --- models -------------------------------------------------------------------------------


def reference_model_names() -> list[str]:
    """The reference extension's model names: ``<repo> | <gguf file>``, then bare repos."""
    names = [f"{m.repo} | {PurePosixPath(f).name}" for m in KNOWN_MODELS for f in m.gguf_files]
    return names + [m.repo for m in KNOWN_MODELS]


def local_models(dirs: Iterable[Path]) -> dict[str, Path]:
    """Loadable models in ``dirs``: ``.gguf`` files and folders with a ``config.json``.

    Keyed by name (the first folder wins a clash), in folder then name order.
    Symlinked entries are followed: people link big downloads in.
    """
    found: dict[str, Path] = {}
    for folder in dirs:
        try:
            entries = sorted(Path(folder).iterdir(), key=lambda p: p.name.lower())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name in found:
                continue
            is_gguf = entry.suffix.lower() == ".gguf" and entry.is_file()
            is_folder = entry.is_dir() and (
                (entry / "config.json").is_file() or (entry / CARD_FILE).is_file()
            )
            if is_gguf or is_folder:
                found[entry.name] = entry
    return found


def model_choices(dirs: Iterable[Path]) -> list[str]:
    """What a model drop-down offers: the shipped model, local files, published models."""
    local = list(local_models(dirs))
    published = [m.repo for m in KNOWN_MODELS]
    return [DEFAULT_MODEL, *local, *(p for p in published if p not in local)]


def model_spec(choice: str, dirs: Sequence[Path]) -> str:
    """Turn a drop-down choice into what ``registry.resolve`` reads.

    A local name becomes its path (only names found by listing the folders, so a
    choice is never joined onto a folder); a reference name ``<repo> | <file>``
    becomes that file if it was downloaded, else the repo; anything else (a
    repo id, ``default``, a path the user typed) is passed on.
    """
    choice = choice.strip()
    local = local_models(dirs)
    if choice in local:
        return str(local[choice])
    if " | " in choice:
        repo, _, file = (part.strip() for part in choice.partition(" | "))
        model = known(repo)
        if model is not None:
            for name, path in local.items():
                if name == f"{model.short_name}_{file}":
                    return str(path)
        return repo
    return choice


@dataclass(frozen=True)
class ModelKey:
    name: str
    location: str
    gguf_file: str | None
    device: str
    dtype: str


class ModelCache:
    """Loaded presamplers, least recently used evicted beyond ``max_models``.

    ``lock`` serialises loading and generation: hosts call from worker threads
    (ComfyUI's executor, A1111's queue and its UI buttons) and one model must
    not run two requests at once.
    """

    def __init__(self, max_models: int = 1) -> None:
        if max_models < 1:
            raise ValueError(f"max_models must be at least 1, got {max_models}")
        self.max_models = max_models
        self.lock = threading.RLock()
        self._items: OrderedDict[ModelKey, Presampler] = OrderedDict()
        self.loads = 0
        """How many models were loaded (a hit does not count)."""

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[ModelKey]:
        return list(self._items)

    def get(
        self,
        spec: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        models_dirs: Sequence[Path] = (),
    ) -> Presampler:
        """The presampler for ``spec`` on ``device``/``dtype``, loading it on a miss."""
        from ..presampler import LoadSettings

        with self.lock:
            dirs = tuple(models_dirs)
            settings = LoadSettings(spec, device=device, dtype=dtype, models_dirs=dirs)
            source = resolve(spec, search=settings.models_dirs)
            key = ModelKey(source.name, source.location, source.gguf_file, device, dtype)
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            presampler = settings.open(source)
            self.loads += 1
            self._items[key] = presampler
            while len(self._items) > self.max_models:
                _, old = self._items.popitem(last=False)
                old.close()
            return presampler

    def resize(self, max_models: int) -> None:
        with self.lock:
            self.max_models = max(1, int(max_models))
            while len(self._items) > self.max_models:
                _, old = self._items.popitem(last=False)
                old.close()

    def clear(self) -> None:
        with self.lock:
            for presampler in self._items.values():
                presampler.close()
            self._items.clear()


@contextmanager
def using_sampling(presampler: Presampler, sampling: Sampling | None) -> Iterator[Presampler]:
    """Run with ``sampling`` (``None``: the model family's defaults), restoring it after.

    A cached presampler is shared between nodes with different settings.
    """
    saved = presampler.sampling
    if sampling is not None:
        presampler.sampling = sampling
    try:
        yield presampler
    finally:
        presampler.sampling = saved
