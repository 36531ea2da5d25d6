"""Writing a canvas back as the Omost code a model would have answered with.

Used to put a canvas into a conversation's history (Omost edits by answering
the whole canvas again) and to check that reading and writing agree. Strings
are written with ``repr``, so any text round-trips as a plain literal.
"""

from __future__ import annotations

from .model import Canvas, GlobalDescription, Region

INDENT = "    "


def _call(method: str, fields: list[tuple[str, object]]) -> list[str]:
    lines = [f"canvas.{method}("]
    for name, value in fields:
        if isinstance(value, list):
            lines.append(f"{INDENT}{name}=[")
            lines.extend(f"{INDENT * 2}{item!r}," for item in value)
            lines.append(f"{INDENT}],")
        else:
            lines.append(f"{INDENT}{name}={value!r},")
    lines.append(")")
    return lines


def _global_fields(g: GlobalDescription) -> list[tuple[str, object]]:
    return [
        ("description", g.description),
        ("detailed_descriptions", list(g.detailed_descriptions)),
        ("tags", g.tags),
        ("HTML_web_color_name", g.color),
    ]


def _region_fields(r: Region) -> list[tuple[str, object]]:
    return [
        ("location", r.location.value),
        ("offset", r.offset.value),
        ("area", r.area.value),
        ("distance_to_viewer", float(r.distance_to_viewer)),
        ("description", r.description),
        ("detailed_descriptions", list(r.detailed_descriptions)),
        ("tags", r.tags),
        ("atmosphere", r.atmosphere),
        ("style", r.style),
        ("quality_meta", r.quality_meta),
        ("HTML_web_color_name", r.color),
    ]


def canvas_code(canvas: Canvas) -> str:
    """The canvas as Omost code (no fences), keyword arguments only."""
    lines = ["# Initialize the canvas", "canvas = Canvas()", ""]
    lines.append("# Set a global description for the canvas")
    lines += _call("set_global_description", _global_fields(canvas.global_description))
    for region in canvas.regions:
        # One line whatever the text holds: a newline here would turn the rest into code.
        label = "".join(ch for ch in " ".join(region.description.split()) if ch.isprintable())[:60]
        lines += ["", f"# Add {label}".rstrip()]
        lines += _call("add_local_description", _region_fields(region))
    return "\n".join(lines) + "\n"


def canvas_answer(canvas: Canvas) -> str:
    """The canvas as a complete answer: the code inside a ```` ```python ```` fence."""
    return f"```python\n{canvas_code(canvas)}```\n"
