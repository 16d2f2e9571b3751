"""A PostgreSQL query target for grafana-foundation-sdk panels.

The SDK (grafana-foundation-sdk 11.6) ships typed query builders for Prometheus, Loki, Tempo, … but none for
the SQL data sources, so this is the small missing piece: a `Dataquery` variant whose JSON is what Grafana's
PostgreSQL query editor saves in code mode (`rawSql`, `format`, `rawQuery`, `editorMode`).
"""

from __future__ import annotations

from typing import Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

#: Grafana's plugin id of its built-in PostgreSQL data source (since Grafana 10.3; `postgres` before).
POSTGRES_TYPE = "grafana-postgresql-datasource"

Format = Literal["table", "time_series"]


class SqlDataquery(cogvariants.Dataquery):
    def __init__(self, raw_sql: str, ref_id: str, fmt: Format, datasource: DataSourceRef) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.format = fmt
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": self.datasource.to_json(),
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class SqlQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, raw_sql: str) -> None:
        self._sql = raw_sql
        self._ref = "A"
        self._format: Format = "table"
        self._ds = DataSourceRef(type_val=POSTGRES_TYPE)

    def ref_id(self, ref_id: str) -> Self:
        self._ref = ref_id
        return self

    def format(self, fmt: Format) -> Self:
        self._format = fmt
        return self

    def datasource(self, ds: DataSourceRef) -> Self:
        self._ds = ds
        return self

    def build(self) -> SqlDataquery:
        return SqlDataquery(self._sql, self._ref, self._format, self._ds)
