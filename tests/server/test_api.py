"""The JSON API as a client uses it, on the tiny test model."""

from __future__ import annotations

import io
import json
import time

import pytest
from fastapi.testclient import TestClient

from presample import Presampler, PresampleRequest
from presample.cli import main as cli_main
from presample.engine.sampling import Sampling
from presample.server import ServerSettings

from .conftest import FAST, MAX_NEW_TOKENS, dragon_answer


def presample(client: TestClient, **body: object) -> dict:
    response = client.post("/api/presample", json={**FAST, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_health_and_models_describe_the_loaded_model(client: TestClient, settings) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    (name,) = health["models"]
    models = client.get("/api/models").json()
    (model,) = models["models"]
    assert model["name"] == name and model["default"] and model["layout"] == "tipo"
    assert model["dtype"] == "float32"
    assert model["sampling"]["max_new_tokens"] == MAX_NEW_TOKENS
    assert "both_tag_first" in models["templates"] and "very_short" in models["lengths"]
    assert model["defaults"] == {}  # a model without a card sets none


def test_presample_keeps_the_users_tags_and_reproduces_with_a_seed(client: TestClient) -> None:
    first = presample(client, prompt="1girl, hatsune miku, (smile:1.2)", seed=11)
    again = presample(client, prompt="1girl, hatsune miku, (smile:1.2)", seed=11)
    assert first["seed"] == 11
    assert first["prompt"] == again["prompt"]
    assert "(smile:1.2)" in first["prompt"] and "hatsune miku" in first["prompt"]
    assert "hatsune miku" in first["tags"]["characters"]
    assert first["steps"], "the model ran"


def test_presample_equals_the_library_with_the_same_seed_and_sampling(
    client: TestClient, settings: ServerSettings
) -> None:
    body = {**FAST, "prompt": "1girl, scenery", "seed": 5}
    served = client.post(
        "/api/presample", json={**body, "sampling": {"temperature": 0, "max_new_tokens": 6}}
    ).json()
    with Presampler(settings.models[0], dtype="float32") as direct:
        direct.sampling = Sampling(**{**direct.sampling.to_dict(), "temperature": 0,
                                      "max_new_tokens": 6})  # fmt: skip
        expected = direct(PresampleRequest(**body))
    assert served["prompt"] == expected.prompt
    assert all(s["generated_tokens"] <= 6 * s["draws"] for s in served["steps"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": "1girl", "tag_lenght": "long"}, "tag_lenght: Extra inputs are not permitted"),
        ({"prompt": "1girl", "seed": -2}, "seed: Input should be greater than or equal to -1"),
        ({"prompt": "1girl", "tag_length": "huge"}, "tag_length: Input should be"),
        ({"prompt": "1girl", "template": "<|nonsense|>"}, "template"),
        ({"prompt": "1girl", "width": 512}, "give both width and height"),
        ({"prompt": "1girl", "model": "nope"}, "model: no model 'nope' on this server"),
        ({"prompt": "x" * 9000}, "prompt: at most 8000 characters on this server"),
        ({"prompt": ", ".join(f"tag{i}" for i in range(300))}, "300 tags; at most 256"),
        ({"prompt": "1girl", "sampling": {"max_new_tokens": 4000}}, "at most 512 on this server"),
        ({"prompt": "1girl", "caption_candidates": 8}, "caption_candidates: at most 3 on this"),
        ({"prompt": "1girl", "sampling": {"top_p": 0}}, "sampling.top_p: Input should be greater"),
        ({"prompt": "1girl", "ban": [{"kind": "regex", "pattern": "("}]}, "invalid regex"),
        ({"prompt": "(unclosed"}, "prompt"),
    ],
)
def test_bad_requests_get_422_naming_the_field(client: TestClient, body, message) -> None:
    response = client.post("/api/presample", json=body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_malformed_json_is_a_422_not_a_crash(client: TestClient) -> None:
    response = client.post(
        "/api/presample", content=b'{"prompt": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_large_bodies_are_refused_with_413(client: TestClient) -> None:
    big = json.dumps({"prompt": "a" * 1_100_000}).encode()
    response = client.post(
        "/api/presample", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "larger than 1000000 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit applies while the body streams in
        for _ in range(12):
            yield b"a" * 100_000

    response = client.post("/api/canvas/parse", content=chunks())
    assert response.status_code == 413


def test_batch_answers_in_order_and_matches_single_calls(client: TestClient) -> None:
    requests = [
        {**FAST, "prompt": p, "seed": s} for p, s in [("1girl", 1), ("a cat", 2), ("scenery", 3)]
    ]
    answer = client.post("/api/presample/batch", json={"requests": requests})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["error"] for r in results] == [None, None, None]
    for request, item in zip(requests, results, strict=True):
        assert item["result"]["seed"] == request["seed"]
        assert item["result"]["prompt"] == presample(client, **request)["prompt"]


def test_batch_limits(client: TestClient, make_client) -> None:
    response = client.post("/api/presample/batch", json={"requests": []})
    assert response.status_code == 422 and "requests" in response.json()["detail"]
    # A bad item gets its own error; the others still run.
    mixed = client.post(
        "/api/presample/batch",
        json={"requests": [{**FAST, "prompt": "1girl", "seed": 1}, {"prompt": "x", "seed": -9},
                           {**FAST, "prompt": "a cat", "caption_candidates": 99}, "not a request"]},
    )  # fmt: skip
    assert mixed.status_code == 200, mixed.text
    results = mixed.json()["results"]
    assert results[0]["error"] is None and results[0]["result"]["seed"] == 1
    assert results[1]["result"] is None and "requests.1.seed" in results[1]["error"]
    assert "requests.2.caption_candidates" in results[2]["error"]
    assert results[3]["error"] is not None
    small = make_client(limits={"max_batch": 2})
    response = small.post("/api/presample/batch", json={"requests": [{"prompt": "a"}] * 3})
    assert response.status_code == 422
    assert response.json()["detail"] == "requests: at most 2 per batch on this server"


def test_a_full_queue_answers_503_with_retry_after(make_client) -> None:
    tight = make_client(limits={"queue_size": 2})
    response = tight.post("/api/presample/batch", json={"requests": [{"prompt": "a"}] * 3})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "busy" in response.json()["detail"]
    assert tight.get("/health").json()["models"].popitem()[1]["requests"] == 0


def test_a_request_that_times_out_gets_504_and_its_work_is_dropped(make_client) -> None:
    slow = make_client(limits={"timeout_seconds": 0.01, "batch_window_seconds": 0.5})
    response = slow.post("/api/presample", json={**FAST, "prompt": "1girl"})
    assert response.status_code == 504
    assert "not answered within 0.01 seconds" in response.json()["detail"]
    for _ in range(100):  # the batcher wakes after its window and finds nobody waiting
        stats = slow.get("/health").json()["models"].popitem()[1]
        if stats["dropped"]:
            break
        time.sleep(0.05)
    assert stats["dropped"] == 1 and stats["requests"] == 0


def test_input_preview_is_what_show_input_prints(client: TestClient, capsys) -> None:
    prompt = "1girl, hatsune miku, a girl singing on a stage"
    answer = client.post("/api/input", json={"request": {"prompt": prompt}, "step": 2})
    assert answer.status_code == 200, answer.text
    assert cli_main(["show-input", "--prompt", prompt, "--step", "2", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    body = answer.json()
    assert body["input"] == expected["input"]
    assert (body["task"], body["mode"]) == (expected["task"], expected["mode"])
    assert [s["step"] for s in body["plan"]] == list(range(1, len(body["plan"]) + 1))
    dtg = client.post("/api/input", json={"request": {"prompt": "1girl"}, "format": "dtg"}).json()
    assert "<|input_end|>" in dtg["input"]
    too_far = client.post("/api/input", json={"request": {"prompt": prompt}, "step": 9})
    assert too_far.status_code == 422 and "step: must be between 1 and" in too_far.json()["detail"]


def test_tag_lookup_gives_category_and_count(client: TestClient) -> None:
    answer = client.get("/api/tags", params={"q": "Hatsune_Miku", "limit": 5}).json()
    assert answer["exact"]["name"] == "hatsune miku"
    assert answer["exact"]["category"] == "characters"
    assert answer["exact"]["post_count"] > 1000
    prefix = client.get("/api/tags", params={"q": "hatsu"}).json()["matches"]
    assert prefix[0]["name"] == "hatsune miku"
    counts = [m["post_count"] for m in prefix]
    assert counts == sorted(counts, reverse=True)
    assert client.get("/api/tags", params={"q": "zzqqxxnotatag"}).json() == {
        "query": "zzqqxxnotatag", "exact": None, "matches": []
    }  # fmt: skip
    missing = client.get("/api/tags")
    assert missing.status_code == 422 and missing.json()["detail"].startswith("q: Field required")


def test_format_writes_the_same_result_for_comfyui(client: TestClient) -> None:
    request = {**FAST, "prompt": "1girl", "nl_prompt": "a cat [sleeping] on a sofa", "seed": 3}
    result = presample(client, **request)
    assert r"\[sleeping\]" in result["prompt"]
    comfy = client.post(
        "/api/format", json={"request": request, "result": result, "target": "comfyui"}
    )
    assert comfy.status_code == 200, comfy.text
    text = comfy.json()["prompt"]
    assert "[sleeping]" in text and r"\[" not in text
    again = client.post("/api/format", json={"request": request, "result": result}).json()
    assert again["prompt"] == result["prompt"]


def test_canvas_parse_draw_and_masks(client: TestClient) -> None:
    from PIL import Image

    answer = dragon_answer()
    parsed = client.post("/api/canvas/parse", json={"answer": answer}).json()
    regions = parsed["canvas"]["regions"]
    assert len(parsed["layers"]) == len(regions) + 1 and parsed["layers"][0]["kind"] == "global"
    assert all(len(layer["rgb"]) == 3 for layer in parsed["layers"])

    png = client.post(
        "/api/canvas/composition", json={"answer": answer, "width": 300, "height": 200}
    )
    assert png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (300, 200)

    masks = client.post("/api/canvas/masks", json={"answer": answer, "width": 90, "height": 90})
    body = masks.json()
    assert len(body["layers"]) == len(parsed["layers"])
    import base64

    import numpy as np

    for layer in body["layers"]:
        top, bottom, left, right = layer["layer"]["box"]
        mask = np.array(Image.open(io.BytesIO(base64.b64decode(layer["mask_png"]))))
        assert mask.shape == (90, 90)
        assert int((mask > 0).sum()) == (bottom - top) * (right - left)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"answer": "```python\nimport os\nos.system('rm -rf /')\n```"}, "import"),
        ({"answer": "no code here"}, "no ```python code block"),
        ({"answer": ""}, "answer: String should have at least 1 character"),
    ],
)
def test_hostile_or_empty_canvas_answers_are_422(client: TestClient, body, message) -> None:
    response = client.post("/api/canvas/parse", json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_canvas_pictures_have_a_size_limit(client: TestClient) -> None:
    response = client.post(
        "/api/canvas/composition", json={"answer": dragon_answer(), "width": 4000, "height": 100}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "width, height: each at most 2048 pixels on this server"


def test_api_key_guards_the_api_not_the_page(make_client) -> None:
    guarded = make_client(api_key="s3cret-key")
    assert guarded.get("/api/models").status_code == 401
    assert guarded.get("/api/models", headers={"X-API-Key": "wrong-key"}).status_code == 401
    assert guarded.get("/api/models", headers={"X-API-Key": "s3cret-key"}).status_code == 200
    ok = guarded.get("/api/models", headers={"Authorization": "Bearer s3cret-key"})
    assert ok.status_code == 200
    assert guarded.get("/health").status_code == 200
    assert guarded.get("/").status_code == 200


def test_the_page_and_its_files_are_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for name in ("app.js", "style.css"):
        asset = client.get(f"/{name}")
        assert asset.status_code == 200
    for text in (page.text, client.get("/app.js").text, client.get("/style.css").text):
        assert "http://" not in text and "https://" not in text, "no CDN, no network"


def test_openapi_lists_every_endpoint(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/presample", "/api/presample/batch", "/api/input", "/api/tags",
                 "/api/format", "/api/canvas/parse", "/api/canvas/composition",
                 "/api/canvas/masks", "/api/models", "/health"):  # fmt: skip
        assert path in paths


def test_several_models_can_be_served_and_picked(make_client, settings, tmp_path) -> None:
    import shutil

    other = shutil.copytree(settings.models[0], tmp_path / "second-model")
    client = make_client(models=(settings.models[0], str(other)))
    models = client.get("/api/models").json()["models"]
    assert [m["name"] for m in models][1] == "second-model"
    assert [m["default"] for m in models] == [True, False]
    body = {**FAST, "prompt": "1girl", "seed": 4}
    picked = client.post("/api/presample", json={**body, "model": "second-model"}).json()
    assert picked["model"] == "second-model"
    assert picked["prompt"] == client.post("/api/presample", json=body).json()["prompt"]
    stats = client.get("/health").json()["models"]
    assert stats["second-model"]["requests"] == 1


@pytest.mark.parametrize(
    ("host", "status"),
    [("127.0.0.1:7878", 200), ("localhost", 200), ("[::1]:7878", 200),
     ("attacker.example", 400), ("localhost.attacker.example", 400)],
)
def test_only_loopback_host_headers_are_answered(client: TestClient, host: str,
                                                 status: int) -> None:  # fmt: skip
    # DNS rebinding: a page on attacker.example whose name resolves to
    # 127.0.0.1 must not drive the API.
    assert client.get("/health", headers={"Host": host}).status_code == status
    assert client.get("/api/models", headers={"Host": host}).status_code == status


def test_answers_carry_security_headers(client: TestClient) -> None:
    for path in ("/", "/api/models", "/no/such/page"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_too_many_typed_tags_is_one_line_naming_the_servers_limit(client: TestClient,
                                                                   settings) -> None:  # fmt: skip
    prompt = ", ".join(f"tag{i}" for i in range(1000))
    response = client.post("/api/presample", json={"prompt": prompt})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "\n" not in detail and f"at most {settings.limits.max_tags} on this server" in detail


def test_an_undecodable_body_is_a_documented_422(client: TestClient) -> None:
    response = client.post("/api/presample", content=b"\xff\xfe{",
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 422 and "not a JSON document" in response.json()["detail"]
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["ErrorAnswer"]
    assert "problems" in schema["properties"]  # canvas errors carry their problems


def test_presample_errors_a_route_leaves_are_one_line_422_or_503(client: TestClient) -> None:
    from presample.errors import InputError, RunError

    def bad_input() -> None:
        raise InputError("prompt: not a prompt")

    def cannot_run() -> None:
        raise RunError("co-occurrence table not found at /x")

    from fastapi.routing import APIRoute

    # Ahead of the web page's catch-all static mount.
    client.app.router.routes.insert(0, APIRoute("/api/test-input-error", bad_input))
    client.app.router.routes.insert(0, APIRoute("/api/test-run-error", cannot_run))
    answer = client.get("/api/test-input-error")
    assert answer.status_code == 422 and answer.json() == {"detail": "prompt: not a prompt"}
    answer = client.get("/api/test-run-error")
    assert answer.status_code == 503
    assert answer.json() == {"detail": "co-occurrence table not found at /x"}
