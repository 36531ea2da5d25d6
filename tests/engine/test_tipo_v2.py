"""TIPO v2 / v2.1 (MoE): both published formats load, natively, and compute what the spec says.

The weights cannot be downloaded here, so every test runs on random models of
the published architecture and file layout (``presample/training/tipo_v2.py``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from conftest import tiny_corpus  # noqa: E402

from presample import PresampleRequest  # noqa: E402
from presample.engine import dots1  # noqa: E402
from presample.engine.backend import ModelError  # noqa: E402
from presample.engine.sampling import Sampling  # noqa: E402
from presample.presampler import Presampler  # noqa: E402
from presample.registry import KNOWN_MODELS, TIPO_V2_SAMPLING, known, resolve  # noqa: E402
from presample.tipo import Dialect  # noqa: E402
from presample.training import tipo_v2  # noqa: E402

# Random weights give flat distributions; a small top-k keeps the candidates the
# rules must read per token (and so the tests' time) small.
SHORT = Sampling(temperature=1.0, top_p=1.0, top_k=8, min_p=0.1, repetition_penalty=1.0,
                 max_new_tokens=24)  # fmt: skip
# A random model writes random pieces: the rules that refuse them would spend the
# test's time searching the 65,536 ids for an acceptable one.
REQ = PresampleRequest(prompt="1girl, scenery", seed=5, tag_length="very_short",
                       nl_length="very_short", known_tags_only=False, fill_tag_length=False,
                       fill_nl_length=False, caption_candidates=1)  # fmt: skip
TEXTS = [
    "rating: safe\naspect ratio: 0.7\ntarget: <|long|>\ntag: 1girl, solo, long hair, smile",
    "tag: (genshin impact), hu_tao_(genshin_impact), 2024, it's o'clock!! ~^_^~ 初音ミク",
    "short: a girl reading   in a library.\n\nlong: 12345 cats... <|gen_meta|>",
]


@pytest.fixture(scope="module")
def kohaku(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tipo_v2.write_kohaku(tmp_path_factory.mktemp("v2") / "TIPO-v2.1-tiny", tiny_corpus())


@pytest.fixture(scope="module")
def v2_gguf(kohaku: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("v2gguf") / "tiny-dots1-F32.gguf"
    return tipo_v2.export_dots1_gguf(kohaku, out, dtype="f32")


# ----------------------------------------------------- an independent forward


def _rms(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def reference_logits(folder: Path, ids: list[int]) -> np.ndarray:
    """TIPO v2's forward pass from spec/TIPO_V2.md §2 alone, in float64 NumPy."""
    from safetensors.numpy import load_file

    c = json.loads((folder / "config.json").read_text())
    w = {k: v.astype(np.float64) for k, v in load_file(folder / "model.safetensors").items()}
    eps, hd = c["rms_norm_eps"], c["head_dim"]
    heads, kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
    t = len(ids)
    x = w["model.embed_tokens.weight"][ids]
    inv = c["rope_theta"] ** (-np.arange(0, hd, 2) / hd)
    angles = np.arange(t)[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([angles] * 2, -1)), np.sin(np.concatenate([angles] * 2, -1))

    def rope(v: np.ndarray) -> np.ndarray:  # [t, n, hd], NeoX halves
        half = np.concatenate([-v[..., hd // 2 :], v[..., : hd // 2]], -1)
        return v * cos[:, None] + half * sin[:, None]

    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        h = _rms(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, heads, hd)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, kv_heads, hd)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, kv_heads, hd)
        # QK-norm over each head, before RoPE.
        q = rope(_rms(q, w[p + "self_attn.q_norm.weight"], eps))
        k = rope(_rms(k, w[p + "self_attn.k_norm.weight"], eps))
        out = np.zeros((t, heads, hd))
        for head in range(heads):
            kv = head // (heads // kv_heads)
            scores = q[:, head] @ k[:, kv].T / np.sqrt(hd)
            scores = np.where(np.tril(np.ones((t, t))) > 0, scores, -np.inf)
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            out[:, head] = (probs / probs.sum(-1, keepdims=True)) @ v[:, kv]
        x = x + out.reshape(t, -1) @ w[p + "self_attn.o_proj.weight"].T
        h = _rms(x, w[p + "post_attention_layernorm.weight"], eps)
        if n < c["first_k_dense"]:
            g, u = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
            x = x + (_silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
            continue
        s = 1.0 / (1.0 + np.exp(-(h @ w[p + "mlp.gate.weight"].T)))  # sigmoid scores
        mixed = np.zeros_like(h)
        for row in range(t):
            # The bias steers which experts are picked, never how much they weigh.
            picked = np.argsort(-(s[row] + w[p + "mlp.expert_bias"]))[: c["num_experts_per_tok"]]
            weights = s[row, picked] / s[row, picked].sum() * c["routed_scaling_factor"]
            for e, weight in zip(picked, weights, strict=True):
                g = w[p + "mlp.gate_proj"][e] @ h[row]
                u = w[p + "mlp.up_proj"][e] @ h[row]
                mixed[row] += weight * (w[p + "mlp.down_proj"][e] @ (_silu(g) * u))
        sg = h @ w[p + "mlp.shared_expert.gate_proj.weight"].T
        su = h @ w[p + "mlp.shared_expert.up_proj.weight"].T
        shared = (_silu(sg) * su) @ w[p + "mlp.shared_expert.down_proj.weight"].T
        x = x + mixed + shared
    return _rms(x, w["model.norm.weight"], eps) @ w["lm_head.weight"].T


def test_dots1_mapping_computes_the_spec_forward(kohaku: Path) -> None:
    model = dots1.load_model(kohaku, gguf_file=None, dtype=torch.float32, where="tiny")
    tokenizer = dots1.folder_tokenizer(kohaku, where="tiny")
    ids = tokenizer(TEXTS[0])["input_ids"]
    with torch.inference_mode():
        got = model(torch.tensor([ids])).logits[0].double().numpy()
    want = reference_logits(kohaku, ids)
    assert np.abs(got - want).max() < 1e-3 * np.abs(want).max()
    # The bias is big enough that using it for the weights too would show.
    assert got.argmax(-1).tolist() == want.argmax(-1).tolist()


def test_the_gguf_holds_the_same_model_with_its_gqa(kohaku: Path, v2_gguf: Path) -> None:
    config, _ = dots1.read_dots1_gguf(v2_gguf)
    assert config["num_key_value_heads"] == 2  # the file repeats them to 4
    ids = dots1.folder_tokenizer(kohaku, where="tiny")(TEXTS[1])["input_ids"]
    with torch.inference_mode():
        a = dots1.load_model(kohaku, gguf_file=None, dtype=torch.float32, where="k")
        b = dots1.load_model(v2_gguf.parent, gguf_file=v2_gguf.name, dtype=torch.float32,
                             where="g")  # fmt: skip
        assert torch.equal(a(torch.tensor([ids])).logits, b(torch.tensor([ids])).logits)


def test_tokenizer_has_the_published_ids_and_one_bos(kohaku: Path, tmp_path: Path) -> None:
    tokenizer = dots1.folder_tokenizer(kohaku, where="tiny")
    ids = tokenizer.convert_tokens_to_ids(["<|bos|>", "<|eos|>", "<|pad|>", "<|empty|>",
                                           "<|tag_to_long|>", "<|gen_meta|>"])  # fmt: skip
    assert ids == [64000, 64001, 64002, 64004, 64009, 64016]
    assert len(tokenizer) == 65536
    encoded = tokenizer("target: <|long|>")["input_ids"]
    assert encoded[0] == 64000 and encoded.count(64000) == 1 and 64007 in encoded
    # An early export without the BOS post-processor still starts with one BOS.
    bare = tipo_v2.write_kohaku(tmp_path / "bare", tiny_corpus(), bos_template=False)
    assert dots1.folder_tokenizer(bare, where="bare")("x")["input_ids"][0] == 64000


def test_gguf_tokenizer_splits_like_llama_cpp(v2_gguf: Path, db) -> None:
    llama_cpp = pytest.importorskip("llama_cpp", reason="presample[llamacpp] is not installed")
    llm = llama_cpp.Llama(str(v2_gguf), n_ctx=256, verbose=False)
    tokenizer = dots1.gguf_tokenizer(v2_gguf)
    # The most used tags of every initial: brackets, hyphens, digits, apostrophes.
    tags = [t.name for c in "abcdefghijklmnopqrstuvwxyz0123456789:(>^" for t in
            db.search_prefix(c, 120)]  # fmt: skip
    assert len(tags) > 2000
    texts = [*TEXTS, *tags, ", ".join(tags[:200])]
    for text in texts:
        assert tokenizer(text)["input_ids"] == llm.tokenize(text.encode(), add_bos=True,
                                                            special=True), text  # fmt: skip


@pytest.mark.parametrize("fmt", ["kohaku", "gguf"])
def test_presampler_runs_both_formats_with_the_v21_strings(fmt: str, kohaku: Path,
                                                           v2_gguf: Path) -> None:  # fmt: skip
    model = str(kohaku if fmt == "kohaku" else v2_gguf)
    presampler = Presampler(model, sampling=SHORT)
    assert presampler.source.dialect is Dialect.V2_1
    assert presampler.backend.info.name == "transformers"  # ONNX Runtime cannot run MoE
    result = presampler(REQ)
    first = result.steps[0].model_input
    assert first.startswith("rating: safe\ntarget: <|very_short|>\ntag: 1girl, scenery")
    assert result.prompt.startswith("1girl,")
    # A seed reproduces.
    assert presampler(REQ).prompt == result.prompt


def test_llama_cpp_runs_the_dots1_file(v2_gguf: Path, kohaku: Path) -> None:
    pytest.importorskip("llama_cpp", reason="presample[llamacpp] is not installed")
    greedy = Sampling(temperature=0, max_new_tokens=12)
    by_llama = Presampler(str(v2_gguf), backend="llama.cpp", sampling=greedy)
    by_torch = Presampler(str(kohaku), backend="transformers", dtype="float32", sampling=greedy)
    a, b = by_llama(REQ), by_torch(REQ)
    assert a.steps[0].model_input == b.steps[0].model_input
    assert a.steps[0].model_output == b.steps[0].model_output


def test_the_model_cards_sampling_is_the_default_and_can_be_overridden(kohaku: Path) -> None:
    assert Presampler(str(kohaku)).sampling == TIPO_V2_SAMPLING
    assert TIPO_V2_SAMPLING.temperature == 1.0 and TIPO_V2_SAMPLING.min_p == 0.1
    assert TIPO_V2_SAMPLING.top_k == 0 and TIPO_V2_SAMPLING.top_p == 1.0
    assert Presampler(str(kohaku), sampling=SHORT).sampling == SHORT


def test_registry_lists_both_published_models_with_their_files(v2_gguf: Path,
                                                               tmp_path: Path) -> None:  # fmt: skip
    assert KNOWN_MODELS[0].repo == "KBlueLeaf/TIPO-v2.1-1B-A200M"
    v21, v2 = known("TIPO-v2.1-1B-A200M"), known("KBlueLeaf/TIPOv2-1B-A200M")
    assert v21.gguf_files == ("TIPO-v2.1-1B-A200M-f16.gguf", "gguf/TIPO-v2.1-1B-A200M-Q8_0.gguf")
    assert v2.gguf_files == ("TIPOv2-1B-A200M-f16.gguf",)
    assert (v21.dialect, v2.dialect) == (Dialect.V2_1, Dialect.V2)
    hub = resolve("KBlueLeaf/TIPO-v2.1-1B-A200M")
    assert (hub.kind, hub.dialect, hub.sampling) == ("hub", Dialect.V2_1, TIPO_V2_SAMPLING)
    # The reference's downloads: <Repo>_<file>.gguf in a models folder.
    kgen = tmp_path / "kgen"
    kgen.mkdir()
    shutil.copy(v2_gguf, kgen / "TIPOv2-1B-A200M_TIPOv2-1B-A200M-f16.gguf")
    found = resolve("TIPOv2-1B-A200M", search=(kgen,))
    assert (found.kind, found.dialect) == ("gguf", Dialect.V2)


def test_bad_v2_inputs_fail_in_one_line(kohaku: Path, v2_gguf: Path, tmp_path: Path) -> None:
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(kohaku, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match=r"has no tokenizer\.json") as info:
        Presampler(str(no_tokenizer))
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="ONNX Runtime cannot run") as info:
        Presampler(str(v2_gguf), backend="onnx")
    assert "--backend transformers" in str(info.value)


def test_a_gguf_without_bos_metadata_is_refused(kohaku: Path, tmp_path: Path) -> None:
    import gguf

    source = tipo_v2.export_dots1_gguf(kohaku, tmp_path / "full.gguf", dtype="f16")
    reader = gguf.GGUFReader(str(source))
    out = tmp_path / "no-bos.gguf"
    writer = gguf.GGUFWriter(str(out), "dots1")
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in (
            "general.architecture",
            "tokenizer.ggml.bos_token_id",
        ):
            continue
        kind = field.types[0]
        value = field.contents()
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, kind, sub_type=sub)
    for tensor in reader.tensors:
        shape = tuple(int(d) for d in reversed(tensor.shape))
        writer.add_tensor(tensor.name, np.asarray(tensor.data).reshape(shape)
                          if tensor.data.dtype != np.uint8 else tensor.data,
                          raw_dtype=tensor.tensor_type)  # fmt: skip
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    engines = ["transformers"]
    if importlib.util.find_spec("llama_cpp") is not None:
        engines.append("llama.cpp")
    for engine in engines:
        with pytest.raises(ModelError, match="no BOS/EOS token ids") as info:
            Presampler(str(out), backend=engine)
        assert "no-bos.gguf" in str(info.value) and "\n" not in str(info.value)


