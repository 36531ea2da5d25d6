"""Fuzzing the OpenAPI schema: no input yields a 500 or takes the server down, and
every answer conforms to the schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from presample.server import ServerSettings  # noqa: E402

from .conftest import live_server  # noqa: E402

CONFORMANCE = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
EXAMPLES = 12  # per operation; enough to cross every field kind in well under a minute


@pytest.fixture(scope="module")
def fuzz_url(settings: ServerSettings) -> Iterator[str]:
    # Generated requests run the model: keep each one tiny, and never wait long.
    cheap = replace(
        settings,
        sampling={"max_new_tokens": 2},
        limits=replace(settings.limits, max_new_tokens=4, batch_window_seconds=0.0),
    )
    with live_server(cheap) as url:
        yield url


def test_no_input_yields_a_server_error(fuzz_url: str) -> None:
    from hypothesis import given

    schema = schemathesis.openapi.from_url(f"{fuzz_url}/api/openapi.json")
    checked = []
    statuses: list[int] = []
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for result in schema.get_all_operations():
        operation = result.ok()
        # Valid requests (they run the model) and schema-violating ones (they must be 4xx).
        strategy = operation.as_strategy(generation_mode=modes[0]) | operation.as_strategy(
            generation_mode=modes[1]
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:
            response = case.call(base_url=fuzz_url, timeout=120)
            statuses.append(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )
            if response.status_code >= 400:
                # Errors are JSON with a one-line detail (the page shows it as is).
                assert isinstance(response.json()["detail"], str)
            # The answer is what the OpenAPI document says: a documented status
            # code, content type, headers and body. Not checked: that every
            # schema-valid request is accepted (a template name or a canvas
            # answer is validated beyond the schema, answered with the documented
            # 422) and that every schema-violating one gets a code from
            # schemathesis' list (an over-large body is rightly 413).
            case.validate_response(response, checks=CONFORMANCE)

        check()
        checked.append(f"{operation.method.upper()} {operation.path}")
        # The server is still up and answering.
        assert httpx.get(f"{fuzz_url}/health", timeout=30).status_code == 200
    assert "POST /api/presample" in checked and "POST /api/canvas/parse" in checked
    # Both kinds were really sent: accepted requests and refused ones.
    assert 200 in statuses and 422 in statuses
    print(f"fuzzed {len(checked)} operations with {len(statuses)} requests: {', '.join(checked)}")
