"""presample for A1111 / Forge: an always-visible script with its own settings section.

The UI is built here; what a prompt becomes is decided in
``presample.integrations.a1111_host`` (tested there without a WebUI).

Two ways to run. Where the WebUI can import presample (Forge, recent A1111
with a new enough stack) the model runs in the WebUI's process. Where it
cannot (A1111 1.10 pins pydantic 1 and torch 2.1), the WebUI imports only
``a1111_host`` (standard library), from the repository this folder is linked
from, and the model runs in a ``presample serve`` of presample's own
environment (made by install.py), reached over loopback; the UI is the same.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
from modules import paths, script_callbacks, scripts, shared

HERE = Path(__file__).resolve().parent
REMOTE: Any = None
"""The separate-process runner (``a1111_host.RemoteRunner``), when presample runs apart."""


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _apart(reason: str) -> tuple[Any, Any, dict[str, list[str]]]:
    """The standard-library half of presample and a runner on presample's own server."""
    installer = _load("presample_a1111_install", HERE.parent / "install.py")
    source = installer.source_folder()
    if source is None:
        raise ImportError(f"{reason}; and no presample repository is linked or set "
                          "(PRESAMPLE_SOURCE)")  # fmt: skip
    host = _load("presample_a1111_host",
                 source / "src" / "presample" / "integrations" / "a1111_host.py")  # fmt: skip
    python = installer.environment_python(installer.environment(source))
    runner = host.RemoteRunner(
        os.environ.get("PRESAMPLE_SERVER", host.DEFAULT_SERVER),
        python=str(python) if python.is_file() else None,
        log=HERE.parent / "presample-server.log",
    )
    return host, runner, runner.choices()


try:
    from presample.integrations import a1111 as logic
    from presample.integrations.common import (
        DEVICES,
        DTYPES,
        LENGTHS,
        SAMPLING_MODES,
        TEMPLATE_CHOICES,
        ModelCache,
        model_choices,
    )
except ImportError as exc:  # this WebUI's packages are not presample's: run it apart
    try:
        logic, REMOTE, CHOICES = _apart(str(exc))
    except (ImportError, OSError, RuntimeError) as why:  # one line; install.py said more
        logic = None
        IMPORT_ERROR = str(why)
    else:
        IMPORT_ERROR = ""
        DEVICES, DTYPES = CHOICES["devices"], CHOICES["dtypes"]
        LENGTHS, SAMPLING_MODES = CHOICES["lengths"], CHOICES["sampling_modes"]
        TEMPLATE_CHOICES = CHOICES["templates"]
else:
    IMPORT_ERROR = ""

SECTION = ("presample", "presample")
CACHE = ModelCache(max_models=1) if logic is not None and REMOTE is None else None


def _models_dirs() -> list[Path]:
    extensions_dir = getattr(paths, "extensions_dir", None) or os.path.join(
        paths.script_path, "extensions"
    )
    dirs = logic.model_dirs(paths.models_path, extensions_dir)
    extra = getattr(shared.opts, "presample_models_dir", "") or ""
    dirs += [Path(d) for d in extra.split(os.pathsep) if d.strip()]
    return dirs


def _runner() -> Any:
    if REMOTE is not None:
        return REMOTE
    CACHE.resize(int(getattr(shared.opts, "presample_cache_size", 1) or 1))
    return logic.Presampling(CACHE, _models_dirs())


def _model_choices() -> list[str]:
    if REMOTE is not None:
        return list(CHOICES["models"])  # the server's models
    return model_choices(_models_dirs())


