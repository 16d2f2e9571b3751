"""`baogong grafana sync` against real HTTP servers on 127.0.0.1 (no Grafana server can be installed here).

A small in-memory stand-in answers the handful of Grafana HTTP API calls sync makes, with Grafana's status
codes: 401 for an unknown token, 403 for a Viewer token, 404 for what does not exist. Also a closed port
(connection refused) and a server that answers 401 to everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from baogong.grafana.sync import DatasourceSpec, SyncRefused, load_dashboards, sync
from tests.support import free_port

ADMIN, VIEWER = "glsa_admin", "glsa_viewer"
SPEC = DatasourceSpec(host="db.internal:5432", database="baogong", password="secret")


class FakeGrafana:
    def __init__(self, refuse_all: bool = False) -> None:
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []
        grafana = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if refuse_all or token not in (ADMIN, VIEWER):
                    return self._answer(401, {"message": "invalid API key"})
                path = self.path
                if path.startswith("/api/datasources") and token == VIEWER:
                    return self._answer(403, {"message": "You'll need additional permissions"})
                if method != "GET":
                    if token == VIEWER:
                        return self._answer(403, {"message": "Access denied"})
                    grafana.writes.append(f"{method} {path}")
                if method == "GET" and path.startswith("/api/datasources/uid/"):
                    ds = grafana.datasources.get(path.rsplit("/", 1)[1])
                    return self._answer(200, ds) if ds else self._answer(404, {"message": "Data source not found"})
                if method in ("POST", "PUT") and path.startswith("/api/datasources"):
                    stored = {k: v for k, v in body.items() if k != "secureJsonData"}
                    grafana.datasources[body["uid"]] = stored
                    return self._answer(200, {"datasource": stored})
                if method == "GET" and path.startswith("/api/folders/"):
                    f = grafana.folders.get(path.rsplit("/", 1)[1])
                    if f is None:
                        return self._answer(404, {"message": "folder not found"})
                    return self._answer(200, {**f, "canSave": token == ADMIN})
                if method == "POST" and path == "/api/folders":
                    grafana.folders[body["uid"]] = body
                    return self._answer(200, body)
                if method == "GET" and path.startswith("/api/dashboards/uid/"):
                    dash = grafana.dashboards.get(path.rsplit("/", 1)[1])
                    return self._answer(200, dash) if dash else self._answer(404, {"message": "Dashboard not found"})
                if method == "POST" and path == "/api/dashboards/db":
                    dash = body["dashboard"]
                    old = grafana.dashboards.get(dash["uid"])
                    version = (old["dashboard"]["version"] + 1) if old else 1
                    saved = {**dash, "id": 7, "version": version}
                    grafana.dashboards[dash["uid"]] = {"dashboard": saved, "meta": {"folderUid": body["folderUid"]}}
                    return self._answer(200, {"status": "success", "uid": dash["uid"], "version": version})
                return self._answer(404, {"message": "Not found"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    g = FakeGrafana()
    yield g
    g.close()


def test_sync_creates_everything_then_changes_nothing_then_only_what_changed(grafana: FakeGrafana) -> None:
    dashboards = load_dashboards()
    lines: list[str] = []
    first = sync(grafana.url, ADMIN, SPEC, dashboards, say=lines.append)
    assert len(first) == 2 + len(dashboards)
    assert "data source baogong-pg: created" in first and "folder baogong: created" in first
    assert set(grafana.dashboards) == {d["uid"] for d in dashboards}
    assert all(d["meta"]["folderUid"] == "baogong" for d in grafana.dashboards.values())

    grafana.writes.clear()
    again = sync(grafana.url, ADMIN, SPEC, dashboards, say=lines.append)
    assert again == [] and grafana.writes == []
    assert lines[-1] == "nothing to change"

    edited = [dict(d) for d in dashboards]
    edited[0]["title"] = edited[0]["title"] + "（改）"
    moved = DatasourceSpec(host="db2.internal:5432", database="baogong", password=None)
    changes = sync(grafana.url, ADMIN, moved, edited, say=lines.append)
    assert changes == [
        "data source baogong-pg: updated",
        f"dashboard {edited[0]['uid']} ({edited[0]['title']}): updated",
    ]
    assert grafana.datasources["baogong-pg"]["url"] == "db2.internal:5432"


def test_sync_refuses_a_token_without_rights_and_writes_nothing(grafana: FakeGrafana) -> None:
    with pytest.raises(SyncRefused, match=r"lacks the rights .*403"):
        sync(grafana.url, VIEWER, SPEC, load_dashboards(), say=lambda _: None)
    with pytest.raises(SyncRefused, match=r"refused the credential \(401\)"):
        sync(grafana.url, "glsa_wrong", SPEC, load_dashboards(), say=lambda _: None)
    assert grafana.writes == []


def test_the_cli_refuses_clearly_when_grafana_refuses_or_is_unreachable() -> None:
    refusing = FakeGrafana(refuse_all=True)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "baogong.cli", "grafana", "sync", "--url", refusing.url, "--token", "glsa_x"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        refusing.close()
    assert out.returncode == 2
    assert "refused the credential (401)" in out.stderr and "Traceback" not in out.stderr

    closed = f"http://127.0.0.1:{free_port()}"
    out = subprocess.run(
        [sys.executable, "-m", "baogong.cli", "grafana", "sync", "--url", closed, "--token", "glsa_x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"Grafana at {closed} is unreachable" in out.stderr and "Traceback" not in out.stderr
