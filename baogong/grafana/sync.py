"""`baogong grafana sync`: push the data source, the folder and the dashboards to a running Grafana.

Idempotent by uid: the data source `baogong-pg`, the folder `baogong`, each dashboard by its uid (saved with
`overwrite`). Only what differs is written, and every line printed says what happened to what. It refuses,
before writing anything, when Grafana cannot be reached or the credential is refused or lacks the rights
(an Admin or Editor service-account token for dashboards; data sources need Admin).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from baogong.grafana.dashboards import DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID, OUT_DIR
from baogong.grafana.sqlquery import POSTGRES_TYPE

#: Dashboard fields Grafana owns (they change on every save); ignored when comparing.
VOLATILE = ("id", "version")


class SyncRefused(Exception):
    """Grafana is unreachable, the credential is refused, or it lacks the rights; nothing was written."""


@dataclass(frozen=True)
class DatasourceSpec:
    host: str  # host:port as Grafana reaches the database
    database: str
    password: str | None
    sslmode: str = "disable"
    timescaledb: bool = False

    def body(self, with_password: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "uid": DATASOURCE_UID,
            "name": "Baogong",
            "type": POSTGRES_TYPE,
            "access": "proxy",
            "url": self.host,
            "user": "baogong_grafana",
            "isDefault": True,
            "jsonData": {
                "database": self.database,
                "sslmode": self.sslmode,
                "postgresVersion": 1500,
                "timescaledb": self.timescaledb,
                "timeInterval": "1m",
            },
        }
        if with_password and self.password:
            body["secureJsonData"] = {"password": self.password}
        return body


def _comparable(ds: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "type", "access", "url", "user", "isDefault")
    out = {k: ds.get(k) for k in keys}
    out["jsonData"] = {k: (ds.get("jsonData") or {}).get(k) for k in ("database", "sslmode", "timescaledb")}
    return out


def _status(exc: GrafanaException) -> int:
    return int(getattr(exc, "status_code", 0) or 0)


def _refuse_on(exc: Exception, url: str, what: str) -> SyncRefused:
    if isinstance(exc, GrafanaUnauthorizedError):
        return SyncRefused(f"Grafana at {url} refused the credential (401) while {what}: check --token")
    if isinstance(exc, GrafanaClientError) and _status(exc) == 403:
        return SyncRefused(f"the token lacks the rights for {what} at {url} (403): use an Admin service-account token")
    if isinstance(exc, GrafanaException):
        return SyncRefused(f"Grafana at {url} failed while {what}: {exc}")
    return SyncRefused(f"Grafana at {url} is unreachable ({exc.__class__.__name__}: {exc})")


def _get(call: Callable[[], Any]) -> Any | None:
    """The object, or None when Grafana answers 404."""
    try:
        return call()
    except GrafanaClientError as exc:
        if _status(exc) == 404:
            return None
        raise


def load_dashboards(directory: Path = OUT_DIR) -> list[dict[str, Any]]:
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise SyncRefused(f"no dashboard JSON in {directory}: run `baogong grafana build`")
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def sync(
    url: str,
    token: str,
    datasource: DatasourceSpec,
    dashboards: Sequence[dict[str, Any]],
    say: Callable[[str], None] = print,
    reset_password: bool = False,
    timeout_s: float = 10.0,
) -> list[str]:
    """Make Grafana at `url` hold our data source, folder and dashboards; answers the changes made."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    changes: list[str] = []

    def changed(line: str) -> None:
        changes.append(line)
        say(line)

    step = "checking the credential"
    try:
        # Who am I, and may I write? Read-only calls first, so a weak token changes nothing.
        step = "reading the data source (needs Admin)"
        current_ds = _get(lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID))
        step = "reading the folder"
        folder = _get(lambda: api.folder.get_folder(FOLDER_UID))
        if folder is not None and not folder.get("canSave", True):
            raise SyncRefused(f"the token may not save into folder {FOLDER_UID} at {url}: use an Editor or Admin token")

        step = "writing the data source"
        if current_ds is None:
            api.datasource.create_datasource(datasource.body(with_password=True))
            changed(f"data source {DATASOURCE_UID}: created")
        elif _comparable(current_ds) != _comparable(datasource.body(False)) or reset_password:
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, datasource.body(with_password=True))
            changed(f"data source {DATASOURCE_UID}: updated")
        else:
            say(f"data source {DATASOURCE_UID}: unchanged")

        step = "writing the folder"
        if folder is None:
            api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
            changed(f"folder {FOLDER_UID}: created")
        elif folder.get("title") != FOLDER_TITLE:
            api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
            changed(f"folder {FOLDER_UID}: renamed")
        else:
            say(f"folder {FOLDER_UID}: unchanged")

        for dash in dashboards:
            uid = dash["uid"]
            step = f"writing dashboard {uid}"
            existing = _get(partial(api.dashboard.get_dashboard, uid))
            ours = {k: v for k, v in dash.items() if k not in VOLATILE}
            if existing is not None:
                theirs = {k: v for k, v in existing.get("dashboard", {}).items() if k not in VOLATILE}
                if theirs == ours and existing.get("meta", {}).get("folderUid") == FOLDER_UID:
                    say(f"dashboard {uid} ({dash.get('title')}): unchanged")
                    continue
            api.dashboard.update_dashboard(
                {"dashboard": {**ours, "id": None}, "folderUid": FOLDER_UID, "overwrite": True,
                 "message": "baogong grafana sync"}
            )  # fmt: skip
            changed(f"dashboard {uid} ({dash.get('title')}): {'updated' if existing else 'created'}")
    except SyncRefused:
        raise
    except (GrafanaException, niquests.exceptions.RequestException, OSError) as exc:
        raise _refuse_on(exc, url, step) from exc
    say(f"{len(changes)} change(s)" if changes else "nothing to change")
    return changes
