"""Reading an Omost answer into a ``Canvas`` without running any of it.

Omost itself ``exec()``s the model's code block, so whatever Python the answer
holds runs. Here the block is only read: split into statements by the
``tokenize`` module, each statement checked token by token (operators,
f-strings, nesting, size) before ``ast.parse`` sees it, then its syntax tree
matched against the one shape Omost answers have::

    canvas = Canvas()
    canvas.set_global_description(description=..., ...)      # once
    canvas.add_local_description(location=..., ...)          # per region

with literal arguments only. Values are read straight from ``ast.Constant``
nodes: nothing is evaluated, compiled to code or imported.

The token pass comes first because CPython's own parser is not safe on
hostile input everywhere we support: on 3.10 a long operator chain such as
``1+1+...+1`` crashes ``ast.parse`` (segfault), and on later versions deep
trees raise ``RecursionError`` / ``MemoryError``. Capping tokens and brackets
per statement keeps every tree we build small.

Strict mode (the default) raises ``CanvasParseError`` listing every problem.
Lenient mode keeps what is valid (a missing fence, a truncated last statement,
a bad region) and reports each thing it dropped or guessed, with its line and
column in the answer.
"""

from __future__ import annotations

import ast
import io
import keyword
import math
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..errors import InputError
from ..request import describe_validation_error
from .model import (
    CHOICES,
    MAX_DETAILS,
    MAX_REGIONS,
    MAX_TEXT_CHARS,
    Canvas,
    GlobalDescription,
    Region,
    closest_choice,
)

MAX_ANSWER_CHARS = 512_000
"""A 4096-token answer is about 16 KB; anything far larger is not an Omost answer."""
MAX_STATEMENT_TOKENS = 2_000
"""A region call with 64 details is a few hundred tokens."""
MAX_BRACKET_DEPTH = 2
"""``canvas.f( [ ... ] )`` is as deep as an answer goes."""
MAX_STATEMENTS = 2 * MAX_REGIONS + 16

GLOBAL_METHOD = "set_global_description"
REGION_METHOD = "add_local_description"

# Omost's signatures, in positional order, with the literal kind of each argument.
SIGNATURES: dict[str, tuple[tuple[str, str], ...]] = {
    GLOBAL_METHOD: (
        ("description", "str"),
        ("detailed_descriptions", "list"),
        ("tags", "str"),
        ("HTML_web_color_name", "str"),
    ),
    REGION_METHOD: (
        ("location", "str"),
        ("offset", "str"),
        ("area", "str"),
        ("distance_to_viewer", "number"),
        ("description", "str"),
        ("detailed_descriptions", "list"),
        ("tags", "str"),
        ("atmosphere", "str"),
        ("style", "str"),
        ("quality_meta", "str"),
        ("HTML_web_color_name", "str"),
    ),
}
_LOOSE = {
    "location": "location",
    "offset": "offset",
    "area": "area",
    "HTML_web_color_name": "color",
}

# Operators an answer needs: calls, keywords, lists, the dot of canvas.method
# and a sign on a number. Everything else (``*``, ``**``, ``:=``, ``:``, ``{``,
# ``;``, ``@`` ...) can only be code we refuse to read.
_ALLOWED_OPS = frozenset({"(", ")", "[", "]", ",", "=", ".", "-", "+"})
_OPEN = frozenset({"(", "["})
_CLOSE = frozenset({")", "]"})
_KEYWORDS: dict[str, str] = {
    "import": "import statements",
    "from": "import statements",
    "def": "function definitions",
    "class": "class definitions",
    "lambda": "lambdas",
    "while": "while loops",
    "for": "for loops and comprehensions",
    "async": "async functions and loops",
    "await": "await expressions",
    "with": "with statements",
    "try": "try statements",
    "except": "try statements",
    "finally": "try statements",
    "raise": "raise statements",
    "if": "if statements and conditional expressions",
    "elif": "if statements",
    "else": "if statements and conditional expressions",
    "del": "del statements",
    "global": "global statements",
    "nonlocal": "nonlocal statements",
    "return": "return statements",
    "yield": "yield expressions",
    "assert": "assert statements",
    "pass": "pass statements",
    "break": "break statements",
    "continue": "continue statements",
    "as": "'as' clauses",
}
_OPERATOR_MESSAGES: dict[str, str] = {
    ":=": "assignment expressions (:=) are not allowed",
    ";": "';' is not allowed: one statement per line",
    "{": "dicts and sets are not allowed: only strings, numbers and lists of strings",
    "}": "dicts and sets are not allowed: only strings, numbers and lists of strings",
    ":": "':' is not allowed (slices, dicts, annotations and blocks are not literals)",
}
_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*$")
_PYTHON_LANGS = frozenset({"python", "python3", "py"})
_CANVAS_START = re.compile(r"^[ \t]*canvas[ \t]*=[ \t]*Canvas[ \t]*\(")
_STRING_PREFIX = re.compile(r"^([A-Za-z]*)['\"]")


