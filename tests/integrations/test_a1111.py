"""The A1111 / Forge script's processing, run against a stand-in of A1111's processing object.

No WebUI and no gradio here: ``Processing`` carries the documented attributes of
``modules.processing.StableDiffusionProcessing`` the script reads and writes, and
``infotext`` turns its ``extra_generation_params`` into one image's parameters the
way ``create_infotext`` does (a list value gives each image its own entry).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from .conftest import A1111_FOLDER

pytest.importorskip("torch")

from presample.integrations import a1111
from presample.integrations.common import ModelCache

PROMPT = (
    "1girl, (smile:1.2), [forest:beach:0.4], sks style, scenery BREAK night sky, stars "
    "<lora:detail:0.6>"
)


@dataclass
class Processing:
    """A1111's StableDiffusionProcessing, reduced to its documented prompt/seed attributes."""

    prompt: str
    negative_prompt: str = ""
    seed: int = 1000
    subseed: int = -1
    batch_size: int = 1
    n_iter: int = 1
    width: int = 832
    height: int = 1216
    enable_hr: bool = False
    hr_prompt: str = ""
    extra_generation_params: dict[str, Any] = field(default_factory=dict)
    all_prompts: list[str] = field(default_factory=list)
    all_seeds: list[int] = field(default_factory=list)
    all_hr_prompts: list[str] = field(default_factory=list)

    def setup_prompts(self) -> None:
        count = self.batch_size * self.n_iter
        self.all_prompts = [self.prompt] * count
        self.all_seeds = [self.seed + i for i in range(count)]
        self.all_hr_prompts = [self.hr_prompt or self.prompt] * count


def infotext(p: Processing, index: int) -> dict[str, str]:
    """Image ``index``'s parameters as the WebUI writes them and reads them back."""
    params = {"Prompt": p.all_prompts[index], "Seed": str(p.all_seeds[index])}
    for key, value in p.extra_generation_params.items():
        params[key] = str(value[index] if isinstance(value, list) else value)
    return params


