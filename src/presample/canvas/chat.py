"""The chat that writes canvases: send a conversation to a model, read its answer safely.

A model is asked with Omost's system prompt and the user's request; its
answer is read with ``parse_answer`` (lenient by default: the valid part plus
a report of what was dropped), never executed. Conversational editing sends
the whole history again and the model answers with a complete new canvas, as
Omost does. Two kinds of model::

    OpenAIChat("http://localhost:8080")      # llama.cpp server, vLLM, Ollama, any
                                             # OpenAI-compatible /v1/chat/completions
    LocalChat.load("path/to/omost-model")    # a transformers causal LM, run by the engine

    chat = CanvasChat(OpenAIChat(url))
    turn = chat.send("a cat on a sofa")      # turn.canvas, turn.problems, turn.answer
    turn = chat.send("make the cat black")   # the edit sees the first answer

httpx and the engine (PyTorch) are imported only when a model is made.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from ..errors import RunError
from .code import canvas_answer
from .model import Area, Canvas, GlobalDescription, Location, Offset, Region
from .parse import CanvasParseError, ParsedAnswer, Problem, parse_answer

# Omost's system prompt, verbatim (lllyasviel/Omost, lib_omost/canvas.py, Apache-2.0):
# the published Omost models were trained with it.
SYSTEM_PROMPT = r"""You are a helpful AI assistant to compose images using the below python class `Canvas`:

```python
class Canvas:
    def set_global_description(self, description: str, detailed_descriptions: list[str], tags: str, HTML_web_color_name: str):
        pass

    def add_local_description(self, location: str, offset: str, area: str, distance_to_viewer: float, description: str, detailed_descriptions: list[str], tags: str, atmosphere: str, style: str, quality_meta: str, HTML_web_color_name: str):
        assert location in ["in the center", "on the left", "on the right", "on the top", "on the bottom", "on the top-left", "on the top-right", "on the bottom-left", "on the bottom-right"]
        assert offset in ["no offset", "slightly to the left", "slightly to the right", "slightly to the upper", "slightly to the lower", "slightly to the upper-left", "slightly to the upper-right", "slightly to the lower-left", "slightly to the lower-right"]
        assert area in ["a small square area", "a small vertical area", "a small horizontal area", "a medium-sized square area", "a medium-sized vertical area", "a medium-sized horizontal area", "a large square area", "a large vertical area", "a large horizontal area"]
        assert distance_to_viewer > 0
        pass
```"""  # noqa: E501

_EXAMPLE = Canvas(
    global_description=GlobalDescription(
        description="A cat sleeping on a red sofa in a sunny living room.",
        detailed_descriptions=[
            "A ginger cat lies curled up on a red velvet sofa.",
            "Warm afternoon light falls through a window on the right.",
        ],
        tags="cat, sofa, living room, sunlight, cozy, warm, afternoon",
        color="burlywood",
    ),
    regions=[
        Region(
            location=Location.CENTER,
            offset=Offset.LOWER,
            area=Area.LARGE_HORIZONTAL,
            distance_to_viewer=4.0,
            description="A red velvet sofa.",
            detailed_descriptions=["The sofa is deep red with soft cushions."],
            tags="sofa, red, velvet, cushions",
            atmosphere="Comfortable and calm.",
            style="Photorealistic.",
            quality_meta="High resolution, soft light.",
            color="darkred",
        ),
        Region(
            location=Location.CENTER,
            offset=Offset.NONE,
            area=Area.SMALL_HORIZONTAL,
            distance_to_viewer=2.0,
            description="A sleeping ginger cat.",
            detailed_descriptions=["The cat is curled up with its tail around its nose."],
            tags="cat, ginger, sleeping, curled up",
            atmosphere="Peaceful.",
            style="Photorealistic.",
            quality_meta="Sharp fur detail.",
            color="orange",
        ),
    ],
)

GENERIC_SYSTEM_PROMPT = (
    SYSTEM_PROMPT
    + """

Answer every request with exactly one ```python code block and nothing else in it:
- start with `canvas = Canvas()`;
- call `canvas.set_global_description(...)` once, then `canvas.add_local_description(...)`
  once per object or area, farthest first;
- keyword arguments only, literal values only (strings, numbers, lists of strings);
  no imports, variables, loops, functions or other code;
- `location`, `offset` and `area` must be one of the listed values;
  `HTML_web_color_name` is an HTML colour name such as 'darkred';
- every description is a short self-contained sentence (under 40 words);
  `tags` is a comma-separated string;
- when asked to change an image, answer with the complete new canvas.

For example, for "a cat sleeping on a red sofa":

"""
    + canvas_answer(_EXAMPLE)
)
"""Omost's prompt plus rules and a worked example, for instruct models not trained on Omost."""

FIX_REQUEST = (
    "Your code could not be read: {problems}. Answer again with the complete corrected "
    "canvas in one ```python block, using only canvas = Canvas(), "
    "canvas.set_global_description(...) and canvas.add_local_description(...) "
    "with literal keyword arguments."
)

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
"""An answer is tens of KB; a server sending more is not answering."""

