"""`baogong push FILE`: send a spreadsheet or JSON file to the API in batches, with a progress bar.

The file is read with the same parser the API uses (CSV, XLSX through
pandas, JSON, NDJSON), sent as JSON batches of `batch` records, and every
rejection is reported with the file line a person sees in the spreadsheet.
A batch the API cannot take right now (429, 503) is retried after its
Retry-After; sending the same file twice is safe (duplicates are reported,
not counted twice). Blocks until the file is sent.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from ingest.formats import kind_of, parse
from schema.contract import Kind

ENDPOINTS: dict[Kind, str] = {"inventory": "/v1/inventory", "price": "/v1/prices"}


@dataclass
class PushResult:
    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


class PushError(Exception):
    """The push cannot go on (bad key, API unreachable); the message says what to do."""


def push_file(
    path: Path,
    kind: Kind,
    api_url: str,
    api_key: str,
    *,
    batch: int = 1000,
    out: TextIO = sys.stderr,
    max_retries: int = 10,
) -> PushResult:
    parsed = parse(path.read_bytes(), kind_of(None, path.name))
    records = parsed.records
    lines = parsed.lines or list(range(len(records)))
    result = PushResult(records=len(records) + len(parsed.rejected))
    result.rejected.extend(r.as_dict() for r in parsed.rejected)
    headers = {"Authorization": f"Bearer {api_key}"}
    started = time.monotonic()
    with httpx.Client(base_url=api_url, timeout=120, headers=headers) as client:
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            answer = _send(client, ENDPOINTS[kind], chunk, max_retries)
            result.accepted += int(answer.get("accepted", 0))
            result.duplicates += int(answer.get("duplicates_count", len(answer.get("duplicates", []))))
            listed = answer.get("rejected", [])
            if answer.get("rejections_report"):  # the answer listed only the first rejections: fetch them all
                report = client.get(str(answer["rejections_report"]))
                if report.status_code == 200:
                    listed = report.json()["rejected"]
            for rej in listed:
                index = start + int(rej["index"])
                rej = {**rej, "index": index}
                if parsed.lines is not None:
                    rej["line"] = lines[index]
                result.rejected.append(rej)
            _bar(out, min(start + batch, len(records)), len(records), result, time.monotonic() - started)
    out.write("\n")
    return result


def _send(client: httpx.Client, endpoint: str, chunk: list[Any], max_retries: int) -> dict[str, Any]:
    for _ in range(max_retries):
        try:
            response = client.post(endpoint, json=chunk)
        except httpx.HTTPError as exc:
            raise PushError(f"cannot reach the API at {client.base_url} ({exc}); is `baogong api` running?") from exc
        if response.status_code in (429, 503):
            time.sleep(float(response.headers.get("retry-after", "5")))
            continue
        if response.status_code in (200, 403, 422):
            return dict(response.json())
        raise PushError(f"the API answered {response.status_code}: {response.text[:300]}")
    raise PushError("the API kept answering 'try later'; nothing more was sent, run the same push again later")


def _bar(out: TextIO, done: int, total: int, result: PushResult, elapsed: float) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / elapsed if elapsed > 0 else 0.0
    out.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} records  "
        f"accepted {result.accepted:,}  duplicates {result.duplicates:,}  rejected {len(result.rejected):,}  "
        f"{rate:,.0f}/s"
    )
    out.flush()
