"""`presample eval` as a user drives it, on tiny records and the tiny model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from presample.cli import evaluate
from presample.cli.common import UserError
from presample.evaluation.hard_inputs import HARD_INPUTS


def eval_cli(*args: str) -> int:
    parser = argparse.ArgumentParser(prog="presample")
    evaluate.add_parser(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(["eval", *args])
    return parsed.handler(parsed)


def test_baseline_only_writes_the_report(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval"
    code = eval_cli("--data-dir", str(data_dir), "--out", str(out), "--limit", "6",
                    "--seeds", "0,1", "--baseline-only", "--no-embeddings",
                    "--no-progress")  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert list(metrics["samplers"]) == ["baseline", "frequent", "danbooru"]
    assert metrics["samplers"]["danbooru"]["name"] == "Danbooru frequent tags"
    frequent = metrics["samplers"]["frequent"]
    assert frequent["name"] == "frequent tags" and frequent["failures"] == 0
    assert frequent["tag_length_hit"] == 1.0 and frequent["input_tags_preserved"] == 1.0
    assert metrics["items"]["tag_items"] == 3 and metrics["items"]["caption_items"] == 3
    baseline = metrics["samplers"]["baseline"]
    assert metrics["items"]["tag_caption_items"] == 1
    assert baseline["runs"] == 14 and baseline["failures"] == 0
    assert baseline["tag_caption_written"] == 1.0  # the baseline retrieves a caption for tags
    assert baseline["input_tags_preserved"] == 1.0
    assert baseline["tag_length_hit"] == 1.0
    assert baseline["rating_respected"] == 1.0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| recall of held-out continuation tags |" in report
    assert "### By rating: recall / precision (runs)" in report
    assert "### By requested tag length: recall / precision (runs)" in report
    assert (out / "samples.jsonl").is_file()
    assert json.loads(capsys.readouterr().out)["out"] == str(out)


def test_model_and_baseline(data_dir: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "eval"
    # One tag item whose 6 given tags already meet very_short's minimum: no retries.
    code = eval_cli("--data-dir", str(data_dir), "--out", str(out), "--limit", "1",
                    "--given", "6", "--seeds", "0,1", "--no-embeddings", "--no-progress",
                    "--model", str(tiny_model_dir), "--max-new-tokens", "8",
                    "--tag-captions", "0")  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert list(metrics["samplers"]) == ["baseline", "frequent", "danbooru", "model"]
    # The frequency baselines add as many new tags to each request as the model did.
    runs = [json.loads(line) for line in (out / "samples.jsonl").read_text("utf-8").splitlines()]
    added = {(r["sampler"], r["id"], r["seed"]): len(r["new"]) for r in runs if r["kind"] == "tag"}
    for (sampler, rid, seed), count in added.items():
        if sampler in ("frequent", "danbooru"):
            assert count == added[("model", rid, seed)]
    model = metrics["samplers"]["model"]
    assert model["runs"] == 2 + 2 * len(HARD_INPUTS) and model["failures"] == 0
    assert model["hard_no_names"] == 1.0 and model["hard_kept"] == 1.0
    assert model["input_tags_preserved"] == 1.0  # the engine never drops the user's tags
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Targets" in report and "![" in report
    assert "beats the frequent-tags baseline on tag precision" in report
    assert "beats the Danbooru-frequency baseline on tag recall" in report
    assert "| hard inputs: no name invented |" in report
    assert (out / "metrics.png").is_file()


def test_bad_options(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--seeds"):
        eval_cli("--data-dir", str(data_dir), "--seeds", "a,b", "--baseline-only")
    with pytest.raises(UserError, match="--tag-captions"):
        eval_cli("--data-dir", str(data_dir), "--tag-captions", "-1", "--baseline-only")
    with pytest.raises(UserError, match="--limit"):
        eval_cli("--data-dir", str(data_dir), "--limit", "0", "--baseline-only")
    with pytest.raises(UserError, match="--tag-prior must be between 0 and 4"):
        eval_cli("--data-dir", str(data_dir), "--tag-prior", "7", "--baseline-only")
    with pytest.raises(UserError, match="prepare"):
        eval_cli("--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--baseline-only")
    for bad in ("0", "150%", "x"):
        with pytest.raises(SystemExit):
            eval_cli("--data-dir", str(data_dir), "--given", bad, "--baseline-only")


def test_a_share_of_the_tags_given(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert eval_cli("--data-dir", str(data_dir), "--out", str(out), "--limit", "6",
                    "--given", "30%", "--seeds", "0", "--baseline-only", "--no-embeddings",
                    "--no-progress") == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["config"]["given_tags"] == 0.3
    assert "a random 30% of the tag-line tags given" in (out / "report.md").read_text("utf-8")


def test_quick_is_a_small_run_whose_sizes_each_option_overrides(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "quick"
    assert eval_cli("--data-dir", str(data_dir), "--out", str(out), "--quick", "--limit", "4",
                    "--baseline-only", "--no-embeddings", "--no-progress") == 0  # fmt: skip
    config = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["config"]
    assert config["seeds"] == [0] and config["limit"] == 4 and config["tag_captions"] == 30
