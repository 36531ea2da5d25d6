"""The A1111 script's model work over HTTP, for WebUIs that cannot import presample."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from presample.integrations import a1111
from presample.integrations.a1111_host import RemoteError, RemoteRunner, ScriptOptions
from presample.integrations.common import ModelCache

HOST_MODULE = Path(a1111.__file__).with_name("a1111_host.py")
OPTIONS = ScriptOptions(enabled=True, tag_length="very_short", nl_length="very_short",
                        sampling="custom", max_new_tokens=8)  # fmt: skip


def test_the_host_side_needs_nothing_but_the_standard_library() -> None:
    # What an A1111 1.10 WebUI imports of presample: loaded by path, alone.
    code = (
        "import importlib.util, sys\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('host', {str(HOST_MODULE)!r})\n"
        "module = importlib.util.module_from_spec(spec); sys.modules['host'] = module\n"
        "spec.loader.exec_module(module)\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "third = new - set(sys.stdlib_module_names)\n"
        "print(sorted(third - {'host', '__main__'}))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_server_writes_what_the_in_process_script_writes(
    client: TestClient, settings
) -> None:
    prompts = ["1girl, (smile:1.2), <lora:x:0.5>", "a cat on a sofa"]
    body = {"prompts": prompts, "seeds": [5, 6], "options": asdict(OPTIONS),
            "width": 832, "height": 1216}  # fmt: skip
    answer = client.post("/api/a1111/run", json=body)
    assert answer.status_code == 200, answer.text
    here = a1111.Presampling(ModelCache(), ())
    options = replace(OPTIONS, model=settings.models[0], dtype="float32")
    assert answer.json()["prompts"] == here.run(prompts, [5, 6], options, 832, 1216)
    assert len(answer.json()["model_hash"]) == 12
    choices = client.get("/api/a1111/choices").json()
    assert choices["options"] == ScriptOptions.names() and choices["models"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seeds": [1, 2]}, "seeds: one per prompt"),
        ({"options": {"tag_length": 5, "bogus": 1}}, "options"),
        ({"options": {"model": "nope"}}, "no model 'nope' on this server"),
        ({"options": {"template": "custom", "custom_template": "", "enabled": True}}, "template"),
    ],
)
def test_bad_calls_are_422_with_a_reason(client: TestClient, change: dict, message: str) -> None:
    body = {"prompts": ["1girl"], "seeds": [1], "options": asdict(OPTIONS), **change}
    answer = client.post("/api/a1111/run", json=body)
    assert answer.status_code == 422 and message in answer.text, answer.text


def test_the_remote_runner_drives_a_real_server(live_url: str) -> None:
    runner = RemoteRunner(live_url)
    first = runner.run(["1girl, scenery"], [3], OPTIONS, 1024, 1024)
    assert first == runner.run(["1girl, scenery"], [3], OPTIONS, 1024, 1024)
    assert first[0].startswith("1girl") and len(runner.last_model_hash) == 12
    with pytest.raises(RemoteError, match="refused: invalid settings: template: unknown"):
        runner.run(["1girl"], [3], replace(OPTIONS, template="nonsense"))


def test_no_server_and_no_environment_is_one_line() -> None:
    runner = RemoteRunner("http://127.0.0.1:9")  # the discard port: nothing answers
    with pytest.raises(RemoteError, match=r"no presample server answers at http://127\.0\.0\.1:9"):
        runner.run(["1girl"], [1], OPTIONS)


def test_the_host_sides_copies_of_presample_values_agree() -> None:
    # a1111_host cannot import presample: the values it repeats are pinned here.
    from presample.engine.sampling import TIPO_DEFAULT
    from presample.integrations import a1111_host, common
    from presample.request import MAX_SEED

    defaults = ScriptOptions()
    sampling = {k: getattr(defaults, k) for k in TIPO_DEFAULT.to_dict()}
    assert sampling == TIPO_DEFAULT.to_dict()
    assert a1111_host.MAX_SEED == MAX_SEED and a1111_host.MODEL_DEFAULT == common.MODEL_DEFAULT
