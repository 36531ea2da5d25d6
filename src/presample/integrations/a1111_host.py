"""The A1111 / Forge script's processing, as pure functions over the processing object.

Standard library only, on purpose: this module runs inside the WebUI, and on a
WebUI whose packages presample cannot share (A1111 1.10: pydantic 1, torch
2.1) it is all of presample the WebUI imports. The model then runs in a
``presample serve`` of its own environment, reached over loopback
(``RemoteRunner``); on a WebUI that can import presample it runs in-process
(``presample.integrations.a1111.Presampling``). Either is a ``Runner``.

``integrations/a1111/scripts/presample_script.py`` builds the gradio UI and
calls these; everything that decides what a prompt becomes lives here so it is
tested against a stand-in of A1111's ``StableDiffusionProcessing`` (the
documented attributes ``prompt``, ``all_prompts``, ``all_seeds``, ``seed``,
``batch_size``, ``n_iter``, ``width``, ``height``, ``extra_generation_params``,
and ``enable_hr`` / ``hr_prompt`` / ``all_hr_prompts`` for hires fix).

* After other prompt processing (the default): every image's own prompt, as
  wildcards, dynamic prompts and styles left it, is presampled with its own
  seed, ``base + image index``; all images share batched forward passes.
* Before other processing: the typed prompt is presampled once, before
  wildcards are filled in, and wildcard syntax (``__name__``, ``{a|b}``) is kept
  away from the model and put back for the wildcard extension to expand.

Each image's infotext records its presample seed and its prompt as it was
before presampling, so "send to txt2img" restores both and Generate gives the
same prompt again. Weights, ``BREAK`` and ``<lora:...>`` never reach the model
(``prepare`` keeps them out) and come back in place.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

MAX_SEED = 2**63 - 1
"""``presample.request.MAX_SEED`` (not imported: this module stays standard library)."""
MODEL_DEFAULT = "model default"
"""``presample.integrations.common.MODEL_DEFAULT``: the length the model card chooses."""

INFOTEXT_SEED = "Presample seed"
INFOTEXT_INPUT = "Presample input"
INFOTEXT_SETTINGS = "Presample"
INFOTEXT_HASH = "Presample model hash"
AFTER = "after"
BEFORE = "before"
TIMINGS: dict[str, str] = {
    AFTER: "After other prompt processing (wildcards, dynamic prompts, styles): every image",
    BEFORE: "Before other prompt processing: once, wildcards kept for later",
}
SEED_LIMIT = 2**32
"""Random base seeds are drawn below this, so ``base + index`` stays a plain 32-bit seed."""




@dataclass(frozen=True)
class ScriptOptions:
    """The script's UI values, in the order ``ui()`` returns its components."""

    enabled: bool = False
    timing: str = AFTER
    seed: int = -1
    model: str = "default"
    tag_length: str = MODEL_DEFAULT
    nl_length: str = MODEL_DEFAULT
    template: str = "both_tag_first"
    custom_template: str = ""
    ban: str = ""
    ignored: str = ""
    nl_prompt: str = ""
    sampling: str = "model default"
    temperature: float = 0.35
    top_p: float = 0.95
    top_k: int = 60
    min_p: float = 0.1
    repetition_penalty: float = 1.17
    max_new_tokens: int = 512
    device: str = "auto"
    dtype: str = "auto"
    no_formatting: bool = False
    """The reference's "No formatting": tags as typed plus the model's, then its text."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_args(cls, args: Sequence[Any]) -> ScriptOptions:
        """Options from ``process(p, *args)``; gradio gives numbers as floats."""
        names = cls.names()
        if len(args) != len(names):
            raise ValueError(f"expected {len(names)} script arguments, got {len(args)}")
        values = dict(zip(names, args, strict=True))
        for name in ("seed", "top_k", "max_new_tokens"):
            values[name] = int(values[name]) if values[name] is not None else -1
        return cls(**values)

    def settings_infotext(self) -> str:
        """Every setting except the seed and the enable switch, safe in an infotext.

        URL-encoding leaves no comma, colon, quote or newline, the characters
        A1111's infotext parser splits or unquotes on, so the value survives any
        version's round trip unchanged.
        """
        values = {k: v for k, v in asdict(self).items() if k not in ("enabled", "seed")}
        return urlencode({k: str(v) for k, v in values.items()})

    @classmethod
    def from_infotext(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """UI values from a pasted infotext (only the keys it holds), for ``infotext_fields``."""
        if INFOTEXT_SEED not in params:
            return {}
        out: dict[str, Any] = {"enabled": True}
        with contextlib.suppress(ValueError):
            out["seed"] = int(str(params[INFOTEXT_SEED]).strip())
        defaults = asdict(cls())
        for key, raw in parse_qsl(str(params.get(INFOTEXT_SETTINGS, ""))):
            if key not in defaults or key in ("enabled", "seed"):
                continue
            default = defaults[key]
            try:
                if isinstance(default, bool):
                    out[key] = raw == "True"
                elif isinstance(default, int):
                    out[key] = int(float(raw))
                elif isinstance(default, float):
                    out[key] = float(raw)
                else:
                    out[key] = raw
            except ValueError:
                continue
        return out




def pasted_prompt(params: Mapping[str, Any]) -> str | None:
    """The prompt box after pasting: the prompt as it was before presampling."""
    if INFOTEXT_SEED in params and INFOTEXT_INPUT in params:
        return str(params[INFOTEXT_INPUT])
    return None


def base_seed(seed: int) -> int:
    """The generation's presample seed: the one given, or a new random one for -1."""
    seed = int(seed)
    if seed < 0:
        return secrets.randbelow(SEED_LIMIT)
    return min(seed, MAX_SEED)


