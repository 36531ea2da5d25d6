"""A job on Ray Data: killed, resumed, and row for row the one-process result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from presample.errors import RunError

pytest.importorskip("ray")

from presample.jobs.ray_job import check_reachable, wire
from presample.request import PresampleRequest

PROMPTS = [
    "1girl, scenery", "a cat on a sofa", "2boys, sword", "1girl, long hair, smile",
    "scenery, night, city", "1boy, armor", "a red car on a street", "1girl, dress",
]  # fmt: skip
ROWS = 240


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _comparable(row: dict) -> dict:
    """A row without what differs between two runs of the same request (clock times)."""
    if "result" not in row:
        return row
    result = {**row["result"], "timings": None}
    result["steps"] = [{**s, "seconds": None} for s in result["steps"]]
    return {**row, "result": result}


@pytest.fixture
def ray_home() -> Iterator[Path]:
    """Ray's session folder, short (its socket paths have a length limit) and ours alone,
    so whatever a kill leaves running can be found and stopped."""
    folder = Path(tempfile.mkdtemp(prefix="pr-", dir="/tmp"))
    yield folder
    subprocess.run(["pkill", "-9", "-f", str(folder)], check=False)
    shutil.rmtree(folder, ignore_errors=True)


def test_a_killed_ray_job_resumes_to_the_one_process_result(
    tiny_model_dir: Path, tmp_path: Path, ray_home: Path
) -> None:
    requests = tmp_path / "requests.jsonl"
    # Short, and free of the real-tags rule, whose vocabulary walks a random model
    # keeps busy: the test is of the job, not of the rules.
    short = {"tag_length": "very_short", "nl_length": "very_short", "known_tags_only": False}
    lines = [json.dumps({"prompt": PROMPTS[i % len(PROMPTS)], "seed": i, **short})
             for i in range(ROWS)]  # fmt: skip
    lines[17] = "{not json"
    lines[101] = json.dumps({"prompt": "1girl", "tag_length": "huge"})
    requests.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = ["--model", str(tiny_model_dir), "--max-new-tokens", "8", "--no-progress"]
    env = {**os.environ, "RAY_TMPDIR": str(ray_home), "PRESAMPLE_DEBUG": ""}

    def presample(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "presample", "run", str(requests), *args, *model],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # a group to kill: the driver and the Ray it started
        )  # fmt: skip

    alone = tmp_path / "alone.jsonl"
    single = presample("-o", str(alone))
    _, err = single.communicate(timeout=300)
    assert single.returncode == 1 and "2 request(s) failed" in err, err

    spread = tmp_path / "ray.jsonl"
    ray_args = ("-o", str(spread), "--workers", "2", "--batch-size", "8")
    job = presample(*ray_args)
    deadline = time.monotonic() + 240
    while not (spread.exists() and len(_rows(spread)) >= 40):
        assert job.poll() is None, job.communicate()[1]
        assert time.monotonic() < deadline, "the Ray job wrote nothing in 4 minutes"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    subprocess.run(["pkill", "-9", "-f", str(ray_home)], check=False)
    done_before = {r["line"] for r in _rows(spread)}
    assert 40 <= len(done_before) < ROWS, "killed part way"

    resumed = presample(*ray_args)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 1 and "2 request(s) failed" in err, err

    rows = _rows(spread)
    by_line = {r["line"]: r for r in rows}
    assert len(rows) == len(by_line) == ROWS, "every row once: none lost, none twice"
    assert {r["line"] for r in rows[: len(done_before)]} == done_before, "kept, not redone"
    expected = {r["line"]: _comparable(r) for r in _rows(alone)}
    assert {n: _comparable(r) for n, r in by_line.items()} == expected
    assert "not valid JSON" in by_line[18]["error"] and "tag_length" in by_line[102]["error"]


def test_an_address_nobody_answers_is_one_line_at_once(tmp_path: Path) -> None:
    with socket_closed() as port:
        started = time.monotonic()
        with pytest.raises(RunError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
            check_reachable(f"127.0.0.1:{port}")
        assert time.monotonic() - started < 5
        requests = tmp_path / "requests.jsonl"
        requests.write_text('"1girl"\n', encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "presample", "run", str(requests), "-o",
             str(tmp_path / "out.jsonl"), "--address", f"127.0.0.1:{port}", "--no-progress"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"presample: error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused"
    ]


class socket_closed:
    """A local port with nothing listening on it."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_request_reaches_a_ray_worker_with_only_the_fields_it_set() -> None:
    # The model card fills the others (tag_length, tag_prior ...) as in one process.
    request = PresampleRequest(prompt="1girl", tag_length="long").model_copy(update={"seed": 4})
    arrived = PresampleRequest.model_validate_json(wire(request))
    assert arrived == request
    assert arrived.model_fields_set == {"prompt", "tag_length", "seed"}
