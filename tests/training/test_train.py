"""Training on a tiny config: exact resumption, signals, curves, export."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from presample.training.train import TrainConfig, lr_factor, train


def tiny_config(data: Path, steps: int = 6) -> TrainConfig:
    return TrainConfig(
        data_dir=str(data), shape="tiny", vocab_size=400, tokenizer_texts=300, seq_len=64,
        batch_size=2, steps=steps, warmup=2, eval_every=3, eval_batches=1, log_every=1,
        checkpoint_minutes=1e9,
    )  # fmt: skip


def weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    from presample.training.checkpoint import latest_checkpoint

    return load_file(str(latest_checkpoint(run_dir) / "model.safetensors"))


def test_resume_is_exact(tiny_data: Path, tmp_path: Path):
    import torch

    straight, resumed = [], []
    train(tmp_path / "a", tiny_config(tiny_data), progress_bar=False,
          on_step=lambda s, loss: straight.append(loss))  # fmt: skip
    first = train(tmp_path / "b", tiny_config(tiny_data), progress_bar=False, stop_after=3,
                  on_step=lambda s, loss: resumed.append(loss))  # fmt: skip
    assert first.step == 3
    # A fresh call is a fresh process as far as the run is concerned: all state
    # comes from the run folder.
    torch.manual_seed(12345)
    result = train(tmp_path / "b", tiny_config(tiny_data), progress_bar=False,
                   on_step=lambda s, loss: resumed.append(loss))  # fmt: skip
    assert result.step == 6
    assert resumed == straight
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert any("val_loss" in row for row in log) and any("loss" in row for row in log)
    assert (tmp_path / "b" / "loss.png").is_file()


def test_sigterm_checkpoints_and_stops(tiny_data: Path, tmp_path: Path):
    def kill(step: int, _loss: float) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    result = train(tmp_path / "r", tiny_config(tiny_data), progress_bar=False, on_step=kill)
    assert result.interrupted and result.step == 2
    assert (tmp_path / "r" / "checkpoints" / "step-0000002").is_dir()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(
        signal.getsignal(signal.SIGTERM)
    )


def test_export_loads_in_presampler(tiny_data: Path, tmp_path: Path):
    from presample.engine.sampling import Sampling
    from presample.presampler import Presampler
    from presample.training.export import export_run

    train(tmp_path / "run", tiny_config(tiny_data, steps=2), progress_bar=False)
    out = export_run(tmp_path / "run", tmp_path / "model", name="tiny-test", dtype="float16")
    card = json.loads((out / "presample.json").read_text())
    assert card == {
        "name": "tiny-test",
        "layout": "tipo",
        "quality": True,
        "defaults": {"tag_length": "short", "nl_length": "short"},
    }
    readme = (out / "README.md").read_text()
    assert "CC-BY-4.0" in readme and "tokens seen" in readme
    with Presampler(str(out), sampling=Sampling(max_new_tokens=8)) as presampler:
        assert presampler.source.name == "tiny-test"
        result = presampler({"prompt": "1girl, smile", "seed": 1})
    assert result is not None


def test_schedule_warms_up_then_decays():
    config = TrainConfig(steps=100, warmup=10, min_lr_ratio=0.1)
    assert lr_factor(0, config) == pytest.approx(0.1)
    assert lr_factor(9, config) == pytest.approx(1.0)
    assert lr_factor(55, config) == pytest.approx(0.55)
    assert lr_factor(100, config) == pytest.approx(0.1)


@pytest.mark.parametrize(("has_bf16", "expected"), [(True, "bf16"), (False, "no")])
def test_auto_precision_uses_bf16_only_with_bf16_kernels(
    monkeypatch: pytest.MonkeyPatch, has_bf16: bool, expected: str
) -> None:
    import torch

    from presample.engine import invariant
    from presample.training.train import mixed_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(invariant, "supported", lambda: has_bf16)
    assert mixed_precision("auto") == expected
    assert mixed_precision("bf16") == "bf16" and mixed_precision("fp32") == "no"
