"""Small Omost answers for the tests, built from parts so each test shows only what it changes."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "omost"
SEED_ANSWERS = ("answer_1_dragon.md", "answer_2_dinosaur.md")

INIT = "canvas = Canvas()"
GLOBAL = """canvas.set_global_description(
    description='A cat and a dog.',
    detailed_descriptions=['The cat sleeps.', 'The dog watches.'],
    tags='cat, dog, sofa',
    HTML_web_color_name='beige',
)"""


def region(
    description: str = "A cat.",
    location: str = "on the left",
    offset: str = "no offset",
    area: str = "a small square area",
    distance: str = "2.0",
    color: str = "orange",
) -> str:
    return f"""canvas.add_local_description(
    location={location!r},
    offset={offset!r},
    area={area!r},
    distance_to_viewer={distance},
    description={description!r},
    detailed_descriptions=['It is orange.', 'It is asleep.'],
    tags='cat, orange',
    atmosphere='Calm.',
    style='Photo.',
    quality_meta='Sharp.',
    HTML_web_color_name={color!r},
)"""


def fenced(*statements: str, prose: str = "Here is the canvas:\n\n") -> str:
    """An answer: a line of prose, then the statements in a ```python block."""
    return prose + "```python\n" + "\n".join(statements) + "\n```\n"


def answer(*extra: str) -> str:
    """A valid two-region answer with ``extra`` statements appended to the code."""
    return fenced(INIT, GLOBAL, region(), region("A dog.", "on the right", color="brown"), *extra)


def seed_answer(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")
