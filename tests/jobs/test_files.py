"""Parquet in and out for `presample run`: columns, bad rows, resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from presample.errors import InputError
from presample.jobs import Job, ParquetOutput, read_requests
from presample.request import PresampleResult, TagSet

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402


def _parquet(path: Path, columns: dict[str, list]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _result(prompt: str, seed: int) -> PresampleResult:
    return PresampleResult(tags=TagSet(general=[prompt]), prompt=prompt, user_prompt=prompt,
                           seed=seed, model="m")  # fmt: skip


def test_parquet_rows_are_requests_and_other_columns_are_named(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "in.parquet", {
        "prompt": ["1girl, scenery", "a cat", None],
        "nl_prompt": [None, None, "a dog on a sofa"],
        "seed": [3, None, 5],
        "tag_length": ["short", "huge", None],
        "image_path": ["a.png", "b.png", "c.png"],
    })  # fmt: skip
    requests = read_requests(path)
    assert requests.ignored_columns == ["image_path"]
    (n1, first), (n2, second), (n3, third) = requests.rows
    assert (n1, n2, n3) == (1, 2, 3), "rows counted from 1, like lines"
    assert first.prompt == "1girl, scenery" and first.seed == 3 and first.tag_length == "short"
    assert isinstance(second, str) and "tag_length" in second, "a bad row is that row's error"
    assert third.nl_prompt == "a dog on a sofa" and third.prompt == "", "null: the default"


def test_a_parquet_file_without_a_prompt_column_is_one_line(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "in.parquet", {"text": ["1girl"], "id": [1]})
    with pytest.raises(InputError, match=r"no 'prompt' or 'nl_prompt' column .*text, id"):
        read_requests(path)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_requests(tmp_path / "junk.parquet")


def test_parquet_output_resumes_from_its_parts(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    first = ParquetOutput(out, rows_per_part=2)
    assert first.answered() == {}
    first.write(1, _result("1girl", 1))
    first.write(2, "invalid request: prompt")
    first.write(3, _result("1boy", 3))  # in memory only: a kill here loses it
    # A kill in the middle of writing a part leaves a file aside: dropped, done again.
    (out / ".part-00001.parquet.tmp").write_bytes(b"torn")
    again = ParquetOutput(out, rows_per_part=2)
    assert again.answered() == {1: False, 2: True}
    assert not (out / ".part-00001.parquet.tmp").exists()
    again.write(3, _result("1boy", 3))
    again.close()
    table = pq.read_table(out)  # the folder reads as one table
    rows = sorted(table.to_pylist(), key=lambda r: r["line"])
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert rows[0]["prompt"] == "1girl" and rows[0]["error"] is None
    assert json.loads(rows[0]["result"])["seed"] == 1
    assert rows[1]["error"] == "invalid request: prompt" and rows[1]["prompt"] is None
    assert ParquetOutput(out).answered() == {1: False, 2: True, 3: False}


def test_an_output_folder_presample_did_not_write_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "photos.parquet"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"...")
    with pytest.raises(InputError, match=r"holiday\.jpg, which 'presample run' did not write"):
        ParquetOutput(out).answered()
    assert (out / "holiday.jpg").exists()
    file_out = tmp_path / "file.parquet"
    file_out.write_bytes(b"x")
    with pytest.raises(InputError, match="not a folder of 'presample run' Parquet parts"):
        ParquetOutput(file_out).answered()


def test_a_job_skips_answered_rows_and_fixes_open_seeds(tmp_path: Path) -> None:
    requests = tmp_path / "in.parquet"
    _parquet(requests, {"prompt": ["a", "b", "c"], "seed": [7, None, None]})
    out = tmp_path / "out.parquet"
    done = ParquetOutput(out)
    done.answered()
    done.write(2, _result("b", 1))
    done.close()
    run = Job(requests, out, seed=42).open()
    assert run.total == 3 and run.skipped == 1
    assert [(n, r.seed) for n, r in run.todo] == [(1, 7), (3, 42)], "a request's own seed wins"
    with pytest.raises(InputError, match="must not be the input"):
        Job(requests, requests).open()


def test_parquet_in_and_out_gives_the_json_lines_results(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import run_cli

    short = {"tag_length": "very_short", "nl_length": "very_short", "known_tags_only": False}
    rows = [{"prompt": p, "seed": s, **short} for p, s in [("1girl", 1), ("a cat", 2)]]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    table = {k: [r[k] for r in rows] for k in rows[0]}
    table["id"] = ["x", "y"]
    parquet = _parquet(tmp_path / "in.parquet", table)
    model = ("--model", str(tiny_model_dir), "--max-new-tokens", "8", "--no-progress")
    code, _, err = run_cli(capsys, "run", str(parquet), "-o", str(tmp_path / "o.parquet"), *model)
    assert code == 0, err
    assert "left out the columns that are no request field: id" in err
    code, _, err = run_cli(capsys, "run", str(jsonl), "-o", str(tmp_path / "o.jsonl"), *model)
    assert code == 0, err
    parts = pq.read_table(tmp_path / "o.parquet").to_pylist()
    from_parquet = {r["line"]: r["prompt"] for r in parts}
    from_jsonl = {
        r["line"]: r["result"]["prompt"]
        for r in map(json.loads, (tmp_path / "o.jsonl").read_text().splitlines())
    }
    assert from_parquet == from_jsonl and len(from_jsonl) == 2

