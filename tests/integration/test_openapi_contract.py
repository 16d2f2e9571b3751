"""The OpenAPI document is honest: schemathesis drives the live API process with real Kafka and PostgreSQL.

Every operation of /openapi.json gets generated requests (valid and
invalid bodies of every documented content type, path values, with a valid
key), and every answer is checked: no 5xx, only documented status codes,
documented content types, bodies matching the documented schema. Sized by
`MAX_EXAMPLES` per operation, content type and mode (valid, invalid) to stay well under two minutes.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import Api

MAX_EXAMPLES = 100
STATUSES: Counter[int] = Counter()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_operation_answers_as_documented(api: Api) -> None:
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {api.keys['s1'].key}"}
    failures: list[str] = []
    cases = 0
    started = time.monotonic()
    client = httpx.Client(timeout=30)
    for result in schema.get_all_operations():
        operation = result.ok()
        media_types = [b.media_type for b in operation.body.items] or [None]
        for mode, media in itertools.product((GenerationMode.POSITIVE, GenerationMode.NEGATIVE), media_types):
            cases += _drive(client, api.url, operation, mode, media, headers, failures)
    client.close()
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STATUSES.items()))
    print(f"schemathesis: {cases} cases, {len(failures)} failures, {time.monotonic() - started:.0f} s ({statuses})")
    assert not failures, "\n\n".join(failures[:10])


def _drive(
    client: httpx.Client,
    base_url: str,
    operation: Any,
    mode: GenerationMode,
    media: str | None,
    headers: dict[str, str],
    failures: list[str],
) -> int:
    """Send up to MAX_EXAMPLES generated requests; append a line per failed check; the number sent."""
    sent = 0
    label = f"{operation.label} [{media or 'no body'}, {mode.value}]"

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(mode, media_type=media))
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        try:
            response = _send(client, case.as_transport_kwargs(base_url=base_url, headers=headers))
            STATUSES[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # every kind of failure, with the request that caused it
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:800]}")

    # Unsatisfiable: nothing invalid to generate for this one (a GET without parameters, a free-form text body).
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        run()
    return sent


def _send(client: httpx.Client, kwargs: dict[str, Any]) -> httpx.Response:
    """Send schemathesis' request (requests-style arguments) with httpx.

    schemathesis' own requests transport counts pooled connections through
    urllib3 internals that urllib3-future (installed with grafana-client's
    niquests, in the same `urllib3` package) does not have; httpx has no such tie.
    """
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    if kwargs.get("files"):
        body["files"] = _files(kwargs["files"])
        if isinstance(kwargs.get("data"), dict):
            body["data"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        if isinstance(data, dict):
            body["data"] = data
        elif isinstance(data, bytes | str):
            body["content"] = data
        elif hasattr(data, "read"):
            body["content"] = data.read()
        else:
            body["content"] = str(data)
    request = client.build_request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        **body,
    )
    request.read()  # a multipart body is a stream until read; the checks look at the request sent
    return client.send(request)


def _files(files: Any) -> list[tuple[str, Any]]:
    """requests' `files` as httpx takes them: any part content that is not bytes, text or a file becomes text."""
    items = files.items() if isinstance(files, dict) else files
    out: list[tuple[str, Any]] = []
    for name, value in items:
        if isinstance(value, tuple):
            content = value[1]
            if not isinstance(content, bytes | str) and not hasattr(content, "read"):
                content = str(content)
            value = (value[0], content, *value[2:])
        elif not isinstance(value, bytes | str) and not hasattr(value, "read"):
            value = str(value)
        out.append((name, value))
    return out
