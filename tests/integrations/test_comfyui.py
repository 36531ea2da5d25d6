"""The ComfyUI nodes, loaded and called the way ComfyUI loads and calls them."""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from .conftest import COMFY_FOLDER, SMALL, SMALL_CLI, load_custom_node

torch = pytest.importorskip("torch")

from presample.cli import main as cli_main  # noqa: E402
from presample.formatting import Target, escape  # noqa: E402
from presample.integrations import comfyui  # noqa: E402

WIDGET_TYPES = {"STRING", "INT", "FLOAT", "BOOLEAN"}
KNOWN_SOCKETS = {"CLIP", "IMAGE", "MASK", "CONDITIONING", "PRESAMPLE_RESULT", "PRESAMPLE_CANVAS"}


def check_input(name: str, spec: Any) -> None:
    assert isinstance(spec, tuple) and 1 <= len(spec) <= 2, name
    kind = spec[0]
    options = spec[1] if len(spec) == 2 else {}
    assert isinstance(options, dict), name
    if isinstance(kind, list):  # a combo: the default must be one of the choices
        assert kind and all(isinstance(c, str) for c in kind), name
        assert options.get("default", kind[0]) in kind, name
        return
    assert kind in WIDGET_TYPES | KNOWN_SOCKETS, (name, kind)
    if kind in ("INT", "FLOAT"):
        default = options["default"]
        assert options.get("min", default) <= default <= options.get("max", default), name
        assert isinstance(default, int if kind == "INT" else (int, float)), name
    elif kind == "STRING":
        assert isinstance(options.get("default", ""), str), name
    elif kind == "BOOLEAN":
        assert isinstance(options["default"], bool), name


def test_folder_loads_like_comfyui_and_declares_valid_nodes(comfy_models: Path) -> None:
    module = load_custom_node(COMFY_FOLDER, "presample_nodes")
    classes = module.NODE_CLASS_MAPPINGS
    assert set(classes) == set(module.NODE_DISPLAY_NAME_MAPPINGS)
    assert {"Presample", "PresampleTask", "PresampleFormat", "PresampleCanvasParse",
            "PresampleCanvasComposition", "PresampleCanvasMasks",
            "PresampleCanvasConditioning", "PresampleBagEncode",
            "PresampleRefine"} <= set(classes)  # fmt: skip
    for name, cls in classes.items():
        inputs = cls.INPUT_TYPES()
        assert set(inputs) <= {"required", "optional", "hidden"}, name
        for section in ("required", "optional"):
            for key, spec in inputs.get(section, {}).items():
                check_input(f"{name}.{key}", spec)
        assert isinstance(cls.RETURN_TYPES, tuple) and cls.RETURN_TYPES, name
        assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES), name
        assert all(t in WIDGET_TYPES | KNOWN_SOCKETS for t in cls.RETURN_TYPES), name
        assert callable(getattr(cls(), cls.FUNCTION)), name
        assert cls.CATEGORY.startswith("presample"), name
    # The tiny model in models/presample is offered by name.
    model = classes["Presample"].INPUT_TYPES()["required"]["model"]
    assert "tiny" in model[0] and model[1]["default"] == "default"