class Spy:
    """Wraps the model backend and keeps every text the model was given."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.inputs: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate(self, jobs, progress=None):  # type: ignore[no-untyped-def]
        self.inputs += [job.prompt for job in jobs]
        return self.backend.generate(jobs, progress)


@pytest.fixture(scope="module")
def cache() -> ModelCache:
    return ModelCache(max_models=1)


@pytest.fixture()
def options(tiny_model_dir: Path) -> a1111.ScriptOptions:
    return a1111.ScriptOptions(
        enabled=True, model=str(tiny_model_dir), tag_length="very_short",
        nl_length="very_short", ban="red hair, category:artist", ignored="sks style",
        sampling="custom", max_new_tokens=8,
    )  # fmt: skip


@pytest.fixture()
def spy(cache: ModelCache, options: a1111.ScriptOptions) -> Spy:
    presampler = cache.get(options.model)
    if not isinstance(presampler.backend, Spy):
        presampler.backend = Spy(presampler.backend)
    presampler.backend.inputs.clear()
    return presampler.backend


def run(cache: ModelCache):  # type: ignore[no-untyped-def]
    return a1111.Presampling(cache).run


def test_every_image_gets_its_own_seed_and_reproduces_from_its_infotext(
    cache: ModelCache, options: a1111.ScriptOptions, spy: Spy
) -> None:
    p = Processing(PROMPT, batch_size=2, n_iter=2)
    p.setup_prompts()
    # What a wildcard extension leaves: a different prompt per image.
    p.all_prompts = [PROMPT.replace("scenery", f"scenery, {c} theme")
                     for c in ("blue", "green", "gold", "pink")]  # fmt: skip
    originals = list(p.all_prompts)
    a1111.process_after(p, options, run(cache))

    seeds = p.extra_generation_params[a1111.INFOTEXT_SEED]
    assert len(seeds) == 4 and seeds == list(range(seeds[0], seeds[0] + 4))
    assert p.extra_generation_params[a1111.INFOTEXT_INPUT] == originals
    assert p.all_prompts != originals and len(set(p.all_prompts)) == 4
    settings = p.extra_generation_params[a1111.INFOTEXT_SETTINGS]
    assert not set(settings) & set(',:"\n')  # nothing A1111's infotext parser splits on

    # Send image 2 to txt2img: the UI takes the pasted values; generate one image.
    params = infotext(p, 2)
    pasted = a1111.ScriptOptions.from_infotext(params)
    assert pasted["seed"] == seeds[2] and pasted["ban"] == options.ban
    restored = replace(a1111.ScriptOptions(), **pasted)
    assert replace(restored, seed=options.seed) == options
    prompt = a1111.pasted_prompt(params)
    assert prompt == originals[2]
    again = Processing(prompt)
    again.setup_prompts()
    a1111.process_after(again, restored, run(cache))
    assert again.all_prompts == [p.all_prompts[2]]
    assert again.extra_generation_params[a1111.INFOTEXT_SEED] == seeds[2]


def test_weights_break_lora_and_ignored_tags_never_reach_the_model(
    cache: ModelCache, options: a1111.ScriptOptions, spy: Spy
) -> None:
    p = Processing(PROMPT)
    p.setup_prompts()
    a1111.process_after(p, replace(options, seed=5), run(cache))
    (prompt,) = p.all_prompts
    assert "(smile:1.2)" in prompt and "<lora:detail:0.6>" in prompt
    assert "\nBREAK\n" in prompt and "sks style" in prompt
    assert "[forest:beach:0.4]" in prompt  # prompt editing written back as typed
    assert prompt.index("BREAK") < prompt.index("night sky")
    assert spy.inputs
    for text in spy.inputs:
        for secret in ("BREAK", "lora", "detail:0.6", "(smile", "1.2", "sks style", "forest:"):
            assert secret not in text, (secret, text)
        assert "smile" in text  # the tag itself is read, without its weight


def test_before_timing_presamples_once_and_leaves_wildcards_for_later(
    cache: ModelCache, options: a1111.ScriptOptions, spy: Spy
) -> None:
    typed = "1girl, __haircolor__ hair, {red|blue} eyes, (smile:1.2), scenery"
    p = Processing(typed, batch_size=2, hr_prompt=typed)
    a1111.process_before(p, replace(options, timing="before", seed=9), run(cache))
    assert "__haircolor__ hair" in p.prompt and "{red|blue} eyes" in p.prompt
    assert "(smile:1.2)" in p.prompt and p.hr_prompt == p.prompt
    assert p.extra_generation_params[a1111.INFOTEXT_SEED] == 9
    assert p.extra_generation_params[a1111.INFOTEXT_INPUT] == typed
    # (Only the user's syntax is checked: a random model's own output, fed back on
    # a retry, may hold any character.)
    assert spy.inputs and all("haircolor" not in t and "red|blue" not in t for t in spy.inputs)
    # The "after" hook does nothing when the timing is "before", and vice versa.
    p.setup_prompts()
    before = list(p.all_prompts)
    a1111.process_after(p, replace(options, timing="before"), run(cache))
    assert p.all_prompts == before


def test_hires_prompts_follow_unless_set_apart(
    cache: ModelCache, options: a1111.ScriptOptions
) -> None:
    p = Processing("1girl, scenery", batch_size=2, enable_hr=True)
    p.setup_prompts()
    p.all_hr_prompts[1] = "1girl, scenery, detailed background"
    a1111.process_after(p, replace(options, seed=4), run(cache))
    assert p.all_hr_prompts[0] == p.all_prompts[0]
    assert p.all_hr_prompts[1] == "1girl, scenery, detailed background"


def test_disabled_script_changes_nothing(cache: ModelCache, options: a1111.ScriptOptions) -> None:
    p = Processing(PROMPT)
    p.setup_prompts()
    a1111.process_after(p, replace(options, enabled=False), run(cache))
    a1111.process_before(p, replace(options, enabled=False, timing="before"), run(cache))
    assert p.all_prompts == [PROMPT] and p.prompt == PROMPT and not p.extra_generation_params


def test_generate_prompt_button(cache: ModelCache, options: a1111.ScriptOptions) -> None:
    fixed = replace(options, enabled=False, seed=21)  # the button works with the box unticked
    first = a1111.generate_prompt("1girl, (smile:1.2)", fixed, run(cache))
    assert first != "1girl, (smile:1.2)" and "(smile:1.2)" in first
    assert a1111.generate_prompt("1girl, (smile:1.2)", fixed, run(cache)) == first
    assert a1111.generate_prompt("  ", fixed, run(cache)) == "  "


def test_options_from_gradio_values() -> None:
    names = a1111.ScriptOptions.names()
    values = [getattr(a1111.ScriptOptions(), n) for n in names]
    values[names.index("seed")] = 12.0  # gr.Number gives floats
    options = a1111.ScriptOptions.from_args(values)
    assert options.seed == 12 and isinstance(options.seed, int)
    with pytest.raises(ValueError, match="script arguments"):
        a1111.ScriptOptions.from_args(values[:-1])
    assert a1111.ScriptOptions.from_infotext({"Prompt": "1girl"}) == {}
    assert a1111.hold_dynamic("a, {b, c|d} e, __f__, g") == ("a, g", ["{b, c|d} e", "__f__"])


def test_script_returns_its_components_in_option_order() -> None:
    tree = ast.parse((A1111_FOLDER / "scripts" / "presample_script.py").read_text())
    (listing,) = [
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "components" for t in node.targets)
    ]  # fmt: skip
    assert [n.id for n in listing.elts] == a1111.ScriptOptions.names()


def load_installer() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("presample_a1111_install",
                                                  A1111_FOLDER / "install.py")  # fmt: skip
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: nothing runs
    return module


def test_installer_uses_wheels_and_never_upgrades_the_webui(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install = load_installer()
    host = {"presample": None, "pydantic": "2.8.2", "torch": "2.3.1+cu121",
            "transformers": "4.46.1"}  # fmt: skip
    repo = A1111_FOLDER.parents[1]
    requirement, _ = install.plan(host, repo)
    # From the repository (presample is not on the package index), never llama.cpp.
    assert requirement == f"presample[torch,gguf,canvas] @ {repo.resolve().as_uri()}"
    # A1111 1.10's pins: presample runs apart, in its own environment; nothing installed here.
    old = {**host, "pydantic": "1.10.15", "transformers": "4.30.2"}
    requirement, reason = install.plan(old, repo)
    assert requirement == install.APART and "runs apart" in reason
    assert "pydantic 1.10.15" in reason and "transformers" in reason
    requirement, reason = install.plan(old, None)
    assert requirement is None and "PRESAMPLE_SOURCE" in reason
    assert install.plan({**host, "presample": "0.1.0"}, repo)[0] is None
    requirement, reason = install.plan(host, None)
    assert requirement is None and "PRESAMPLE_SOURCE" in reason
    # This folder lies in the repository: it is found; elsewhere PRESAMPLE_SOURCE says.
    assert install.source_folder() == repo.resolve()
    monkeypatch.setenv("PRESAMPLE_SOURCE", str(repo))
    assert install.source_folder() == repo.resolve()

    # Forge pins accelerate 0.21: never upgraded; presample runs apart.
    forge = {**host, "accelerate": "0.21.0"}
    requirement, reason = install.plan(forge, repo)
    assert requirement == install.APART and "accelerate 0.21.0" in reason
    # Every installed version is a constraint: pip adds, never moves one.
    text = install.host_constraints([("Torch", "2.3.1+cu121"), ("presample", "0.1.0"),
                                     ("gradio", "4.40.0"), ("", "1")])  # fmt: skip
    assert text == "gradio==4.40.0\ntorch==2.3.1+cu121\n"

    calls: list[tuple[str, str]] = []
    constraints: list[str] = []
    launch = types.ModuleType("launch")

    def run_pip(command: str, desc: str | None = None) -> None:
        calls.append((command, desc))
        path = command.split(' -c "', 1)[1].split('"', 1)[0]
        constraints.append(Path(path).read_text(encoding="utf-8"))

    launch.run_pip = run_pip  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "launch", launch)
    monkeypatch.setattr(install, "_version", lambda name: host.get(name))
    monkeypatch.setattr(install, "_installed", lambda: [("pydantic", "2.8.2"), ("torch", "2.3.1")])
    install.main()
    ((command, _),) = calls
    assert command.startswith("install ") and "--only-binary=:all:" in command
    assert constraints == ["pydantic==2.8.2\ntorch==2.3.1\n"]

    # pip finding no way within the pins: one line, the WebUI unchanged, no traceback.
    def refuse(command: str, desc: str | None = None) -> None:
        raise RuntimeError("Couldn't install presample.\nCommand: ...\nError code: 1")

    launch.run_pip = refuse  # type: ignore[attr-defined]
    capsys.readouterr()
    install.main()
    said = capsys.readouterr().out.strip().splitlines()
    assert said[-1].startswith("[presample] not installed") and "Couldn't install" in said[-1]


def test_running_apart_makes_presamples_own_environment_with_its_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install = load_installer()
    source = tmp_path / "presample"
    (source / "scripts").mkdir(parents=True)
    seen = tmp_path / "seen.txt"
    # The repository's own environment script, standing in: it records how it was called.
    (source / "scripts" / "venv.sh").write_text(
        f'echo "$* $PRESAMPLE_VENV" > "{seen}"\n', encoding="utf-8"
    )
    monkeypatch.delenv("PRESAMPLE_VENV", raising=False)
    assert "is ready in" in install.make_environment(source)
    assert seen.read_text().split() == ["onnx", "server", str(source / ".venv")]
    assert install.environment_python(source / ".venv") == source / ".venv" / "bin" / "python"
    monkeypatch.setenv("PRESAMPLE_VENV", str(tmp_path / "elsewhere"))
    assert install.environment(source) == tmp_path / "elsewhere"
    (source / "scripts" / "venv.sh").write_text("echo 'pip: no matching torch' >&2; exit 1\n")
    assert install.make_environment(source) == (
        "presample's environment could not be made: pip: no matching torch"
    )