def image_seeds(base: int, count: int) -> list[int]:
    """Image ``i`` gets ``base + i``: image 0 of a pasted-back seed is that seed."""
    return [min(base + i, MAX_SEED) for i in range(count)]


# Wildcard / dynamic-prompt syntax the "before" timing must not show the model.
_DYNAMIC = re.compile(r"__[^_\s][^\s,]*?__|\{[^{}]*\}|\$\$")


def hold_dynamic(prompt: str) -> tuple[str, list[str]]:
    """Split off comma-separated chunks that hold wildcard syntax.

    Returns the rest (for the model) and the held chunks, to be put back as
    written so the wildcard extension still expands them afterwards.
    """
    kept: list[str] = []
    held: list[str] = []
    for chunk in _split_top_level(prompt):
        (held if _DYNAMIC.search(chunk) else kept).append(chunk)
    return ",".join(kept).strip(" ,"), [c.strip() for c in held if c.strip()]


def _split_top_level(prompt: str) -> list[str]:
    """Commas outside ``{}`` and ``()``/``[]`` (a choice may hold commas)."""
    chunks, depth, start = [], 0, 0
    for i, ch in enumerate(prompt):
        if ch in "{([":
            depth += 1
        elif ch in "})]" and depth:
            depth -= 1
        elif ch == "," and depth == 0:
            chunks.append(prompt[start:i])
            start = i + 1
    chunks.append(prompt[start:])
    return chunks




Runner = Callable[[Sequence[str], Sequence[int], ScriptOptions, int | None, int | None], list[str]]


def process_after(
    p: Any, options: ScriptOptions, run: Runner, model_hash: Callable[[], str] | None = None
) -> None:
    """Presample every image's prompt with its own seed; record seeds and inputs per image."""
    if not options.enabled or options.timing != AFTER:
        return
    originals = list(p.all_prompts)
    seeds = image_seeds(base_seed(options.seed), len(originals))
    new = run(originals, seeds, options, p.width, p.height)
    if getattr(p, "enable_hr", False) and getattr(p, "all_hr_prompts", None):
        # A hires prompt left equal to its image's prompt follows it; one the user
        # set apart stays as set.
        p.all_hr_prompts = [
            new[i] if hr == originals[i] else hr for i, hr in enumerate(p.all_hr_prompts)
        ]
    p.all_prompts = new
    record(p, options, seeds, originals, model_hash() if model_hash else "")


def process_before(
    p: Any, options: ScriptOptions, run: Runner, model_hash: Callable[[], str] | None = None
) -> None:
    """Presample the typed prompt once, before wildcards; their syntax is put back."""
    if not options.enabled or options.timing != BEFORE:
        return
    original = p.prompt
    seed = base_seed(options.seed)
    rest, held = hold_dynamic(original)
    (new,) = run([rest], [seed], options, p.width, p.height)
    if held:
        new = f"{new.rstrip().rstrip(',')},\n{', '.join(held)}" if new.strip() else ", ".join(held)
    p.prompt = new
    if getattr(p, "hr_prompt", None) == original:
        p.hr_prompt = new
    record(p, options, [seed], [original], model_hash() if model_hash else "")


