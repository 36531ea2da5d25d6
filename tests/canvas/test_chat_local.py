"""The chat driver on a tiny random local LLaMA through the engine's backend.

Its answers are noise: the driver must return a precise parse report, never
crash, never run anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from presample.canvas.chat import (
    SYSTEM_PROMPT,
    CanvasChat,
    ChatError,
    ChatSettings,
    LocalChat,
)

TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SHORT = ChatSettings(temperature=0, max_new_tokens=48)


@pytest.fixture(scope="module")
def local(tiny_model_dir: Path) -> LocalChat:
    from presample.engine.torch_backend import TorchBackend

    backend = TorchBackend.load(tiny_model_dir, device="cpu", dtype="float32")
    backend.tokenizer.chat_template = TEMPLATE
    return LocalChat(backend)


def test_the_conversation_goes_through_the_chat_template(local: LocalChat) -> None:
    chat = CanvasChat(
        local,
        history=[
            {"role": "user", "content": "a cat"},
            {"role": "assistant", "content": "```python\ncanvas = Canvas()\n```"},
        ],
    )
    prompt = local.prompt(chat.messages("make it black"))
    assert prompt.startswith("<|system|>\n" + SYSTEM_PROMPT)  # no second bos
    assert prompt.endswith("<|user|>\nmake it black\n<|assistant|>\n")
    assert "<|assistant|>\n```python\ncanvas = Canvas()\n```\n" in prompt


def test_a_garbage_answer_is_a_precise_report(local: LocalChat) -> None:
    chat = CanvasChat(local, settings=SHORT)
    turn = chat.send("a cat on a sofa")
    assert turn.answer  # the model said something
    assert turn.parsed is None and turn.error is not None
    assert turn.problems and all(p.message for p in turn.problems)
    assert turn.report().startswith("no canvas could be read from the answer")
    # Greedy is repeatable, and the history holds the exchange for an edit.
    assert CanvasChat(local, settings=SHORT).send("a cat on a sofa").answer == turn.answer
    assert chat.history == [
        {"role": "user", "content": "a cat on a sofa"},
        {"role": "assistant", "content": turn.answer},
    ]


def test_a_seed_reproduces_a_sampled_answer(local: LocalChat) -> None:
    settings = ChatSettings(temperature=0.9, max_new_tokens=24, seed=5)
    one = CanvasChat(local, settings=settings).send("a dog").answer
    two = CanvasChat(local, settings=settings).send("a dog").answer
    assert one == two


def test_the_fix_turn_also_goes_to_the_local_model(local: LocalChat) -> None:
    # A short system prompt: the tiny model's context is 1024 tokens.
    calls: list[str] = []

    class Counting:
        """The same backend, recording each prompt it is given."""

        def __getattr__(self, name: str) -> Any:
            return getattr(local.backend, name)

        def generate(self, jobs: Any, progress: Any = None) -> Any:
            calls.extend(job.prompt for job in jobs)
            return local.backend.generate(jobs, progress)

    model = LocalChat(Counting())
    chat = CanvasChat(model, system_prompt="Write a canvas.", settings=SHORT, fix_attempts=1)
    turn = chat.send("a cat")
    assert len(calls) == 2 and "Your code could not be read" in calls[1]
    assert turn.parsed is None and turn.problems and turn.fix_error is None


def test_a_fix_that_cannot_be_asked_keeps_the_first_answer(local: LocalChat) -> None:
    """Omost's prompt, the garbage answer and the fix request overflow the tiny context."""
    turn = CanvasChat(local, settings=SHORT, fix_attempts=1).send("a cat")
    assert not turn.fixed and turn.parsed is None
    assert (
        turn.fix_error is not None and "longer than the model's context of 1024" in turn.fix_error
    )
    assert "asking the model to fix it failed" in turn.report()


def test_a_tokenizer_without_chat_template_is_refused(local: LocalChat) -> None:
    backend: Any = local.backend
    saved = backend.tokenizer.chat_template
    backend.tokenizer.chat_template = None
    try:
        with pytest.raises(ChatError, match="has no chat template"):
            CanvasChat(local, settings=SHORT).send("a cat")
    finally:
        backend.tokenizer.chat_template = saved
