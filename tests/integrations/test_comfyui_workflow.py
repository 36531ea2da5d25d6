"""The example workflow is valid ComfyUI graph JSON that matches the nodes' inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import COMFY_FOLDER, SMALL

pytest.importorskip("torch")

from presample.integrations import comfyui

WORKFLOW = COMFY_FOLDER / "workflows" / "presample_basic.json"
SOCKET_TYPES = {"CLIP", "IMAGE", "MASK", "CONDITIONING", "PRESAMPLE_RESULT", "PRESAMPLE_CANVAS"}
SEED_CONTROLS = {"fixed", "increment", "decrement", "randomize"}


def widget_names(cls: type) -> list[str]:
    """Widget order as the front end lays them out: required then optional; a seed
    with ``control_after_generate`` is followed by its control widget."""
    names = []
    inputs = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in inputs.get(section, {}).items():
            if not isinstance(spec[0], list) and spec[0] in SOCKET_TYPES:
                continue
            names.append(name)
            if len(spec) > 1 and spec[1].get("control_after_generate"):
                names.append("control_after_generate")
    return names


def valid_value(spec: tuple[Any, ...], value: Any) -> bool:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list):
        return value in kind
    if kind == "INT":
        return isinstance(value, int) and options.get("min", value) <= value <= options.get(
            "max", value
        )
    if kind == "FLOAT":
        return isinstance(value, (int, float)) and options.get("min", value) <= value
    if kind == "STRING":
        return isinstance(value, str)
    if kind == "BOOLEAN":
        return isinstance(value, bool)
    return False


@pytest.fixture(scope="module")
def graph() -> dict[str, Any]:
    return json.loads(WORKFLOW.read_text(encoding="utf-8"))


def test_graph_structure_and_links_are_consistent(graph: dict[str, Any]) -> None:
    assert {"last_node_id", "last_link_id", "nodes", "links", "version"} <= set(graph)
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert len(nodes) == len(graph["nodes"]) and graph["last_node_id"] >= max(nodes)
    link_ids = [link[0] for link in graph["links"]]
    assert len(set(link_ids)) == len(link_ids) and graph["last_link_id"] >= max(link_ids)
    for link_id, src, src_slot, dst, dst_slot, kind in graph["links"]:
        output = nodes[src]["outputs"][src_slot]
        target = nodes[dst]["inputs"][dst_slot]
        assert link_id in output["links"] and output["type"] == kind
        assert target["link"] == link_id and target["type"] == kind
    for node in nodes.values():
        for socket in node.get("inputs", []):
            assert socket["link"] is None or socket["link"] in link_ids
        for socket in node.get("outputs", []):
            assert all(i in link_ids for i in socket.get("links") or [])
    # The expanded prompt feeds the positive text encoder.
    (first,) = [link for link in graph["links"] if link[1] == 1]
    assert nodes[first[3]]["type"] == "CLIPTextEncode" and first[5] == "STRING"


def test_our_nodes_widgets_match_their_input_types(graph: dict[str, Any]) -> None:
    ours = [n for n in graph["nodes"] if n["type"] in comfyui.NODE_CLASS_MAPPINGS]
    assert ours
    for node in ours:
        cls = comfyui.NODE_CLASS_MAPPINGS[node["type"]]
        names = widget_names(cls)
        values = node["widgets_values"]
        assert len(values) == len(names), node["type"]
        inputs = {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}
        for name, value in zip(names, values, strict=True):
            if name == "control_after_generate":
                assert value in SEED_CONTROLS
            else:
                assert valid_value(inputs[name], value), (name, value)
        outputs = [(o["name"], o["type"]) for o in node["outputs"]]
        assert outputs == list(zip(cls.RETURN_NAMES, cls.RETURN_TYPES, strict=True))


def test_the_workflow_node_runs_with_its_saved_values(
    graph: dict[str, Any], comfy_models: Path
) -> None:
    node = next(n for n in graph["nodes"] if n["type"] == "Presample")
    names = widget_names(comfyui.PresampleNode)
    kwargs = {
        k: v for k, v in zip(names, node["widgets_values"], strict=True)
        if k != "control_after_generate"
    }  # fmt: skip
    kwargs.update(SMALL, model="tiny", sampling="custom", max_new_tokens=16)
    prompt, *_ = comfyui.PresampleNode().execute(**kwargs)
    assert prompt.startswith("1girl") and "(smile:1.2)" in prompt
    assert "<lora:detail:0.6>" in prompt