class PresampleScript(scripts.Script):
    def __init__(self) -> None:
        super().__init__()
        # The WebUI's own components, by (is_img2img, what), as they are created.
        self.host: dict[tuple[bool, str], gr.components.Component] = {}
        self.on_after_component_elem_id = [
            (f"{tab}_{what}", lambda c, key=(tab == "img2img", what): self.host.__setitem__(
                key, c.component))
            for tab in ("txt2img", "img2img") for what in ("prompt", "width", "height")
        ]  # fmt: skip

    def title(self) -> str:
        return "presample"

    def show(self, is_img2img: bool) -> object:
        return scripts.AlwaysVisible

    def ui(self, is_img2img: bool) -> list[gr.components.Component]:
        tab = "img2img" if is_img2img else "txt2img"
        with gr.Accordion("presample", open=False, elem_id=f"{tab}_presample"):
            if logic is None:
                gr.Markdown(f"presample is not available: {IMPORT_ERROR} (see the console)")
                return []
            o = logic.ScriptOptions()
            with gr.Row():
                enabled = gr.Checkbox(label="Enable", value=o.enabled)
                timing = gr.Dropdown(label="When", choices=list(logic.TIMINGS), value=o.timing,
                                     info=" / ".join(f"{k}: {v}" for k, v in
                                                     logic.TIMINGS.items()))  # fmt: skip
                seed = gr.Number(label="Presample seed (-1: random)", value=o.seed, precision=0)
                generate = gr.Button("Generate prompt")
            with gr.Row():
                model = gr.Dropdown(label="Model", choices=_model_choices(),
                                    value=o.model, allow_custom_value=True)  # fmt: skip
                tag_length = gr.Dropdown(label="Tag length", choices=LENGTHS, value=o.tag_length)
                nl_length = gr.Dropdown(label="NL length", choices=LENGTHS, value=o.nl_length)
                template = gr.Dropdown(label="Template", choices=TEMPLATE_CHOICES,
                                       value=o.template)  # fmt: skip
            custom_template = gr.Textbox(label="Custom template (template: custom)", lines=2,
                                         placeholder="<|general|>, <|extended|>.")  # fmt: skip
            with gr.Row():
                ban = gr.Textbox(label="Ban tags",
                                 placeholder="red hair, official.*, category:artist, group:hair")
                ignored = gr.Textbox(label="Ignored tags (kept away from the model)")
            nl_prompt = gr.Textbox(label="Natural-language prompt (optional)", lines=2)
            with gr.Row():
                sampling = gr.Dropdown(label="Sampling", choices=SAMPLING_MODES, value=o.sampling)
                temperature = gr.Slider(0.0, 2.0, value=o.temperature, step=0.01,
                                        label="Temperature")  # fmt: skip
                top_p = gr.Slider(0.01, 1.0, value=o.top_p, step=0.01, label="Top-p")
                top_k = gr.Slider(0, 200, value=o.top_k, step=1, label="Top-k")
                min_p = gr.Slider(0.0, 0.99, value=o.min_p, step=0.01, label="Min-p")
                repetition_penalty = gr.Slider(0.5, 3.0, value=o.repetition_penalty, step=0.01,
                                               label="Repetition penalty")  # fmt: skip
                max_new_tokens = gr.Slider(16, 1024, value=o.max_new_tokens, step=1,
                                           label="Max new tokens")  # fmt: skip
            with gr.Row():
                # Apart, the server's own settings decide (presample serve --device ...).
                here = REMOTE is None
                device = gr.Dropdown(label="Device", choices=list(DEVICES), value=o.device,
                                     interactive=here)  # fmt: skip
                dtype = gr.Dropdown(label="Precision", choices=list(DTYPES), value=o.dtype,
                                    interactive=here)  # fmt: skip
                no_formatting = gr.Checkbox(label="No formatting", value=o.no_formatting)

        components = [enabled, timing, seed, model, tag_length, nl_length, template,
                      custom_template, ban, ignored, nl_prompt, sampling, temperature, top_p,
                      top_k, min_p, repetition_penalty, max_new_tokens, device, dtype,
                      no_formatting]  # fmt: skip
        names = logic.ScriptOptions.names()
        assert len(components) == len(names)

        prompt_box = self.host.get((is_img2img, "prompt"))
        size = [self.host.get((is_img2img, w)) for w in ("width", "height")]
        if prompt_box is not None and None not in size:
            # The image's aspect ratio goes to the model, as when generating.
            def generate_sized(prompt: str, width: int, height: int, *values: object) -> str:
                options = logic.ScriptOptions.from_args(values)
                return logic.generate_prompt(prompt, options, _runner().run, width, height)

            generate.click(generate_sized, inputs=[prompt_box, *size, *components],
                           outputs=[prompt_box])  # fmt: skip
        elif prompt_box is not None:
            def generate_prompt(prompt: str, *values: object) -> str:
                options = logic.ScriptOptions.from_args(values)
                return logic.generate_prompt(prompt, options, _runner().run)

            generate.click(generate_prompt, inputs=[prompt_box, *components],
                           outputs=[prompt_box])  # fmt: skip

        self.infotext_fields = [
            (component, lambda d, name=name: logic.ScriptOptions.from_infotext(d).get(name))
            for component, name in zip(components, names, strict=True)
        ]
        if prompt_box is not None:
            self.infotext_fields.append((prompt_box, logic.pasted_prompt))
        self.paste_field_names = [logic.INFOTEXT_SEED, logic.INFOTEXT_INPUT,
                                  logic.INFOTEXT_SETTINGS]  # fmt: skip
        return components

    def before_process(self, p, *args) -> None:  # type: ignore[no-untyped-def]
        if logic is not None and args:
            runner = _runner()
            logic.process_before(p, logic.ScriptOptions.from_args(args), runner.run,
                                 lambda: runner.last_model_hash)  # fmt: skip

    def process(self, p, *args) -> None:  # type: ignore[no-untyped-def]
        if logic is not None and args:
            runner = _runner()
            logic.process_after(p, logic.ScriptOptions.from_args(args), runner.run,
                                lambda: runner.last_model_hash)  # fmt: skip


def on_ui_settings() -> None:
    folders = shared.OptionInfo(
        "", "Extra model folders (separated by the path separator)", section=SECTION
    )
    shared.opts.add_option("presample_models_dir", folders)
    size = shared.OptionInfo(
        1, "Models kept loaded", gr.Slider, {"minimum": 1, "maximum": 4, "step": 1},
        section=SECTION,
    )  # fmt: skip
    shared.opts.add_option("presample_cache_size", size)


script_callbacks.on_ui_settings(on_ui_settings)
