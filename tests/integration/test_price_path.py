"""The whole price path on real services: prices POSTed to a real API process -> the real broker -> a real
`baogong worker` (its leader's price timer) -> price_levels and supply.price-levels.v1 -> a real
`baogong alerts run` -> real HTTP receivers of the teams the routing tree names.

The tiny city (T1; O1, O2 of supplier s1, O3 of s2) has 27 days of rice at 5.00 behind it (stored and rolled
up as `baogong seed history` would). Today rice goes to 7.00 at O1 and O2 and 12.00 at O3, and stock falls
to 1,000 kg against a demand of 250 kg a day: 4 days, below rice's watch line (7 days), above shortage (3).
So: PriceSpike (ALPS CRISIS, plan IV) reaches the market supervision bureau, PanicBuying (critical) the
circle's team and the district commerce bureau, and O3 is a gouging lead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from baogong.settings import Settings
from schema.db import connect
from schema.maintain import maintain
from schema.teams_store import import_teams
from tests.integration.conftest import Api
from tests.support import Receiver, baogong_process, free_port, read_topic, wait_for

TEAMS = ("market", "T1-team", "district", "city")


def teams_file(path: Path, urls: dict[str, str]) -> Path:
    path.write_text(
        f"""teams:
  - {{id: T1-team, name: T1 保供队, kind: circle_team, circle: T1, escalates_to: district,
     members: [{{id: a, name: 甲}}], channels: [{{name: hook, kind: webhook, url: "{urls["T1-team"]}"}}]}}
  - {{id: district, name: 区商务局, kind: district_bureau, district: 北林区, escalates_to: city,
     members: [{{id: b, name: 乙}}], channels: [{{name: hook, kind: webhook, url: "{urls["district"]}"}}]}}
  - {{id: city, name: 市商务局, kind: city_bureau,
     members: [{{id: c, name: 丙}}], channels: [{{name: hook, kind: webhook, url: "{urls["city"]}"}}]}}
  - {{id: market, name: 市场监管局, kind: market_supervision,
     members: [{{id: d, name: 丁}}], channels: [{{name: hook, kind: webhook, url: "{urls["market"]}"}}]}}
routes:
  teams: ["@circle_team"]
  fallback: [city]
  routes:
    - matchers: ['alertname="PanicBuying"']
      teams: ["@circle_team", "@district_bureau"]
    - matchers: ['alertname="PriceSpike"']
      teams: [market]
""",
        encoding="utf-8",
    )
    return path


def firing(receiver: Receiver, alertname: str) -> list[dict[str, Any]]:
    return [
        a
        for body in list(receiver.bodies)
        if body["status"] == "firing"
        for a in body["alerts"]
        if a["labels"]["alertname"] == alertname
    ]


def test_prices_in_grades_stored_and_the_bureaus_paged(api: Api, tmp_path: Path) -> None:
    url = api.database_url
    with connect(url) as conn:
        conn.execute("UPDATE circles SET district = '北林区' WHERE id = 'T1'")
    receivers = {t: Receiver() for t in TEAMS}
    import_teams(url, teams_file(tmp_path / "teams.yaml", {t: r.url for t, r in receivers.items()}))
    now = datetime.now(UTC)
    with connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO prices (reported_at, outlet_id, necessity, price, supplier_id, received_at) "
            "VALUES (%s, %s, 'rice', 5.0, %s, now())",
            [
                (now - timedelta(days=d), o, s)
                for d in range(1, 28)
                for o, s in (("O1", "s1"), ("O2", "s1"), ("O3", "s2"))
            ],
        )
    maintain(url, now=now, retention_days=35, hourly_days=180, daily_days=1095)

    at = (now - timedelta(minutes=2)).isoformat()
    for supplier, outlets in (("s1", (("O1", 7.0, 400), ("O2", 7.0, 300))), ("s2", (("O3", 12.0, 300),))):
        prices = [
            {"outlet_id": o, "necessity": "rice", "price": p, "unit": "kg", "reported_at": at} for o, p, _ in outlets
        ]
        stock = [
            {"outlet_id": o, "necessity": "rice", "quantity": q, "unit": "kg", "reported_at": at} for o, _, q in outlets
        ]
        assert api.post("/v1/prices", supplier, json=prices).status_code == 200
        assert api.post("/v1/inventory", supplier, json=stock).status_code == 200

    settings = Settings.from_env(
        kafka_bootstrap=api.bootstrap,
        database_url=url,
        topic_prefix=api.prefix,
        worker_id=f"baogong-test-{api.prefix.strip('.')}",
        worker_port=free_port(),
        sink_max_wait_s=0.2,
        level_interval_s=1,
        price_every_s=1,
        maintain_every_s=0,
        alert_for_s=0,
        alert_clear_for_s=0,
        eval_interval_s=1,
        teams_reload_s=1,
    )
    try:
        with (
            baogong_process(["worker"], settings.env(), tmp_path / "worker.log"),
            baogong_process(["alerts", "run"], settings.env(), tmp_path / "alerts.log"),
        ):
            spike = wait_for(lambda: firing(receivers["market"], "PriceSpike"), 90, "PriceSpike at 市场监管局")
            panic = wait_for(lambda: firing(receivers["T1-team"], "PanicBuying"), 90, "PanicBuying at T1's team")
            wait_for(lambda: firing(receivers["district"], "PanicBuying"), 30, "PanicBuying at the district bureau")
    except AssertionError:
        for name in ("worker.log", "alerts.log"):
            print(name, (tmp_path / name).read_text(errors="replace")[-4000:])
        raise
    finally:
        for r in receivers.values():
            r.close()

    circle_spike = [a for a in spike if a["labels"].get("circle") == "T1"]
    assert circle_spike and circle_spike[0]["labels"]["necessity"] == "rice"
    assert circle_spike[0]["annotations"]["phase"] == "CRISIS" and circle_spike[0]["annotations"]["plan_grade"] == "IV"
    assert panic[0]["labels"]["severity"] == "critical" and panic[0]["labels"]["circle"] == "T1"
    assert panic[0]["annotations"]["days_of_supply"] == "4.0"
    assert not firing(receivers["market"], "PanicBuying")  # the combined signal is the commerce side's
    assert not firing(receivers["T1-team"], "PriceSpike")

    with connect(url) as conn:
        level = conn.execute(
            "SELECT * FROM price_levels WHERE circle_id = 'T1' AND necessity = 'rice' ORDER BY day DESC LIMIT 1"
        ).fetchone()
        leads = conn.execute("SELECT outlet_id, price, circle_price FROM price_leads").fetchall()
    assert level is not None
    assert (level["price"], level["baseline"], level["phase"], level["plan_grade"]) == (7.0, 5.0, "CRISIS", "IV")
    assert [(r["outlet_id"], r["price"], r["circle_price"]) for r in leads] == [("O3", 12.0, 7.0)]
    messages = {k: json.loads(v) for k, v in read_topic(api.bootstrap, api.prefix + "supply.price-levels.v1")}
    rice = next(lv for lv in messages[b"T1"]["levels"] if lv["necessity"] == "rice")
    assert (rice["phase"], rice["plan_grade"], rice["spiking"]) == ("CRISIS", "IV", True)
    assert b"*" in messages  # the city-wide levels too
