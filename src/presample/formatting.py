"""Turning a result into the prompt string a user pastes: templates and escaping.

Templates use ``<|category|>`` placeholders (``<|special|>``, ``<|general|>``,
``<|extended|>`` ...). ``apply_template`` matches ``tipo-kgen`` 0.3.1's
formatter byte for byte (``tests/test_formatting.py``), except where noted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import Enum

from .syntax import escape_tag

# The reference's five templates. The trailing spaces after some commas are
# part of the reference strings; the tidy-up pass removes them.
TEMPLATES: dict[str, str] = {
    "tags": (
        "<|special|>, <|characters|>, <|copyrights|>, \n<|artist|>, \n\n<|general|>,\n\n"
        "<|quality|>, <|meta|>, <|rating|>"
    ),
    "nl": "<|extended|>.",
    "both_tag_first": (
        "<|special|>, <|characters|>, <|copyrights|>, \n<|artist|>, \n\n<|general|>,\n\n"
        "<|extended|>.\n\n<|quality|>, <|meta|>, <|rating|>"
    ),
    "both_nl_first": (
        "<|special|>, <|characters|>, <|copyrights|>, \n<|artist|>, \n\n<|extended|>.\n\n"
        "<|general|>,\n\n<|quality|>, <|meta|>, <|rating|>"
    ),
    "both_generated": (
        "<|special|>, <|characters|>, <|copyrights|>, \n<|artist|>, \n\n<|generated|>.\n\n"
        "<|general|>,\n\n<|extended|>.\n\n<|quality|>, <|meta|>, <|rating|>"
    ),
}
TYPED_TEMPLATE = "typed"
"""Not a category template: the prompt exactly as typed, the model's additions
inserted after the user's text and tags (``compose.typed_prompt``)."""
DEFAULT_TEMPLATE = TYPED_TEMPLATE
# The names the reference UI shows, so users switching over can keep theirs.
REFERENCE_TEMPLATE_NAMES: dict[str, str] = {
    "tag only (DTG mode)": "tags",
    "NL only (Tag to NL)": "nl",
    "Both, tag first (recommend)": "both_tag_first",
    "Both, NL first (recommend)": "both_nl_first",
    "Both + generated NL": "both_generated",
}
PLACEHOLDERS: tuple[str, ...] = (
    "special", "characters", "copyrights", "artist", "general",
    "quality", "meta", "rating", "extended", "generated",
)  # fmt: skip

_PLACEHOLDER = re.compile(r"<\|([a-z_]+)\|>")
_LEFTOVER = re.compile(r"<\|(?:(?!<\|.*\|>).)*\|>")
_TIDY: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\n +"), "\n"),
    (re.compile(r"\n\n\n+"), "\n\n"),
    (re.compile(r"  +"), " "),
)


class Target(str, Enum):
    """Where the prompt is going, which decides how literal text is escaped."""

    A1111 = "a1111"
    COMFYUI = "comfyui"
    PLAIN = "plain"

    def __str__(self) -> str:
        return self.value


def resolve_template(name_or_template: str) -> str:
    """A template by our name, the reference's name, or a custom template string."""
    key = REFERENCE_TEMPLATE_NAMES.get(name_or_template, name_or_template)
    if key == TYPED_TEMPLATE:
        return TYPED_TEMPLATE
    if key in TEMPLATES:
        return TEMPLATES[key]
    if _PLACEHOLDER.search(name_or_template):
        unknown = sorted(
            {m for m in _PLACEHOLDER.findall(name_or_template) if m not in PLACEHOLDERS}
        )
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join(f'<|{u}|>' for u in unknown)} in template;"
                f" known: {', '.join(PLACEHOLDERS)}"
            )
        return name_or_template
    raise ValueError(
        f"unknown template {name_or_template!r}: use one of {TYPED_TEMPLATE}, "
        f"{', '.join(TEMPLATES)} "
        "or a custom string with <|placeholders|>"
    )


def apply_template(values: Mapping[str, str | Sequence[str]], template: str) -> str:
    """Fill a template; empty placeholders vanish with their trailing comma.

    ``<|extended|>`` falls back to ``<|generated|>`` when there is no extended text.

    Deviation: the reference leaves a lone ``.`` where an empty ``<|extended|>.``
    or ``<|generated|>.`` stood (a tags-only result formatted with a "Both"
    template ends up with a stray full stop); an empty text placeholder takes
    its full stop with it.
    """
    form = template
    if "<|extended|>" in form and not values.get("extended"):
        form = form.replace("<|extended|>", "<|generated|>")
    for key in ("extended", "generated"):
        if not values.get(key):
            form = form.replace(f"<|{key}|>.", "")
    for key, value in values.items():
        placeholder = f"<|{key}|>"
        if placeholder not in form:
            continue
        if not value:
            form = form.replace(f"{placeholder},", "").replace(placeholder, "")
        else:
            form = form.replace(placeholder, value if isinstance(value, str) else ", ".join(value))
    form = _LEFTOVER.sub("", form)
    for pattern, replacement in _TIDY:
        form = pattern.sub(replacement, form)
    return form.strip().strip(",")


# ComfyUI reads only ``\(`` and ``\)`` as escapes; a backslash elsewhere is literal.
_COMFY_NEEDS_ESCAPE = re.compile(r"\\(?=[()\\]|\Z)|[()]")


def escape(text: str, target: Target) -> str:
    """Escape literal text so the UI does not read it as weights.

    A1111 treats ``( )`` and ``[ ]`` as emphasis; ComfyUI only ``( )``. A
    backslash is escaped only where it would otherwise start an escape.
    """
    if target is Target.A1111:
        return escape_tag(text)
    if target is Target.COMFYUI:
        return _COMFY_NEEDS_ESCAPE.sub(lambda m: "\\" + m.group(), text)
    return text