@dataclass(frozen=True)
class Problem:
    """Something wrong with an answer, and where (1-based, in the whole answer)."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        if self.column is None:
            return f"line {self.line}: {self.message}"
        return f"line {self.line}, column {self.column}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}


class CanvasParseError(InputError):
    """The answer is not a canvas we accept; ``problems`` says every reason."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems) or (Problem("not a canvas"),)
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"{self.problems[0]}{suffix}")


@dataclass(frozen=True)
class ParsedAnswer:
    """A canvas read from an answer, with what had to be skipped or repaired."""

    canvas: Canvas
    problems: tuple[Problem, ...] = ()
    """Lenient mode: what was dropped or guessed. Always empty in strict mode."""
    repairs: tuple[Problem, ...] = ()
    """Loose values read as allowed ones (``left`` -> ``on the left``), as Omost does."""
    region_lines: tuple[int, ...] = ()
    """The answer line of each region's call, in canvas order."""
    code_line: int = 1
    """The answer line the code starts on."""


def parse_canvas(answer: str) -> Canvas:
    """The canvas of an answer, strictly: any problem raises ``CanvasParseError``."""
    return parse_answer(answer).canvas


def parse_answer(answer: str, *, lenient: bool = False) -> ParsedAnswer:
    """Read the first ```` ```python ```` block of an LLM answer as a canvas.

    Never executes anything. Strict mode raises ``CanvasParseError`` on the
    first sign of trouble (all problems are listed on the exception); lenient
    mode returns what is valid plus ``problems``, and raises only when no
    canvas can be had at all (no global description, answer too large).
    """
    if not isinstance(answer, str):
        raise CanvasParseError([Problem(f"the answer must be text, got {type(answer).__name__}")])
    if len(answer) > MAX_ANSWER_CHARS:
        raise CanvasParseError(
            [Problem(f"the answer is {len(answer):,} characters; at most {MAX_ANSWER_CHARS:,}")]
        )
    answer = answer.replace("\r\n", "\n").replace("\r", "\n")
    code, first_line, problems = _extract_code(answer, lenient)
    if "\x00" in code:
        line = code[: code.index("\x00")].count("\n") + first_line
        raise CanvasParseError([*problems, Problem("the code contains a NUL character", line)])
    indent = 0
    if lenient:
        code, indent = _dedent(code)
        if indent:
            problems.append(
                Problem(f"the code is indented by {indent}; read it dedented", first_line)
            )
    reader = _Reader(code, first_line, lenient, indent)
    reader.problems.extend(problems)
    reader.run()
    if reader.problems and not lenient:
        raise CanvasParseError(reader.problems)
    if reader.global_description is None:
        missing = Problem(f"the answer never calls canvas.{GLOBAL_METHOD}(...)", first_line)
        raise CanvasParseError([missing, *reader.problems])
    canvas = Canvas(global_description=reader.global_description, regions=reader.regions)
    return ParsedAnswer(
        canvas=canvas,
        problems=tuple(reader.problems),
        repairs=tuple(reader.repairs),
        region_lines=tuple(reader.region_lines),
        code_line=first_line,
    )