def record(
    p: Any, options: ScriptOptions, seeds: list[int], inputs: list[str], model_hash: str = ""
) -> None:
    """Write the infotext: per-image lists (A1111 picks each image's entry) or one value.
    ``presample show IMAGE`` reads it back (``presample/record.py``)."""
    extra = p.extra_generation_params
    extra[INFOTEXT_SEED] = seeds if len(seeds) > 1 else seeds[0]
    extra[INFOTEXT_INPUT] = inputs if len(inputs) > 1 else inputs[0]
    extra[INFOTEXT_SETTINGS] = options.settings_infotext()
    if model_hash:
        extra[INFOTEXT_HASH] = model_hash


def generate_prompt(
    prompt: str, options: ScriptOptions, run: Runner, width: int | None = None,
    height: int | None = None,
) -> str:  # fmt: skip
    """The "Generate prompt" button: the prompt box's text, presampled, for the prompt box."""
    if not prompt.strip() and not options.nl_prompt.strip():
        return prompt
    (new,) = run([prompt], [base_seed(options.seed)], replace(options, enabled=True), width, height)
    return new


def model_dirs(models_path: str | Path, extensions_dir: str | Path | None = None) -> list[Path]:
    """``models/presample``, the reference's ``models/kgen`` and its extension's ``models``."""
    root = Path(models_path)
    dirs = [root / "presample", root / "kgen"]
    if extensions_dir is not None:
        base = Path(extensions_dir)
        dirs.append(base / "z-tipo-extension" / "models")
    return dirs


DEFAULT_SERVER = "http://127.0.0.1:7878"
START_SECONDS = 300.0
"""A first start converts the model for ONNX Runtime (about a minute on 2 cores)."""
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class RemoteError(RuntimeError):
    """The presample server could not be reached or refused the work; one line."""


@dataclass
class RemoteRunner:
    """A ``Runner`` on a ``presample serve`` reached over loopback, for WebUIs that
    cannot import presample (``POST /api/a1111/run``). When nothing answers at
    ``address`` and ``python`` names presample's own environment, a server is
    started from it (and left running for the WebUI's next generation)."""

    address: str = DEFAULT_SERVER
    python: str | None = None
    timeout: float = 900.0
    log: Path | None = None
    """Where a started server writes its output."""
    last_model_hash: str = ""

    def run(
        self, prompts: Sequence[str], seeds: Sequence[int], options: ScriptOptions,
        width: int | None = None, height: int | None = None,
    ) -> list[str]:  # fmt: skip
        answer = self._call("/api/a1111/run", {
            "prompts": list(prompts), "seeds": [int(s) for s in seeds],
            "options": asdict(options), "width": width, "height": height,
        })  # fmt: skip
        self.last_model_hash = str(answer.get("model_hash", ""))
        return [str(p) for p in answer["prompts"]]

    def choices(self) -> dict[str, list[str]]:
        """The UI's choices as the server has them (its models, lengths, templates ...)."""
        return self._call("/api/a1111/choices")

    def _call(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        self.ensure_running()
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.address.rstrip("/") + path, data=data,
            headers={"Content-Type": "application/json"}, method="GET" if data is None else "POST",
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"the presample server refused: {_detail(exc)}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(
                f"no answer from the presample server at {self.address}: {reason}"
            ) from None

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.address.rstrip("/") + "/health", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def ensure_running(self) -> None:
        if self.answers():
            return
        if not self.python:
            raise RemoteError(
                f"no presample server answers at {self.address}; start one with "
                "'presample serve', or let install.py make presample's own environment"
            )
        host, port = _host_port(self.address)
        if host not in LOOPBACK:
            raise RemoteError(f"presample starts servers on this machine only, not {host}")
        log = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                [self.python, "-m", "presample", "serve", "--host", host.strip("[]"),
                 "--port", str(port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # it outlives a WebUI restart's reload of this script
            )  # fmt: skip
        except OSError as exc:
            raise RemoteError(f"cannot start presample's server ({self.python}): {exc}") from None
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + START_SECONDS
        while not self.answers():
            if process.poll() is not None:
                where = f"; see {self.log}" if self.log else ""
                raise RemoteError(
                    f"presample's server stopped at start (exit {process.returncode}){where}"
                )
            if time.monotonic() > deadline:
                raise RemoteError(f"presample's server did not answer within {START_SECONDS:g} s")
            time.sleep(0.5)


def _host_port(address: str) -> tuple[str, int]:
    hostport = address.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RemoteError(f"presample server address {address!r}: expected http://host:port")
    return host, int(port)


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read().decode("utf-8")).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    return str(detail) if detail else f"HTTP {exc.code}"
