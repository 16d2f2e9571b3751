"""The committed dashboard JSON is what the generator builds; the dashboards hold what the bureau needs."""

from __future__ import annotations

import json
import re

import yaml

from baogong.grafana import dashboards as d
from baogong.grafana.macros import Variable, all_of, expand

RAW_TABLES = ("outlet_reports", "circle_levels ", "circle_levels\n", "prices ")


def test_committed_json_is_what_the_generator_builds() -> None:
    for dash in d.DASHBOARDS:
        path = d.OUT_DIR / f"{dash.uid}.json"
        assert path.exists(), f"{path} missing: run `baogong grafana build`"
        assert path.read_text(encoding="utf-8") == d.render(dash), f"{path} is stale: run `baogong grafana build`"
    committed = {p.stem for p in d.OUT_DIR.glob("*.json")}
    assert committed == {dash.uid for dash in d.DASHBOARDS}


def test_seven_dashboards_in_chinese_with_their_variables_and_the_fixed_datasource() -> None:
    titles = {dash.title for dash in d.DASHBOARDS}
    assert titles == {"城市总览", "生活圈详情", "品类视图", "价格监测", "告警", "数据源健康", "管道"}
    detail = d.build(d.CIRCLE_DETAIL)
    assert [v["name"] for v in detail["templating"]["list"]] == ["district", "circle", "necessity"]
    multi = {v["name"]: v["multi"] and v["includeAll"] for v in detail["templating"]["list"]}
    assert multi == {"district": True, "circle": False, "necessity": True}  # one circle, its necessities
    one = next(v for v in d.build(d.NECESSITY_VIEW)["templating"]["list"] if v["name"] == "necessity")
    assert not one["multi"] and not one["includeAll"]
    for dash in d.DASHBOARDS:
        model = d.build(dash)
        for panel in model["panels"]:
            assert re.search(r"[\u4e00-\u9fff]", panel["title"]), panel["title"]
            assert panel["datasource"] == {"type": "grafana-postgresql-datasource", "uid": d.DATASOURCE_UID}
            (target,) = panel["targets"]
            assert target["rawQuery"] and target["editorMode"] == "code" and target["rawSql"]
    city = d.build(d.CITY)
    geomap = next(p for p in city["panels"] if p["type"] == "geomap")
    assert geomap["options"]["layers"][0]["config"]["style"]["color"]["field"] == "status_rank"
    repeated = [p for p in detail["panels"] if p.get("repeat")]
    assert [p["repeat"] for p in repeated] == ["necessity"]


def test_panels_never_read_raw_time_series_and_only_the_granted_relations() -> None:
    granted = set(d.READS)
    for dash, panel in d.panels():
        sql = panel.sql + "\n"
        for raw in RAW_TABLES:
            assert f"FROM {raw}" not in sql and f"JOIN {raw}" not in sql, (dash.title, panel.title, raw)
        ctes = set(re.findall(r"(?:WITH|,)\s*([a-z_]+) AS \(", sql))
        named = set(re.findall(r"(?:FROM|JOIN)\s+([a-z_]+)\b(?![(.])", sql)) - ctes
        assert named <= granted, (panel.title, named - granted)
    for dash in d.DASHBOARDS:
        for v in dash.variables:
            assert set(re.findall(r"(?:FROM|JOIN)\s+([a-z_]+)\b(?![(.])", v.query)) <= granted


def test_provisioning_files_use_the_fixed_uids_and_secrets_from_the_environment() -> None:
    root = d.OUT_DIR.parent / "provisioning"
    ds = yaml.safe_load((root / "datasources" / "baogong.yaml").read_text(encoding="utf-8"))
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["uid"] == d.DATASOURCE_UID and source["type"] == "grafana-postgresql-datasource"
    assert source["user"] == "baogong_grafana"
    assert source["secureJsonData"]["password"] == "${BAOGONG_GRAFANA_DB_PASSWORD}"
    providers = yaml.safe_load((root / "dashboards" / "baogong.yaml").read_text(encoding="utf-8"))
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["folderUid"] == d.FOLDER_UID and provider["type"] == "file"
    assert json.dumps(ds).count("BAOGONG_GRAFANA_DB_PASSWORD") == 1


def test_the_expander_follows_grafanas_documented_rules() -> None:
    from datetime import UTC, datetime

    start, end = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 3, 3, 4, 5, 500000, tzinfo=UTC)
    sql = (
        "SELECT $__timeGroupAlias(t, '1h'), $__timeGroup(t, '5m') AS g FROM x WHERE $__timeFilter(t) "
        "AND c IN ($circle) AND n = '$necessity' AND d IN (${district}) AND e >= $__unixEpochFrom() "
        "AND $__unixEpochFilter(e) AND t < $__timeTo() AND k = [[necessity]]"
    )
    out = expand(
        sql,
        start=start,
        end=end,
        variables={
            "circle": all_of(["C01", "O'Brien"]),
            "necessity": Variable(("rice",)),
            "district": Variable(("北林区",), multi=True),
        },
    )
    assert out == (
        'SELECT floor(extract(epoch from t)/3600)*3600 AS "time", floor(extract(epoch from t)/300)*300 AS g '
        "FROM x WHERE t BETWEEN '2026-01-02T03:04:05Z' AND '2026-01-03T03:04:05.5Z' "
        "AND c IN ('C01','O''Brien') AND n = 'rice' AND d IN ('北林区') AND e >= 1767323045 "
        "AND e >= 1767323045 AND e <= 1767409445 AND t < '2026-01-03T03:04:05.5Z' AND k = rice"
    )
    assert "time_bucket('3600.000s',t)" in expand("$__timeGroup(t, '1h')", start=start, end=end, timescaledb=True)