# --- finding the code ---------------------------------------------------------------------


def _extract_code(answer: str, lenient: bool) -> tuple[str, int, list[Problem]]:
    """The code to read, the answer line it starts on, and problems finding it."""
    lines = answer.split("\n")
    fences = [(i, m.group(1).lower()) for i, line in enumerate(lines) if (m := _FENCE.match(line))]
    opening = next((f for f in fences if f[1] in _PYTHON_LANGS), None)
    problems: list[Problem] = []
    if opening is None and lenient:
        # A bare ``` block that looks like a canvas is the next best thing.
        for i, lang in fences:
            if lang == "":
                body = _block_after(lines, i)
                if any(_CANVAS_START.match(line) for line in body[0]):
                    opening = (i, lang)
                    problems.append(Problem("the code block is not marked ```python", i + 1))
                    break
    if opening is None:
        if not lenient:
            raise CanvasParseError([Problem("the answer has no ```python code block")])
        # No fences at all: read the answer as code, from the canvas line when
        # there is one so that a sentence of prose before it costs nothing.
        start = next((i for i, line in enumerate(lines) if _CANVAS_START.match(line)), 0)
        problems.append(Problem("no ```python code block: reading the answer as code", start + 1))
        return "\n".join(lines[start:]), start + 1, problems
    body, closed = _block_after(lines, opening[0])
    if not closed:
        message = "the ```python block is never closed (the answer looks truncated)"
        if not lenient:
            raise CanvasParseError([Problem(message, opening[0] + 1)])
        problems.append(Problem(message, opening[0] + 1))
    closing = opening[0] + 1 + len(body)
    later = [i for i, lang in fences if i > closing and lang in _PYTHON_LANGS]
    if closed and later:
        # Which block is the canvas is a guess: the first, as Omost's own UI reads it.
        message = (
            f"the answer has {len(later) + 1} ```python blocks (also at line "
            f"{', '.join(str(i + 1) for i in later)}); only the first is read"
        )
        if not lenient:
            raise CanvasParseError([Problem(message, opening[0] + 1)])
        problems.append(Problem(message, opening[0] + 1))
    return "\n".join(body), opening[0] + 2, problems


def _dedent(code: str) -> tuple[str, int]:
    """Remove the indentation every non-blank line shares (a block pasted indented)."""
    lines = code.split("\n")
    widths = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
    indent = min(widths, default=0)
    if not indent:
        return code, 0
    return "\n".join(line[indent:] for line in lines), indent


def _block_after(lines: list[str], opening: int) -> tuple[list[str], bool]:
    for j in range(opening + 1, len(lines)):
        fence = _FENCE.match(lines[j])
        if fence and not fence.group(1):
            return lines[opening + 1 : j], True
    return lines[opening + 1 :], False


# --- statements ---------------------------------------------------------------------------


@dataclass
class _Statement:
    start: int  # 1-based line in the code
    end: int
    tokens: int = 0
    previous: str = ""  # the text of the previous token
    bad: Problem | None = None  # a token-level problem, positions relative to the code


def _statements(code: str) -> Iterator[_Statement | Problem]:
    """Split code into logical statements with ``tokenize``; vet every token.

    Yields statements, and a final ``Problem`` when the tokenizer cannot go on
    (an unclosed bracket or string at the end: a truncated answer).
    """
    readline = io.StringIO(code).readline
    current: _Statement | None = None
    depth = 0
    try:
        for tok in tokenize.generate_tokens(readline):
            kind = tok.type
            if kind in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
                continue
            if kind in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if current is not None:
                    current.end = tok.start[0] if kind == tokenize.NEWLINE else current.end
                    yield current
                current, depth = None, 0
                continue
            if current is None:
                current = _Statement(start=tok.start[0], end=tok.end[0])
            current.end = max(current.end, tok.end[0])
            current.tokens += 1
            if current.bad is not None:
                continue
            current.bad = _vet_token(tok, depth, current.tokens, current.previous)
            current.previous = tok.string
            if tok.string in _OPEN:
                depth += 1
            elif tok.string in _CLOSE:
                depth = max(0, depth - 1)
    except tokenize.TokenError as exc:
        last = len(code.rstrip().split("\n"))
        yield _token_error(exc, current.start if current is not None else None, last)
    except (SyntaxError, ValueError) as exc:  # 3.12+ tokenizer raises IndentationError etc.
        line = getattr(exc, "lineno", None) or (current.start if current else 1)
        yield Problem(f"cannot read the code: {getattr(exc, 'msg', exc)}", line)