def test_model_folders_come_from_folder_paths_inside_comfyui(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "ComfyUI" / "models"
    (models / "kgen").mkdir(parents=True)
    gguf = models / "kgen" / "TIPO-200M-ft2_TIPO-200M-ft2-F16.gguf"
    gguf.write_bytes(b"GGUF")
    registered: dict[str, Any] = {}
    fake = types.ModuleType("folder_paths")
    fake.models_dir = str(models)  # type: ignore[attr-defined]
    fake.folder_names_and_paths = registered  # type: ignore[attr-defined]

    def add_model_folder_path(name: str, path: str, is_default: bool = False) -> None:
        registered.setdefault(name, ([], set()))[0].append(path)

    def get_folder_paths(name: str) -> list[str]:
        return list(registered[name][0])

    fake.add_model_folder_path = add_model_folder_path  # type: ignore[attr-defined]
    fake.get_folder_paths = get_folder_paths  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    comfyui.register_model_folder()
    assert registered["presample"][0] == [str(models / "presample")]
    assert comfyui.model_dirs() == [models / "presample", models / "kgen"]
    choices = comfyui.PresampleNode.INPUT_TYPES()["required"]["model"][0]
    assert gguf.name in choices
    # The reference's own name for that download finds the same file.
    from presample.integrations.common import model_spec

    spec = model_spec("KBlueLeaf/TIPO-200M-ft2 | TIPO-200M-ft2-F16.gguf", comfyui.model_dirs())
    assert spec == str(gguf)


def node_inputs(**changes: Any) -> dict[str, Any]:
    """Every widget at its declared default, as ComfyUI sends them, then ``changes``."""
    required = comfyui.PresampleNode.INPUT_TYPES()["required"]
    values = {}
    for key, spec in required.items():
        options = spec[1] if len(spec) > 1 else {}
        values[key] = options.get("default", spec[0][0] if isinstance(spec[0], list) else None)
    values.update(SMALL)
    values.update(sampling="custom", max_new_tokens=16, target="comfyui")
    values.update(changes)
    return values


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.rstrip("\n")


def test_node_prompt_equals_the_cli_prompt_for_the_same_seed(
    comfy_models: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = "1girl, (smile:1.2), scenery, <lora:detail:0.6>"
    node = comfyui.PresampleNode()
    out = node.execute(**node_inputs(tags=prompt, model="tiny", seed=11))
    expected = run_cli(capsys, prompt, "--model", str(tiny_model_dir), "--seed", "11",
                       "--target", "comfyui", "--aspect-ratio", "1.0", "--template",
                       "both_tag_first", *SMALL_CLI)  # fmt: skip
    assert out[0] == expected  # the node's default template is the reference's
    assert "(smile:1.2)" in out[0] and "<lora:detail:0.6>" in out[0]
    assert out[1].startswith("1girl") and "(smile:1.2)" in out[1]
    result = json.loads(out[4])
    assert result["seed"] == 11 and result["prompt"] == out[0]
    assert out[2].startswith(prompt)  # unformatted: as typed, then what the model added
    added = [escape(t, Target.COMFYUI) for t in result["added"]]
    assert out[2].split("\n")[0] == ", ".join([prompt, *added]), "the result's own additions"
    assert out[3] == prompt
    # The format node rewrites the same result in another template without the model.
    fmt = comfyui.PresampleFormatNode()
    again = fmt.execute(out[5], "both_tag_first", "", "comfyui")
    assert again[0] == out[0]
    tags_only = fmt.execute(out[5], "tags", "", "comfyui")[0]
    assert result["extended"] == "" or result["extended"] not in tags_only
    assert "(smile:1.2)" in tags_only


def test_model_loads_once_per_model_device_dtype(comfy_models: Path) -> None:
    comfyui.CACHE.clear()
    loads = comfyui.CACHE.loads
    node = comfyui.PresampleNode()
    first = node.execute(**node_inputs(tags="1girl", model="tiny", seed=3))
    second = node.execute(**node_inputs(tags="1girl", model="tiny", seed=3, width=832))
    assert comfyui.CACHE.loads == loads + 1 and len(comfyui.CACHE) == 1
    assert first[0] == node.execute(**node_inputs(tags="1girl", model="tiny", seed=3))[0]
    assert json.loads(second[4])["seed"] == 3
    node.execute(**node_inputs(tags="1girl", model="tiny", seed=3, dtype="float32"))
    assert comfyui.CACHE.loads == loads + 2 and len(comfyui.CACHE) == 1  # size 1: LRU evicts


def test_random_seeds_re_execute_and_fixed_seeds_do_not() -> None:
    fixed = node_inputs(tags="1girl", model="tiny", seed=5)
    a = comfyui.PresampleNode.IS_CHANGED(**fixed)
    assert a == comfyui.PresampleNode.IS_CHANGED(**dict(fixed))  # same inputs: cached
    assert a != comfyui.PresampleNode.IS_CHANGED(**{**fixed, "seed": 6})
    assert a != comfyui.PresampleNode.IS_CHANGED(**{**fixed, "tags": "1boy"})
    random_seed = comfyui.PresampleNode.IS_CHANGED(**{**fixed, "seed": -1})
    assert isinstance(random_seed, float) and math.isnan(random_seed)
    assert random_seed != comfyui.PresampleNode.IS_CHANGED(**{**fixed, "seed": -1})
    assert math.isnan(comfyui.PresampleTaskNode.IS_CHANGED(**{**fixed, "seed": -1}))


def test_random_seed_is_reported_and_reproduces(comfy_models: Path) -> None:
    node = comfyui.PresampleNode()
    out = node.execute(**node_inputs(tags="1girl, scenery", model="tiny", seed=-1))
    seed = json.loads(out[4])["seed"]
    again = node.execute(**node_inputs(tags="1girl, scenery", model="tiny", seed=seed))
    assert again[0] == out[0]


def test_single_task_node_runs_exactly_that_task(comfy_models: Path) -> None:
    node = comfyui.PresampleTaskNode()
    inputs = node_inputs(tags="1girl, scenery", model="tiny", seed=2)
    del inputs["template"], inputs["custom_template"]
    outcome, prompt, result_json = node.execute(**inputs, task="tag_to_long", expand=False)
    steps = json.loads(result_json)["steps"]
    assert [s["task"] for s in steps] == ["tag_to_long"]
    assert "<|tag_to_long|>" in steps[0]["model_input"]
    assert steps[0]["model_input"].rstrip().endswith("long:")  # generate mode: an open field
    assert prompt.startswith("1girl")
    assert (
        comfyui.PresampleFormatNode().execute(outcome, "tags", "", "comfyui")[0].startswith("1girl")
    )


def test_bad_settings_are_one_line_errors(comfy_models: Path) -> None:
    node = comfyui.PresampleNode()
    with pytest.raises(ValueError, match="category"):
        node.execute(**node_inputs(tags="1girl", model="tiny", ban_tags="category:nope"))
    with pytest.raises(ValueError, match="custom template is empty"):
        node.execute(**node_inputs(tags="1girl", model="tiny", template="custom"))


def test_folder_imports_in_a_fresh_process_without_loading_torch(tmp_path: Path) -> None:
    """A new interpreter, as a ComfyUI start: the mappings import, torch is not touched."""
    import os
    import subprocess

    code = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location(
    "presample_nodes", {str(COMFY_FOLDER / "__init__.py")!r},
    submodule_search_locations=[{str(COMFY_FOLDER)!r}])
module = importlib.util.module_from_spec(spec)
sys.modules["presample_nodes"] = module
spec.loader.exec_module(module)
inputs = module.NODE_CLASS_MAPPINGS["Presample"].INPUT_TYPES()
print(json.dumps({{"nodes": sorted(module.NODE_CLASS_MAPPINGS),
                  "torch": "torch" in sys.modules,
                  "models": inputs["required"]["model"][0][:1]}}))
"""
    env = {**os.environ, "PRESAMPLE_COMFYUI_MODELS_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "Presample" in report["nodes"] and len(report["nodes"]) == len(comfyui.NODES)
    assert report["torch"] is False and report["models"] == ["default"]


def refine_inputs(**changes: Any) -> dict[str, Any]:
    values = {"prompt": "1girl, (smile:1.2), scenery", "model": "tiny", "picks": "",
              "candidates": 2, "strategy": "step", "step_tokens": 4, "seed": 7, "ban_tags": "",
              "width": 1024, "height": 1024, "device": "auto", "dtype": "auto",
              "sfw": False}  # fmt: skip
    values.update(changes)
    return values


def test_refine_node_replays_the_picks_with_a_fixed_seed(comfy_models: Path) -> None:
    node = comfyui.PresampleRefineNode()
    # A random model's draws often fail the filters: find a seed that gives candidates.
    for seed in range(12):
        start, listing, state = node.execute(**refine_inputs(seed=seed))
        candidates = json.loads(state)["candidates"]
        if candidates:
            break
    else:
        pytest.fail("a dozen seeds gave no candidate")
    assert start == "1girl, (smile:1.2), scenery" and listing.startswith("1. + ")
    last = len(candidates)
    picked, _, picked_state = node.execute(**refine_inputs(seed=seed, picks=str(last)))
    assert picked == candidates[last - 1]["prompt"] and "(smile:1.2)" in picked
    assert json.loads(picked_state)["picks"] == [picked]
    again = node.execute(**refine_inputs(seed=seed, picks=str(last)))
    assert again[0] == picked  # replayed: the same picks give the same prompt
    with pytest.raises(ValueError, match="candidate"):
        node.execute(**refine_inputs(seed=seed, picks="0"))
    with pytest.raises(ValueError, match="candidate"):
        node.execute(**refine_inputs(seed=seed, picks="9"))