Message = dict[str, str]


class ChatError(RunError):
    """The model could not be asked or did not answer; one line says why."""


class ChatCancelled(ChatError):
    """The caller cancelled the request."""


@dataclass(frozen=True)
class ChatSettings:
    """Sampling for the chat; Omost's defaults (temperature 0 = greedy)."""

    temperature: float = 0.6
    top_p: float = 0.9
    max_new_tokens: int = 4096
    seed: int | None = 12345

    def __post_init__(self) -> None:
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must be between 0 and 2, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 1 <= self.max_new_tokens <= 32768:
            raise ValueError(f"max_new_tokens must be 1..32768, got {self.max_new_tokens}")


@dataclass(frozen=True)
class Completion:
    text: str
    finish: Literal["stop", "length", "unknown"] = "unknown"
    """``length``: the model hit its token limit, so the answer is cut short."""


class ChatModel(Protocol):
    """Anything that completes a conversation."""

    def complete(
        self,
        messages: Sequence[Message],
        settings: ChatSettings,
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion: ...


# --------------------------------------------------------------------------- HTTP


def chat_url(endpoint: str) -> str:
    """The chat completions URL of an OpenAI-compatible server, from its base or full URL."""
    url = endpoint.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the endpoint must be an http:// or https:// URL, got {endpoint!r}")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def _finish(reason: Any) -> Literal["stop", "length", "unknown"]:
    if reason == "length":
        return "length"
    return "stop" if reason in ("stop", "eos", "end_turn") else "unknown"


@dataclass
class OpenAIChat:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint, through httpx.

    The API key comes from ``api_key``, else the environment variable named
    by ``api_key_env`` (default ``OPENAI_API_KEY``); local servers need none.
    """

    endpoint: str
    model: str = "omost"
    api_key: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 300.0
    stream: bool = False
    client: Any = None
    """An ``httpx.Client`` to use (tests, proxies); one is made per request otherwise."""
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = chat_url(self.endpoint)
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")

    def _headers(self) -> dict[str, str]:
        key = self.api_key or os.environ.get(self.api_key_env, "")
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, messages: Sequence[Message], settings: ChatSettings) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_new_tokens,
            "stream": self.stream,
        }
        if settings.seed is not None:
            body["seed"] = settings.seed
        return body

    def complete(
        self,
        messages: Sequence[Message],
        settings: ChatSettings,
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        import httpx

        client = self.client or httpx.Client(timeout=httpx.Timeout(self.timeout))
        try:
            with client.stream(
                "POST",
                self.url,
                json=self._body(messages, settings),
                headers=self._headers(),
                timeout=httpx.Timeout(self.timeout),
            ) as response:
                if response.status_code >= 400:
                    detail = _short(b"".join(_capped(response.iter_bytes(), 2000, cancel)))
                    raise ChatError(
                        f"{self.url} answered HTTP {response.status_code}"
                        + (f": {detail}" if detail else "")
                    )
                if self.stream:
                    return self._read_stream(response, on_text, cancel)
                raw = b"".join(_capped(response.iter_bytes(), MAX_RESPONSE_BYTES, cancel))
        except httpx.ConnectError as exc:
            raise ChatError(f"cannot connect to {self.url}: {_reason(exc)}") from None
        except httpx.TimeoutException:
            raise ChatError(f"{self.url} did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise ChatError(f"request to {self.url} failed: {_reason(exc)}") from None
        finally:
            if self.client is None:
                client.close()
        completion = _read_json(raw, self.url)
        if on_text is not None:
            on_text(completion.text)
        return completion

    def _read_stream(
        self,
        response: Any,
        on_text: Callable[[str], None] | None,
        cancel: threading.Event | None,
    ) -> Completion:
        """Server-sent events: ``data: {json}`` lines until ``data: [DONE]``."""
        parts: list[str] = []
        size = 0
        finish: Literal["stop", "length", "unknown"] = "unknown"
        for line in response.iter_lines():
            if cancel is not None and cancel.is_set():
                raise ChatCancelled("cancelled")
            if not line.startswith("data:"):
                continue  # comments, event names, keep-alives
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                event = json.loads(data)
                choice = event["choices"][0] if event.get("choices") else {}
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
            except (json.JSONDecodeError, AttributeError, KeyError, IndexError, TypeError):
                raise ChatError(
                    f"{self.url} sent a stream event that is not chat JSON: {_short(data)}"
                ) from None
            if not isinstance(text, str):
                raise ChatError(f"{self.url} sent non-text content in the stream")
            if choice.get("finish_reason"):
                finish = _finish(choice["finish_reason"])
            if text:
                size += len(text)
                if size > MAX_RESPONSE_BYTES:
                    raise ChatError(f"{self.url} sent more than {MAX_RESPONSE_BYTES:,} characters")
                parts.append(text)
                if on_text is not None:
                    on_text(text)
        return Completion("".join(parts), finish)


def _capped(chunks: Iterator[bytes], limit: int, cancel: threading.Event | None) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise ChatCancelled("cancelled")
        size += len(chunk)
        if size > limit:
            if limit >= MAX_RESPONSE_BYTES:
                raise ChatError(f"the server sent more than {limit:,} bytes")
            yield chunk[: len(chunk) - (size - limit)]
            return
        yield chunk


def _read_json(raw: bytes, url: str) -> Completion:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ChatError(f"{url} did not answer with JSON: {_short(raw)}") from None
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ChatError(
            f"{url} answered JSON without choices[0].message.content: {_short(raw)}"
        ) from None
    if not isinstance(text, str):
        raise ChatError(f"{url} answered a non-text message content")
    return Completion(text, _finish(choice.get("finish_reason")))


def _short(data: bytes | str, limit: int = 120) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused (is the server running?)"
    return _short(text)


# --------------------------------------------------------------------------- local


@dataclass
class LocalChat:
    """A local transformers causal LM with a chat template, run by the engine's backend.

    ``backend`` is an ``engine.torch_backend.TorchBackend`` (or anything with
    its ``tokenizer`` and ``generate``). Streaming is not offered here: the
    whole answer is returned at once (``on_text`` gets it in one piece).
    """

    backend: Any

    @classmethod
    def load(cls, source: str, *, device: str = "auto", dtype: str = "auto") -> LocalChat:
        """A model folder, a Hugging Face id, or a ``.gguf`` file (dequantised by transformers)."""
        from pathlib import Path

        from ..engine.torch_backend import TorchBackend

        path = Path(source)
        if path.suffix.lower() == ".gguf" and path.is_file():
            backend = TorchBackend.load(
                path.parent, gguf_file=path.name, device=device, dtype=dtype, name=source
            )
        else:
            backend = TorchBackend.load(source, device=device, dtype=dtype)
        return cls(backend)

    def prompt(self, messages: Sequence[Message]) -> str:
        """The conversation through the tokenizer's chat template, ready for the assistant."""
        tokenizer = self.backend.tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise ChatError(
                f"{self.backend.info.model}: the tokenizer has no chat template, so it "
                "cannot hold a conversation"
            )
        try:
            text = tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # jinja errors from a model's own template
            raise ChatError(f"the model's chat template failed: {_short(str(exc))}") from None
        # The backend tokenises with special tokens, so a bos the template wrote would double.
        bos = tokenizer.bos_token
        if bos and text.startswith(bos) and _adds_bos(tokenizer):
            text = text[len(bos) :]
        return str(text)

    def complete(
        self,
        messages: Sequence[Message],
        settings: ChatSettings,
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        from ..engine.backend import GenerationJob, ModelError
        from ..engine.sampling import Sampling

        if cancel is not None and cancel.is_set():
            raise ChatCancelled("cancelled")
        sampling = Sampling(
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=0,
            min_p=0.0,
            repetition_penalty=1.0,
            max_new_tokens=min(settings.max_new_tokens, 4096),
        )
        seed = settings.seed if settings.seed is not None else 12345
        try:
            (generation,) = self.backend.generate(
                [GenerationJob(self.prompt(messages), sampling, seed)]
            )
        except ModelError as exc:
            raise ChatError(str(exc)) from None
        if on_text is not None:
            on_text(generation.text)
        return Completion(generation.text, "length" if generation.finish == "length" else "stop")


def _adds_bos(tokenizer: Any) -> bool:
    ids = tokenizer("x")["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id


# --------------------------------------------------------------------------- the chat


@dataclass(frozen=True)
class ChatTurn:
    """One exchange: the model's answer and what could be read from it."""

    answer: str
    parsed: ParsedAnswer | None
    """The canvas and its report; ``None`` when no canvas could be read."""
    error: CanvasParseError | None = None
    """Why no canvas could be read (or, in strict mode, any problem)."""
    finish: str = "unknown"
    """``length`` when the model ran out of tokens (the answer is truncated)."""
    fixed: bool = False
    """The model was asked once to fix an unreadable answer, and this is its second answer."""
    fix_error: str | None = None
    """Asking for a fix failed (the model could not be reached, the context was full)."""

    @property
    def canvas(self) -> Canvas | None:
        return None if self.parsed is None else self.parsed.canvas

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Everything wrong with the answer: the parse error's problems or lenient mode's report."""
        if self.error is not None:
            return self.error.problems
        return () if self.parsed is None else self.parsed.problems

    @property
    def ok(self) -> bool:
        """A canvas was read, nothing dropped."""
        return self.parsed is not None and not self.problems

    def report(self) -> str:
        """A short human report: what was read, what was wrong and where."""
        lines = []
        if self.canvas is not None:
            lines.append(f"canvas with {len(self.canvas.regions)} region(s)")
        else:
            lines.append("no canvas could be read from the answer")
        if self.finish == "length":
            lines.append("the answer was cut off at the token limit")
        lines += [f"problem: {p}" for p in self.problems]
        if self.fix_error:
            lines.append(f"asking the model to fix it failed: {self.fix_error}")
        return "\n".join(lines)


def read_answer(
    answer: str, *, lenient: bool = True
) -> tuple[ParsedAnswer | None, CanvasParseError | None]:
    """``parse_answer`` that reports instead of raising."""
    try:
        return parse_answer(answer, lenient=lenient), None
    except CanvasParseError as exc:
        return None, exc


@dataclass
class CanvasChat:
    """A conversation that produces canvases; keeps the history for edits."""

    model: ChatModel
    system_prompt: str = SYSTEM_PROMPT
    settings: ChatSettings = field(default_factory=ChatSettings)
    lenient: bool = True
    fix_attempts: int = 0
    """Ask the model this many times (0 or 1) to fix an answer that did not parse."""
    history: list[Message] = field(default_factory=list)
    """User and assistant messages so far (the system prompt is added per request)."""

    def __post_init__(self) -> None:
        if self.fix_attempts not in (0, 1):
            raise ValueError("fix_attempts must be 0 or 1")
        for message in self.history:
            _check_message(message)

    def messages(self, user: str) -> list[Message]:
        return [{"role": "system", "content": self.system_prompt}, *self.history, _user(user)]

    def send(
        self,
        message: str,
        *,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ChatTurn:
        """Ask for a canvas (or an edit of the last one) and read the answer.

        Raises ``ChatError`` when the model cannot be reached; an answer that
        does not parse is not an exception: the turn says what went wrong.
        """
        if not message.strip():
            raise ValueError("the message is empty")
        messages = self.messages(message)
        completion = self.model.complete(messages, self.settings, on_text=on_text, cancel=cancel)
        parsed, error = read_answer(completion.text, lenient=self.lenient)
        turn = ChatTurn(completion.text, parsed, error, completion.finish)
        if self.fix_attempts and not turn.ok:
            problems = "; ".join(str(p) for p in turn.problems[:5]) or "no canvas found"
            retry = [
                *messages,
                {"role": "assistant", "content": completion.text},
                _user(FIX_REQUEST.format(problems=problems)),
            ]
            try:
                second = self.model.complete(retry, self.settings, on_text=on_text, cancel=cancel)
            except ChatCancelled:
                raise
            except ChatError as exc:
                # The first answer still stands; say why it could not be fixed.
                turn = replace(turn, fix_error=str(exc))
            else:
                parsed2, error2 = read_answer(second.text, lenient=self.lenient)
                fixed = ChatTurn(second.text, parsed2, error2, second.finish, fixed=True)
                # Keep the better of the two: a canvas beats none, fewer problems beat more.
                if _score(fixed) >= _score(turn):
                    turn = fixed
        self.history += [_user(message), {"role": "assistant", "content": turn.answer}]
        return turn

    def reset(self) -> None:
        self.history.clear()


def _score(turn: ChatTurn) -> tuple[int, int]:
    return (turn.parsed is not None, -len(turn.problems))


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def _check_message(message: Any) -> None:
    if (
        not isinstance(message, dict)
        or message.get("role") not in ("user", "assistant")
        or not isinstance(message.get("content"), str)
        or set(message) != {"role", "content"}
    ):
        raise ValueError(
            'each history message must be {"role": "user" or "assistant", "content": text}'
        )