def _token_error(exc: tokenize.TokenError, statement: int | None, last: int) -> Problem:
    """Why the tokenizer stopped, and where.

    ``statement`` is the line the unfinished statement started on, ``last`` the
    code's last non-blank line: a string left open there means the answer was
    cut off, not that the model wrote a bad string.
    """
    message = str(exc.args[0]) if exc.args else str(exc)
    where = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], tuple) else None
    line = int(where[0]) if where else (statement or 1)
    column = int(where[1]) if where and where[1] else None  # 1-based when given
    if "EOF in multi-line" in message or ("unterminated" in message and line >= last):
        # An unclosed bracket or triple-quoted string at the very end.
        return Problem(
            "the code ends inside this statement (the answer looks truncated)", statement or line
        )
    if "unterminated" in message:
        return Problem(message.split(" (detected")[0].replace(" literal", ""), line, column)
    return Problem(f"cannot read the code: {message}", line, column)


def _vet_token(tok: tokenize.TokenInfo, depth: int, count: int, previous: str) -> Problem | None:
    line, col = tok.start[0], tok.start[1] + 1
    if count > MAX_STATEMENT_TOKENS:
        return Problem(f"statement longer than {MAX_STATEMENT_TOKENS} tokens", line, col)
    kind, text = tok.type, tok.string
    if kind == tokenize.OP:
        if text not in _ALLOWED_OPS:
            if text in _OPERATOR_MESSAGES:
                return Problem(_OPERATOR_MESSAGES[text], line, col)
            if text in ("*", "**") and previous in ("(", ","):
                return Problem(f"{text}-unpacking is not allowed", line, col)
            if text == "@" and count == 1:
                return Problem("decorators are not allowed", line, col)
            return Problem(f"operator {text!r} is not allowed: only literal values", line, col)
        if text in _OPEN and depth >= MAX_BRACKET_DEPTH:
            return Problem(
                f"brackets nested deeper than {MAX_BRACKET_DEPTH} levels (nested lists?)",
                line,
                col,
            )
        return None
    if kind == tokenize.STRING:
        prefix = _STRING_PREFIX.match(text)
        letters = prefix.group(1).lower() if prefix else ""
        if "f" in letters:
            return Problem("f-strings are not allowed: only plain string literals", line, col)
        if "b" in letters:
            return Problem("bytes literals are not allowed: only plain string literals", line, col)
        return None
    if kind == tokenize.NAME and keyword.iskeyword(text) and text not in ("True", "False", "None"):
        what = _KEYWORDS.get(text)
        if what is None:  # and, or, not, in, is
            return Problem(f"operator {text!r} is not allowed: only literal values", line, col)
        return Problem(f"{what} are not allowed ({text!r})", line, col)
    if kind in (tokenize.NAME, tokenize.NUMBER):
        return None
    if kind == tokenize.ERRORTOKEN:
        if text.isspace():
            return None
        if text in "'\"":
            return Problem("unterminated string", line, col)
        return Problem(f"unexpected character {text!r}", line, col)
    # FSTRING_START and friends (3.12+), or anything new a later Python adds.
    name = tokenize.tok_name.get(kind, str(kind))
    if name.startswith("FSTRING"):
        return Problem("f-strings are not allowed: only plain string literals", line, col)
    return Problem(f"unexpected {name} token", line, col)


# --- reading statements -------------------------------------------------------------------


