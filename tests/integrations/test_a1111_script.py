"""The WebUI script file itself, run against small stand-ins of gradio and A1111's modules.

This checks the wiring the processing tests cannot see: the components ``ui()``
returns, the infotext fields that restore them, the button, the settings, and
that ``process`` / ``before_process`` hand the component values to the logic.
The stand-ins record what the script asks for; no gradio or WebUI is imported.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from .conftest import A1111_FOLDER

pytest.importorskip("torch")

from presample.integrations import a1111


class Component:
    """Any gradio component or layout block: keeps its arguments, works as a context."""

    made: ClassVar[list[Component]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.clicks: list[tuple[Any, list[Any], list[Any]]] = []
        Component.made.append(self)

    def __enter__(self) -> Component:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def click(self, fn: Any, inputs: list[Any], outputs: list[Any], **_: Any) -> None:
        self.clicks.append((fn, inputs, outputs))


def fake_modules(tmp_path: Path) -> dict[str, types.ModuleType]:
    gradio = types.ModuleType("gradio")
    for name in ("Accordion", "Row", "Column", "Checkbox", "Dropdown", "Number", "Button",
                 "Textbox", "Slider", "Markdown"):  # fmt: skip
        setattr(gradio, name, type(name, (Component,), {}))
    gradio.components = types.SimpleNamespace(Component=Component)  # type: ignore[attr-defined]

    modules = types.ModuleType("modules")
    paths = types.ModuleType("modules.paths")
    paths.models_path = str(tmp_path / "models")  # type: ignore[attr-defined]
    paths.script_path = str(tmp_path)  # type: ignore[attr-defined]
    scripts = types.ModuleType("modules.scripts")
    scripts.AlwaysVisible = object()  # type: ignore[attr-defined]
    scripts.Script = type("Script", (), {"__init__": lambda self: None})  # type: ignore[attr-defined]
    callbacks = types.ModuleType("modules.script_callbacks")
    callbacks.registered = []  # type: ignore[attr-defined]
    callbacks.on_ui_settings = callbacks.registered.append  # type: ignore[attr-defined]
    shared = types.ModuleType("modules.shared")
    shared.added = {}  # type: ignore[attr-defined]

    class Opts:
        presample_cache_size = 1
        presample_models_dir = ""

        def add_option(self, key: str, info: Any) -> None:
            shared.added[key] = info  # type: ignore[attr-defined]

    shared.opts = Opts()  # type: ignore[attr-defined]
    shared.OptionInfo = lambda *a, **k: (a, k)  # type: ignore[attr-defined]
    for name, module in (("paths", paths), ("scripts", scripts),
                         ("script_callbacks", callbacks), ("shared", shared)):  # fmt: skip
        setattr(modules, name, module)
    return {"gradio": gradio, "modules": modules, "modules.paths": paths,
            "modules.scripts": scripts, "modules.script_callbacks": callbacks,
            "modules.shared": shared}  # fmt: skip


@pytest.fixture()
def script_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    for name, module in fake_modules(tmp_path).items():
        monkeypatch.setitem(sys.modules, name, module)
    path = A1111_FOLDER / "scripts" / "presample_script.py"
    spec = importlib.util.spec_from_file_location("presample_script_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ui_returns_the_options_and_wires_paste_and_button(
    script_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = script_module.PresampleScript()
    host = {name: Component(elem_id=name) for name in
            ("txt2img_prompt", "txt2img_width", "txt2img_height", "img2img_prompt")}  # fmt: skip
    for elem_id, callback in script.on_after_component_elem_id:
        if elem_id in host:
            callback(types.SimpleNamespace(component=host[elem_id]))
    prompt_box = host["txt2img_prompt"]
    components = script.ui(False)
    names = a1111.ScriptOptions.names()
    assert len(components) == len(names)
    labels = [c.kwargs.get("label") for c in components]
    assert labels[names.index("seed")].startswith("Presample seed")
    assert labels[names.index("ban")] == "Ban tags"

    # Pasting an image's parameters sets every option and restores the typed prompt.
    settings = a1111.ScriptOptions(tag_length="short").settings_infotext()
    params = {
        "Prompt": "expanded ...",
        a1111.INFOTEXT_SEED: "77",
        a1111.INFOTEXT_INPUT: "1girl, (smile:1.2)",
        a1111.INFOTEXT_SETTINGS: settings,
    }
    restored = {id(c): fn(params) for c, fn in script.infotext_fields}
    assert restored[id(components[names.index("seed")])] == 77
    assert restored[id(components[names.index("enabled")])] is True
    assert restored[id(components[names.index("tag_length")])] == "short"
    assert restored[id(prompt_box)] == "1girl, (smile:1.2)"
    assert all(fn({"Prompt": "x"}) is None for _, fn in script.infotext_fields)

    (button,) = [c for c in Component.made if c.args[:1] == ("Generate prompt",)][-1:]
    ((fn, inputs, outputs),) = button.clicks
    size = [host["txt2img_width"], host["txt2img_height"]]
    assert inputs == [prompt_box, *size, *components] and outputs == [prompt_box]

    def fake_generate(prompt: str, options: Any, run: Any, w: Any = None, h: Any = None) -> str:
        return f"{prompt} | {options.seed} {w}x{h}"

    monkeypatch.setattr(script_module.logic, "generate_prompt", fake_generate)
    values = [getattr(a1111.ScriptOptions(seed=8), n) for n in names]
    assert fn("1girl", 832, 1216, *values) == "1girl | 8 832x1216"
    # img2img has no size components registered here: the button still works, unsized.
    img2img = script.ui(True)
    (button,) = [c for c in Component.made if c.args[:1] == ("Generate prompt",)][-1:]
    ((_, inputs, _),) = button.clicks
    assert inputs == [host["img2img_prompt"], *img2img]

    registered = sys.modules["modules.script_callbacks"].registered  # type: ignore[attr-defined]
    (register,) = registered
    register()
    assert set(sys.modules["modules.shared"].added) == {  # type: ignore[attr-defined]
        "presample_models_dir",
        "presample_cache_size",
    }


def test_process_hooks_hand_the_values_to_the_logic(
    script_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, Any, a1111.ScriptOptions]] = []
    hashes: list[str] = []

    def hook(when: str):  # type: ignore[no-untyped-def]
        def process(p: Any, o: a1111.ScriptOptions, run: Any, model_hash: Any) -> None:
            seen.append((when, p, o))
            hashes.append(model_hash())  # the runner's model, for the infotext

        return process

    monkeypatch.setattr(script_module.logic, "process_after", hook("after"))
    monkeypatch.setattr(script_module.logic, "process_before", hook("before"))
    script = script_module.PresampleScript()
    values = [getattr(a1111.ScriptOptions(enabled=True, seed=5), n)
              for n in a1111.ScriptOptions.names()]  # fmt: skip
    p = object()
    script.before_process(p, *values)
    script.process(p, *values)
    assert [(w, o.seed, o.enabled) for w, _, o in seen] == [("before", 5, True), ("after", 5, True)]
    assert hashes == ["", ""]  # no model ran yet
    models = script_module._models_dirs()
    assert models[0].name == "presample" and models[1].name == "kgen"