def test_a_kohaku_folder_never_runs_its_own_code(kohaku: Path, tmp_path: Path) -> None:
    # The published config names Python files (auto_map); here they exist and
    # would leave a mark if anything imported them.
    folder = tmp_path / "with-code"
    shutil.copytree(kohaku, folder)
    assert "auto_map" in json.loads((folder / "config.json").read_text())
    marker = tmp_path / "code-ran"
    for name in ("configuration_kohaku.py", "modeling_kohaku.py"):
        (folder / name).write_text(f"open({str(marker)!r}, 'w').close()\n")
    done = subprocess.run(
        [sys.executable, "-m", "presample", "generate", "--model", str(folder), "--seed", "3",
         "--tag-length", "very_short", "--max-new-tokens", "16", "--top-k", "8", "1girl"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1girl")
    assert not marker.exists()


def test_cpu_bf16_default_is_batch_invariant_through_the_experts(kohaku: Path) -> None:
    from presample.engine import invariant
    from presample.engine.backend import GenerationJob

    if not invariant.supported():
        pytest.skip("this CPU/PyTorch has no oneDNN bf16 kernels")
    backend = Presampler(str(kohaku), dtype="bfloat16", device="cpu").backend
    modules = {type(m).__name__ for m in backend.model.modules()}
    assert {"RowRouter", "PackedExperts"} <= modules and "Dots1Experts" not in modules
    router = next(m for m in backend.model.modules() if type(m).__name__ == "RowRouter")
    assert router.weight.dtype == router.bias.dtype == torch.float32  # trained in float32
    # The same numbers as the stock float32 model, to bf16's precision.
    reference = dots1.load_model(kohaku, gguf_file=None, dtype=torch.float32, where="k")
    ids = torch.tensor([dots1.folder_tokenizer(kohaku, where="k")(TEXTS[0])["input_ids"]])
    with torch.inference_mode():
        want = reference(ids).logits[0, -1]
        got = backend.model(ids, row_starts=[0]).logits[0, -1].float()
    assert torch.corrcoef(torch.stack([want, got]))[0, 1] > 0.999
    # A row draws the same tokens alone and among others, in any position.
    backend.eos_id = -1
    sampling = Sampling(max_new_tokens=24, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
    target = GenerationJob(TEXTS[0], sampling, seed=3)
    alone = backend.generate([target])[0].text
    fillers = [GenerationJob(TEXTS[1], sampling, seed=1),
               GenerationJob("tag: 1boy, " + "red hair, " * 9, sampling, seed=2)]  # fmt: skip
    for position in range(3):
        jobs = [*fillers[:position], target, *fillers[position:]]
        assert backend.generate(jobs)[position].text == alone, position


def test_per_expert_names_for_transformers_4(kohaku: Path) -> None:
    # transformers 4.53-4.57 keep one module per expert; 5.x stacks them.
    from safetensors.torch import load_file

    weights = load_file(kohaku / "model.safetensors")
    per_expert = dots1.dots1_weights(weights, fused=False)
    fused = dots1.dots1_weights(weights, fused=True)
    layer = "model.layers.1.mlp."
    up = weights[layer + "up_proj"]
    assert torch.equal(per_expert[layer + "experts.3.up_proj.weight"], up[3])
    assert torch.equal(per_expert[layer + "experts.0.down_proj.weight"],
                       weights[layer + "down_proj"][0])  # fmt: skip
    assert fused[layer + "experts.gate_up_proj"].shape == (8, 64, 64)
    assert torch.equal(per_expert[layer + "gate.e_score_correction_bias"],
                       weights[layer + "expert_bias"])  # fmt: skip
    assert layer + "shared_experts.gate_proj.weight" in per_expert
    # Nothing keeps a kohaku-only name.
    assert not any(k.endswith(("expert_bias", "_proj")) for k in per_expert)


def test_a_kohaku_file_missing_a_tensor_is_refused(kohaku: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(kohaku, broken)
    weights = load_file(broken / "model.safetensors")
    del weights["model.layers.1.mlp.expert_bias"]
    save_file(weights, str(broken / "model.safetensors"))
    with pytest.raises(ModelError, match="not the published TIPO v2 layout") as info:
        dots1.load_model(broken, gguf_file=None, dtype=torch.float32, where="broken")
    assert "e_score_correction_bias" in str(info.value)