class _Bad(Exception):
    """One statement is unacceptable; carries where and why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class _Reader:
    code: str
    first_line: int  # answer line of code line 1
    lenient: bool
    indent: int = 0  # columns removed from every line (lenient dedent)
    problems: list[Problem] = field(default_factory=list)
    repairs: list[Problem] = field(default_factory=list)
    global_description: GlobalDescription | None = None
    global_line: int | None = None
    regions: list[Region] = field(default_factory=list)
    region_lines: list[int] = field(default_factory=list)
    initialised: bool = False

    def __post_init__(self) -> None:
        self.lines = self.code.split("\n")

    def run(self) -> None:
        for count, item in enumerate(_statements(self.code), start=1):
            if isinstance(item, Problem):
                self.problems.append(self._shift(item))
                break
            if count > MAX_STATEMENTS:
                self.problems.append(
                    self._shift(Problem(f"more than {MAX_STATEMENTS} statements", item.start))
                )
                break
            if item.bad is not None:
                self.problems.append(self._shift(item.bad))
            else:
                try:
                    self._statement(item)
                except _Bad as bad:
                    self.problems.append(self._shift(bad.problem))
            if self.problems and not self.lenient:
                return
        if not self.initialised:
            self.problems.append(
                Problem("the code never creates the canvas with canvas = Canvas()", self.first_line)
            )

    def _shift(self, problem: Problem) -> Problem:
        """From code coordinates to answer coordinates."""
        if problem.line is None:
            return problem
        column = problem.column + self.indent if problem.column is not None else None
        return Problem(problem.message, problem.line + self.first_line - 1, column)

    def _where(self, node: ast.AST) -> tuple[int, int]:
        """1-based (line, column) in the code; ast columns are UTF-8 byte offsets."""
        return self._at(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))

    def _at(self, line: int, offset: int) -> tuple[int, int]:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        column = len(text.encode("utf-8")[:offset].decode("utf-8", errors="replace")) + 1
        return line, column

    def _bad(self, node: ast.AST, message: str) -> _Bad:
        line, column = self._where(node)
        return _Bad(Problem(message, line, column))

    def _statement(self, stmt: _Statement) -> None:
        source = "\n".join(self.lines[stmt.start - 1 : stmt.end])
        try:
            tree = ast.parse(source, mode="exec")
        except SyntaxError as exc:
            line = (exc.lineno or 1) + stmt.start - 1
            raise _Bad(Problem(f"syntax error: {exc.msg}", line, exc.offset)) from None
        except (ValueError, RecursionError, MemoryError) as exc:  # belt and braces
            raise _Bad(
                Problem(f"cannot parse statement: {type(exc).__name__}", stmt.start)
            ) from None
        ast.increment_lineno(tree, stmt.start - 1)
        if len(tree.body) != 1:
            raise _Bad(Problem("one statement per line, please", stmt.start))
        node = tree.body[0]
        dunders: list[tuple[int, int, str]] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and sub.attr.startswith("__"):
                # Point at the attribute itself, not at the start of the chain.
                end_offset = (sub.end_col_offset or 0) - len(sub.attr.encode("utf-8"))
                dunders.append((sub.end_lineno or sub.lineno, end_offset, sub.attr))
            elif isinstance(sub, ast.Name) and sub.id.startswith("__"):
                dunders.append((sub.lineno, sub.col_offset, sub.id))
        if dunders:
            line, offset, name = min(dunders)  # the first in reading order
            raise _Bad(Problem(f"access to {name!r} is not allowed", *self._at(line, offset)))
        if _is_init(node):
            if self.initialised:
                raise self._bad(node, "canvas = Canvas() appears twice; the second is ignored")
            self.initialised = True
            return
        method, call = self._method_call(node)
        if not self.initialised:
            # Omost would fail with NameError here; reading on is harmless.
            self.problems.append(
                self._shift(
                    Problem(f"canvas.{method}(...) before canvas = Canvas()", *self._where(node))
                )
            )
            self.initialised = True
        values = self._arguments(method, call)
        line = self._where(node)[0] + self.first_line - 1
        if method == GLOBAL_METHOD:
            if self.global_description is not None:
                raise self._bad(
                    node,
                    f"{GLOBAL_METHOD} called again (line {self.global_line} already did); "
                    "the second call is ignored",
                )
            self.global_description = self._build(GlobalDescription, values, node)
            self.global_line = line
            return
        if self.global_description is None:
            # Omost builds each region's prefix from the global description
            # as it stands when the region is added, so order matters there.
            self.problems.append(
                self._shift(Problem(f"{REGION_METHOD} before {GLOBAL_METHOD}", *self._where(node)))
            )
        if len(self.regions) >= MAX_REGIONS:
            raise self._bad(node, f"more than {MAX_REGIONS} regions; the rest are ignored")
        self.regions.append(self._build(Region, values, node))
        self.region_lines.append(line)

    def _method_call(self, node: ast.stmt) -> tuple[str, ast.Call]:
        if not isinstance(node, ast.Expr):
            raise self._bad(node, f"{_describe_statement(node)} is not allowed")
        call = node.value
        if not isinstance(call, ast.Call):
            raise self._bad(call, f"a bare expression ({_describe(call)}) is not allowed")
        func = call.func
        if isinstance(func, ast.Name):
            raise self._bad(func, f"calling {func.id}() is not allowed: only canvas methods")
        if not isinstance(func, ast.Attribute):
            raise self._bad(func, f"calling {_describe(func)} is not allowed")
        if func.attr.startswith("__"):
            raise self._bad(func, f"access to {func.attr!r} is not allowed")
        if not isinstance(func.value, ast.Name):
            raise self._bad(func, "attribute chains are not allowed: only canvas.method(...)")
        if func.value.id != "canvas":
            raise self._bad(
                func, f"calling {func.value.id}.{func.attr}() is not allowed: only canvas methods"
            )
        if func.attr not in SIGNATURES:
            raise self._bad(
                func,
                f"Canvas has no method {func.attr!r}: only {GLOBAL_METHOD} and {REGION_METHOD}",
            )
        return func.attr, call

    def _arguments(self, method: str, call: ast.Call) -> dict[str, Any]:
        signature = SIGNATURES[method]
        kinds = dict(signature)
        given: dict[str, ast.expr] = {}
        if len(call.args) > len(signature):
            raise self._bad(
                call.args[len(signature)],
                f"{method} takes {len(signature)} arguments, got {len(call.args)} positional",
            )
        for (name, _), arg in zip(signature, call.args, strict=False):
            if isinstance(arg, ast.Starred):
                raise self._bad(arg, "*-unpacking is not allowed")
            given[name] = arg
        for kw in call.keywords:
            if kw.arg is None:
                raise self._bad(kw.value, "**-unpacking is not allowed")
            if kw.arg not in kinds:
                hint = _suggest(kw.arg, list(kinds))
                raise self._bad(kw.value, f"{method} has no argument {kw.arg!r}{hint}")
            if kw.arg in given:
                raise self._bad(kw.value, f"{method} got argument {kw.arg!r} twice")
            given[kw.arg] = kw.value
        # Every given argument is checked before complaining about missing ones:
        # what is wrong in the answer matters more than what is absent.
        values: dict[str, Any] = {}
        for name, node in given.items():
            value = self._literal(node, kinds[name], name)
            if name in _LOOSE:
                value = self._repair(node, name, value)
            values["color" if name == "HTML_web_color_name" else name] = value
        missing = [name for name, _ in signature if name not in given]
        if missing:
            names = ", ".join(repr(m) for m in missing)
            raise self._bad(call, f"{method} is missing argument{'s' * (len(missing) > 1)} {names}")
        return values

    def _literal(self, node: ast.expr, kind: str, name: str) -> Any:
        """The value of an already-checked literal node, read without evaluation."""
        if kind == "str":
            return self._string(node, name)
        if kind == "list":
            if not isinstance(node, ast.List):
                raise self._bad(node, f"{name} must be a list of strings, found {_describe(node)}")
            if len(node.elts) > MAX_DETAILS:
                raise self._bad(node, f"{name} has {len(node.elts)} items; at most {MAX_DETAILS}")
            return [self._string(elt, f"{name}[{i}]") for i, elt in enumerate(node.elts)]
        number = node
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            number = node.operand
            sign = -1 if isinstance(node.op, ast.USub) else 1
        if (
            isinstance(number, ast.Constant)
            and isinstance(number.value, (int, float))
            and not isinstance(number.value, bool)
        ):
            value = float(sign * number.value)
            if not math.isfinite(value):
                raise self._bad(node, f"{name} must be a finite number")
            if value <= 0:
                raise self._bad(node, f"{name} must be greater than 0, got {value:g}")
            return value
        raise self._bad(node, f"{name} must be a number literal, found {_describe(node)}")

    def _string(self, node: ast.expr, name: str) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if len(node.value) > MAX_TEXT_CHARS:
                raise self._bad(
                    node,
                    f"{name} is {len(node.value):,} characters; at most {MAX_TEXT_CHARS:,}",
                )
            return node.value
        raise self._bad(node, f"{name} must be a string literal, found {_describe(node)}")

    def _repair(self, node: ast.expr, name: str, value: str) -> str:
        field_name = _LOOSE[name]
        try:
            repaired = closest_choice(value, CHOICES[field_name], name)
        except ValueError as exc:
            raise self._bad(node, str(exc)) from None
        if repaired != value:
            line, column = self._where(node)
            self.repairs.append(
                self._shift(Problem(f"{name} {value!r} read as {repaired!r}", line, column))
            )
        return repaired

    def _build(self, model: type[Any], values: dict[str, Any], node: ast.AST) -> Any:
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise self._bad(node, describe_validation_error(exc)) from None


def _is_init(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "canvas"
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "Canvas"
        and not node.value.args
        and not node.value.keywords
    )


def _suggest(name: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_STATEMENT_NAMES: dict[type[ast.AST], str] = {
    ast.Import: "an import statement",
    ast.ImportFrom: "an import statement",
    ast.FunctionDef: "a function definition",
    ast.AsyncFunctionDef: "a function definition",
    ast.ClassDef: "a class definition",
    ast.While: "a while loop",
    ast.For: "a for loop",
    ast.AsyncFor: "a for loop",
    ast.With: "a with statement",
    ast.AsyncWith: "a with statement",
    ast.If: "an if statement",
    ast.Try: "a try statement",
    ast.Raise: "a raise statement",
    ast.Assert: "an assert statement",
    ast.Delete: "a del statement",
    ast.Global: "a global statement",
    ast.Nonlocal: "a nonlocal statement",
    ast.Return: "a return statement",
    ast.AugAssign: "an augmented assignment",
    ast.AnnAssign: "an annotated assignment",
    ast.Assign: "an assignment other than canvas = Canvas()",
    ast.Pass: "a pass statement",
    ast.Break: "a break statement",
    ast.Continue: "a continue statement",
    ast.Match: "a match statement",
}

_EXPRESSION_NAMES: dict[type[ast.AST], str] = {
    ast.Call: "a function call",
    ast.JoinedStr: "an f-string",
    ast.Lambda: "a lambda",
    ast.NamedExpr: "an assignment expression (:=)",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.BinOp: "an operator expression",
    ast.BoolOp: "a boolean expression",
    ast.Compare: "a comparison",
    ast.UnaryOp: "an operator expression",
    ast.IfExp: "a conditional expression",
    ast.Subscript: "a subscript",
    ast.Starred: "*-unpacking",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Await: "an await expression",
    ast.Yield: "a yield expression",
    ast.YieldFrom: "a yield expression",
}


def _describe_statement(node: ast.stmt) -> str:
    return _STATEMENT_NAMES.get(type(node), f"a {type(node).__name__} statement")


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Attribute):
        return f"attribute access (.{node.attr})"
    if isinstance(node, ast.Constant):
        kind = type(node.value).__name__
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} literal"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"a call of {node.func.id}()"
    return _EXPRESSION_NAMES.get(type(node), f"a {type(node).__name__} expression")
