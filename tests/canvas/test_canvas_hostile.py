"""Hostile answers: every one is rejected (strict) or skipped with a precise report (lenient),
and nothing in them ever runs.

Each hostile statement would, if executed, create the canary file or set the
canary environment variable. While parsing, ``exec``, ``eval``, ``compile`` to
code objects, ``ast.literal_eval`` and ``__import__`` of anything new are
booby-trapped, so a parser that ran or compiled the answer would fail loudly.
"""

from __future__ import annotations

import ast
import builtins
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from presample.canvas import CanvasParseError, parse_answer
from presample.canvas.parse import MAX_ANSWER_CHARS, MAX_STATEMENTS

from .answers import GLOBAL, INIT, answer, fenced, region

CANARY_ENV = "PRESAMPLE_CANARY"


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "canary"
    monkeypatch.delenv(CANARY_ENV, raising=False)
    real_compile = builtins.compile
    real_import = builtins.__import__
    loaded = set(sys.modules)

    def trap(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parser executed or evaluated code")

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):  # type: ignore[no-untyped-def]
        assert flags & ast.PyCF_ONLY_AST, "the parser compiled the answer to a code object"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def no_new_imports(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name not in loaded and name.split(".")[0] not in loaded:
            raise AssertionError(f"the parser imported {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "exec", trap)
    monkeypatch.setattr(builtins, "eval", trap)
    monkeypatch.setattr(builtins, "compile", ast_only_compile)
    monkeypatch.setattr(ast, "literal_eval", trap)
    monkeypatch.setattr(builtins, "__import__", no_new_imports)
    yield path
    monkeypatch.undo()
    assert not path.exists(), "hostile code ran: the canary file exists"
    assert CANARY_ENV not in os.environ, "hostile code ran: the canary variable is set"


def _cases(path: str) -> list[tuple[str, str, str, int, int | None]]:
    """(id, answer, expected message, expected line, expected column)."""
    touch = f"open({path!r}, 'w').write('ran')"
    setenv = f"__import__('os').environ.__setitem__({CANARY_ENV!r}, 'ran')"
    # answer() puts extra statements at line 37; fenced(INIT, GLOBAL, x) puts x at line 11.
    return [
        ("import", answer("import os", f"os.system('touch {path}')"),
         "import statements are not allowed ('import')", 37, 1),
        ("from-import", answer("from os import system"), "import statements are not allowed",
         37, 1),
        ("dunder-import", answer(setenv), "access to '__import__' is not allowed", 37, 1),
        ("open-file", answer(touch), "attribute chains are not allowed", 37, 1),
        ("open-call", answer(f"open({path!r}, 'w')"), "calling open() is not allowed", 37, 1),
        ("exec", answer(f"exec({touch!r})"), "calling exec() is not allowed", 37, 1),
        ("eval", answer("eval('1')"), "calling eval() is not allowed", 37, 1),
        ("print", answer("print('hello')"), "calling print() is not allowed", 37, 1),
        ("getattr", answer("getattr(canvas, 'set_global_description')"),
         "calling getattr() is not allowed", 37, 1),
        ("class-escape", answer("canvas.__class__.__init__.__globals__['os'].system('id')"),
         "access to '__class__' is not allowed", 37, 8),
        ("dunder-attr", answer("canvas.__class__"), "access to '__class__' is not allowed", 37, 8),
        ("dunder-in-arg", fenced(INIT, GLOBAL.replace("'cat, dog, sofa'", "().__class__")),
         "access to '__class__' is not allowed", 8, 13),
        ("while-true", answer("while True:\n    pass"), "while loops are not allowed ('while')",
         37, 1),
        ("for-loop", answer("for i in range(10**9):\n    pass"), "for loops and comprehensions",
         37, 1),
        ("def", answer("def f():\n    return 1"), "function definitions are not allowed", 37, 1),
        ("decorator", answer("@canvas.add_local_description\ndef f():\n    pass"),
         "decorators are not allowed", 37, 1),
        ("class", answer("class Canvas:\n    pass"), "class definitions are not allowed", 37, 1),
        ("lambda", answer("canvas.add_local_description(description=lambda: 0)"),
         "lambdas are not allowed ('lambda')", 37, 42),
        ("walrus", answer("canvas.add_local_description(description=(x := 'a'))"),
         "assignment expressions (:=) are not allowed", 37, 45),
        ("f-string", fenced(INIT, GLOBAL.replace("'A cat and a dog.'", "f'{os.system(1)}'")),
         "f-strings are not allowed", 6, 17),
        ("huge-expression", fenced(INIT, GLOBAL.replace("'A cat and a dog.'", "'a'*10**9")),
         "operator '*' is not allowed", 6, 20),
        ("string-concat-op", fenced(INIT, GLOBAL.replace("'A cat and a dog.'", "'a' + 'b'")),
         "description must be a string literal, found an operator expression", 6, 17),
        ("huge-literal", fenced(INIT, GLOBAL.replace("'A cat and a dog.'", repr("a" * 5000))),
         "description is 5,000 characters; at most 4,000", 6, 17),
        ("nested-lists", fenced(INIT, GLOBAL.replace("'The dog watches.'", "[['x']]")),
         "brackets nested deeper than 2 levels", 7, 47),
        ("deep-brackets", answer("x = " + "(" * 150 + "1" + ")" * 150),
         "brackets nested deeper than 2 levels", 37, 7),
        ("operator-chain", answer("x = " + "1+" * 100_000 + "1"),
         "statement longer than 2000 tokens", 37, 2003),
        ("attribute-chain", answer("a" + ".a" * 100_000), "statement longer than 2000 tokens",
         37, 2001),
        ("unary-chain", fenced(INIT, GLOBAL, region(distance="-" * 50 + "5")),
         "distance_to_viewer must be a number literal, found an operator expression", 15, 24),
        ("subscript", fenced(INIT, GLOBAL.replace("'cat, dog, sofa'", "globals()['os']")),
         "tags must be a string literal, found a subscript", 8, 10),
        ("name", fenced(INIT, GLOBAL.replace("'cat, dog, sofa'", "os")),
         "tags must be a string literal, found the name 'os'", 8, 10),
        ("call-arg", fenced(INIT, GLOBAL.replace("'cat, dog, sofa'", "open('/etc/passwd').read()")),
         "tags must be a string literal, found a function call", 8, 10),
        ("star-args", answer("canvas.add_local_description(*args)"), "*-unpacking is not allowed",
         37, 30),
        ("kwargs", answer("canvas.add_local_description(**{'location': 'x'})"),
         "**-unpacking is not allowed", 37, 30),
        ("semicolon", answer(f"canvas = Canvas(); {touch}"), "';' is not allowed", 37, 18),
        ("rebind-method", answer("canvas.add_local_description = print"),
         "an assignment other than canvas = Canvas() is not allowed", 37, 1),
        ("rebind-canvas", answer("Canvas = type"), "an assignment other than canvas = Canvas()",
         37, 1),
        ("other-object", answer("os.system('id')"), "calling os.system() is not allowed", 37, 1),
        ("unknown-method", answer("canvas.process()"), "Canvas has no method 'process'", 37, 1),
        ("del", answer("del canvas"), "del statements are not allowed", 37, 1),
        ("raise", answer("raise SystemExit(1)"), "raise statements are not allowed", 37, 1),
        ("with", answer(f"with open({path!r}, 'w') as f:\n    pass"), "with statements", 37, 1),
        ("try", answer("try:\n    pass\nexcept Exception:\n    pass"), "try statements", 37, 1),
        ("global", answer("global canvas"), "global statements are not allowed", 37, 1),
        ("async", answer("async def f():\n    await g()"),
         "async functions and loops are not allowed", 37, 1),
        ("yield", answer("yield 1"), "yield expressions are not allowed", 37, 1),
        ("assert", answer("assert False"), "assert statements are not allowed", 37, 1),
        ("dict", answer("x = {'a': 1}"), "dicts and sets are not allowed", 37, 5),
        ("bytes", fenced(INIT, GLOBAL.replace("'cat, dog, sofa'", "b'cat'")),
         "bytes literals are not allowed", 8, 10),
        ("bool-distance", fenced(INIT, GLOBAL, region(distance="True")),
         "distance_to_viewer must be a number literal, found a bool literal", 15, 24),
        ("infinite-distance", fenced(INIT, GLOBAL, region(distance="1e999")),
         "distance_to_viewer must be a finite number", 15, 24),
        ("bare-string", answer("'just a string'"), "a bare expression (a str literal)", 37, 1),
        ("unterminated-string", answer("canvas.add_local_description(description='abc)",
                                              "canvas.process()"),
         "unterminated string", 37, 42),
        ("missing-comma", fenced(INIT, GLOBAL, region().replace("area='a small square area',",
                                                               "area='a small square area'")),
         "syntax error", 14, None),
    ]  # fmt: skip


CASE_IDS = [case[0] for case in _cases("/tmp/x")]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_hostile_statement_is_rejected_and_never_run(case_id: str, canary: Path) -> None:
    cases = {c[0]: c for c in _cases(str(canary))}
    _, text, message, line, column = cases[case_id]
    with pytest.raises(CanvasParseError) as info:
        parse_answer(text)
    problem = info.value.problems[0]
    assert message in problem.message
    assert problem.line == line
    if column is not None:
        assert problem.column == column
    # Lenient: the same problem is reported; the hostile statement is skipped, the
    # rest kept (or, when the global description itself is hostile, no canvas at all).
    try:
        parsed = parse_answer(text, lenient=True)
    except CanvasParseError as exc:
        assert any(message in p.message and p.line == line for p in exc.problems)
        assert "never calls canvas.set_global_description" in str(exc)
    else:
        assert any(message in p.message and p.line == line for p in parsed.problems)


def test_hostile_suite_is_large_enough() -> None:
    assert len(CASE_IDS) >= 30 and len(set(CASE_IDS)) == len(CASE_IDS)


def test_oversized_answer_is_refused_before_reading(canary: Path) -> None:
    # 10,000 regions: far beyond any real answer.
    text = fenced(INIT, GLOBAL, *[region(f"Cat {i}.") for i in range(10_000)])
    assert len(text) > MAX_ANSWER_CHARS
    for lenient in (False, True):
        with pytest.raises(CanvasParseError, match=r"the answer is [\d,]+ characters; at most"):
            parse_answer(text, lenient=lenient)


def test_too_many_regions(canary: Path) -> None:
    text = fenced(INIT, GLOBAL, *[region(f"Cat {i}.") for i in range(65)])
    with pytest.raises(CanvasParseError, match="more than 64 regions; the rest are ignored"):
        parse_answer(text)
    parsed = parse_answer(text, lenient=True)
    assert len(parsed.canvas.regions) == 64
    assert [p.line for p in parsed.problems] == [11 + 64 * 13]


def test_too_many_statements(canary: Path) -> None:
    text = fenced(INIT, GLOBAL, *["canvas"] * 10_000)
    with pytest.raises(CanvasParseError, match="a bare expression"):
        parse_answer(text)
    parsed = parse_answer(text, lenient=True)
    assert str(parsed.problems[-1]).endswith(f"more than {MAX_STATEMENTS} statements")
    assert len(parsed.problems) == MAX_STATEMENTS - 2 + 1


def test_brackets_nested_past_pythons_own_limit(canary: Path) -> None:
    # Python 3.12+ tokenizes in C and stops at 200 levels before we see a token;
    # either way the statement is refused with its line.
    text = answer("x = " + "(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(CanvasParseError) as info:
        parse_answer(text)
    problem = info.value.problems[0]
    assert problem.line == 37
    assert any(m in problem.message for m in ("brackets nested deeper", "too many nested"))
    parsed = parse_answer(text, lenient=True)
    assert len(parsed.canvas.regions) == 2


def test_nul_character(canary: Path) -> None:
    with pytest.raises(CanvasParseError, match="line 37: the code contains a NUL character"):
        parse_answer(answer("x = '\x00'"), lenient=True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "```python\n```",
        "```python\n",
        "```python\ncanvas = Canvas()\ncanvas.set_global_description(",
        "```python\n)))]]]\n```",
        "```python\n'''\n```",
        "```python\n\\\n```",
        "\x00\x01\x02",
        "```python\ncanvas = Canvas(\n```",
        "```python\n\tcanvas = Canvas()\n  canvas.x()\n```",
        "```python\ncanvas = Canvas()\n" + "canvas.set_global_description(" * 300 + "\n```",
        "```python\n" + "#" * 100_000 + "\n```",
        "```python\n" + "\n" * 100_000 + "```",
    ],
)
def test_malformed_answers_fail_cleanly(text: str, canary: Path) -> None:
    for lenient in (False, True):
        with pytest.raises(CanvasParseError) as info:
            parse_answer(text, lenient=lenient)
        assert str(info.value)  # always a message, never another exception type


def test_non_text_answer() -> None:
    with pytest.raises(CanvasParseError, match="must be text, got bytes"):
        parse_answer(b"canvas = Canvas()")  # type: ignore[arg-type]


def test_the_traps_work(canary: Path) -> None:
    # The fixture would catch a parser that ran, compiled or imported anything.
    with pytest.raises(AssertionError, match="executed"):
        exec("1")
    with pytest.raises(AssertionError, match="code object"):
        compile("1", "<x>", "exec")
    with pytest.raises(AssertionError, match="imported"):
        __import__("antigravity_not_loaded")
    assert ast.parse("x = 1")  # reading a syntax tree is allowed
