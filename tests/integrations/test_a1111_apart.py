"""The A1111 script on A1111 1.10's own packages, presample running apart.

A1111 1.10 pins gradio 3.41, fastapi 0.94 and pydantic 1, which presample
cannot share. ``scripts/test.sh`` makes a virtual environment with those pins
(``.venv-a1111``, or ``PRESAMPLE_A1111_VENV``); here the real script file runs
in it, with the real gradio 3.41 building its UI and stand-ins of the WebUI's
own ``modules`` (paths, scripts, shared, callbacks: the WebUI itself, with its
torch 2.1 and models, is not installed). presample is not importable there;
the script loads the standard-library half from this repository and sends the
prompts to a real ``presample serve`` (the tiny test model). Its prompts must
be the ones the in-process script writes.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from .conftest import A1111_FOLDER, ROOT

pytest.importorskip("fastapi")

from server.conftest import live_server

from presample.integrations import a1111
from presample.integrations.common import ModelCache
from presample.server import ServerSettings

VENV = Path(os.environ.get("PRESAMPLE_A1111_VENV", ROOT / ".venv-a1111"))
PYTHON = VENV / "bin" / "python"

DRIVER = r"""
import json, sys, types
import gradio as gr
import pydantic

modules = types.ModuleType("modules")
paths = types.ModuleType("modules.paths")
paths.models_path, paths.script_path = sys.argv[2], sys.argv[2]
scripts = types.ModuleType("modules.scripts")
scripts.AlwaysVisible = object()
scripts.Script = type("Script", (), {"__init__": lambda self: None})
callbacks = types.ModuleType("modules.script_callbacks")
callbacks.on_ui_settings = lambda fn: None
shared = types.ModuleType("modules.shared")
shared.opts = types.SimpleNamespace(presample_cache_size=1, presample_models_dir="")
shared.OptionInfo = lambda *a, **k: (a, k)
for name, module in [("paths", paths), ("scripts", scripts),
                     ("script_callbacks", callbacks), ("shared", shared)]:
    setattr(modules, name, module)
    sys.modules["modules." + name] = module
sys.modules["modules"] = modules

import importlib.util
spec = importlib.util.spec_from_file_location("presample_script", sys.argv[1])
script_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script_module)
assert script_module.REMOTE is not None, script_module.IMPORT_ERROR

script = script_module.PresampleScript()
with gr.Blocks():
    components = script.ui(False)
names = script_module.logic.ScriptOptions.names()
values = {c_name: c.value for c_name, c in zip(names, components)}
values.update(json.loads(sys.argv[3]))
p = types.SimpleNamespace(
    prompt="1girl, scenery", all_prompts=["1girl, (smile:1.2), scenery", "a cat on a sofa"],
    width=832, height=1216, extra_generation_params={}, enable_hr=False,
)
script.process(p, *[values[n] for n in names])
print(json.dumps({"pydantic": pydantic.VERSION, "gradio": gr.__version__,
                  "prompts": p.all_prompts, "params": p.extra_generation_params,
                  "labels": [c.label for c in components]}))
"""


@pytest.mark.skipif(not PYTHON.is_file(), reason=f"no A1111 1.10 environment at {VENV}")
def test_the_script_on_a1111_1_10_pins_runs_presample_apart(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = ServerSettings(models=(str(tiny_model_dir),), dtype="float32")
    with live_server(settings) as url:
        _check_apart(url, settings, tmp_path)


def _check_apart(live_url: str, settings: ServerSettings, tmp_path: Path) -> None:
    chosen = {"enabled": True, "seed": 40, "tag_length": "very_short",
              "nl_length": "very_short", "sampling": "custom", "max_new_tokens": 8}  # fmt: skip
    done = subprocess.run(
        [str(PYTHON), "-c", DRIVER, str(A1111_FOLDER / "scripts" / "presample_script.py"),
         str(tmp_path), json.dumps(chosen)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PRESAMPLE_SERVER": live_url, "PYTHONPATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["pydantic"].startswith("1.") and seen["gradio"] == "3.41.2"
    assert "Ban tags" in seen["labels"]

    options = replace(a1111.ScriptOptions(**chosen), model=settings.models[0], dtype="float32")
    here = a1111.Presampling(ModelCache(), ())
    prompts = ["1girl, (smile:1.2), scenery", "a cat on a sofa"]
    assert seen["prompts"] == here.run(prompts, [40, 41], options, 832, 1216)
    params = seen["params"]
    assert params[a1111.INFOTEXT_SEED] == [40, 41] and params[a1111.INFOTEXT_INPUT] == prompts
    assert len(params[a1111.INFOTEXT_HASH]) == 12
