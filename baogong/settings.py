"""The one settings object, read from the environment once at each entry point.

Explicit argument beats environment beats default. Every process (API, stream
worker, alert dispatcher, CLI) builds one `Settings` with `Settings.from_env()`
and passes values down; nothing else in Baogong reads `os.environ`.

Secrets are `SecretStr`: their repr is `'**********'`, so printing or logging a
`Settings` never leaks them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from schema.circles import WALK_KM

ENV_PREFIX = "BAOGONG_"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Settings given as JSON in the environment (mappings).
_JSON_FIELDS = frozenset(
    {"escalate_after_min", "renotify_after_h", "escalate_after_min_by_kind", "renotify_after_h_by_kind"}
)


class Settings(BaseModel):
    """Everything a Baogong process needs to find its services and tune itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, host:port[,host:port]")
    database_url: SecretStr = Field(
        SecretStr("postgresql://baogong@127.0.0.1:54329/baogong"),
        description="libpq URL of the PostgreSQL/TimescaleDB database",
    )
    topic_prefix: str = Field("", description="prefix for every topic name (tenancy, test isolation)")
    state_dir: Path = Field(REPO_ROOT / ".baogong", description="where local services keep data, logs and pids")
    local_kafka: str = Field("auto", description="local broker for `baogong services up`: apache, tansu or auto")
    pg_bindir: Path | None = Field(
        None,
        description="server binaries for the local cluster of `baogong services up` (default: the newest found)",
    )
    pg_timescaledb: str = Field(
        "auto",
        pattern="^(auto|off)$",
        description="`auto`: the local cluster preloads TimescaleDB when its server has it installed; `off`: never",
    )

    api_url: str = Field("http://127.0.0.1:8088", description="where `baogong push` sends files")
    api_key: SecretStr | None = Field(None, description="the supplier key `baogong push` uses")
    api_host: str = "127.0.0.1"
    api_port: int = 8088
    api_metrics_port: int = Field(
        6067, ge=0, description="the API's Prometheus /metrics port on api_host, not the suppliers' (0: none)"
    )
    max_request_bytes: int = Field(10 * 1024 * 1024, description="HTTP bodies above this get 413")
    api_db_connections: int = Field(
        32,
        ge=2,
        description="database connections of one API process: one per request in flight, held until Kafka acks",
    )
    clock_skew_s: float = Field(300.0, description="how far in the future a reported_at may be")
    retention_days: int = Field(
        35, ge=1, description="reports older than this are rejected; `baogong maintain` deletes older raw history"
    )
    rollup_hourly_days: int = Field(180, ge=1, description="`baogong maintain` keeps hourly rollups this long")
    rollup_daily_days: int = Field(1095, ge=1, description="`baogong maintain` keeps daily rollups this long")
    maintain_every_s: float = Field(
        300.0, ge=0, description="the stream worker's leader runs `baogong maintain` this often (0: never)"
    )

    price_every_s: float = Field(
        60.0, ge=0, description="the stream worker's leader grades prices this often (0: never; schema/prices.py)"
    )
    price_fresh_h: float = Field(24.0, gt=0, description="an outlet's price counts as current this many hours")
    price_window_days: int = Field(28, ge=2, description="price baseline: median of this many daily medians")
    price_min_history_days: int = Field(7, ge=2, description="fewer daily medians in the window: no baseline")
    price_sd_floor: float = Field(0.05, ge=0, description="ALPS deviation: sd never below this share of baseline")
    price_plan_grades: str = Field(
        "IV:30/40,III:50/60,II:70/80,I:100/100",
        description="the city plan's price grades, lowest first: NAME:percent rise in a day/in a week (README)",
    )
    price_gouging_ratio: float = Field(
        0.5, gt=0, description="during a spike, an outlet above its circle's median by more than this is a lead"
    )
    price_max_age_s: float = Field(
        600.0, gt=0, description="price levels older than this are unknown to the price rules (the pass stopped)"
    )

    rate_limit_per_s: float = Field(20_000.0, description="records per second per API key (token bucket)")
    rate_limit_burst: float = Field(200_000.0, description="records an API key may send at once")
    deadletter_per_minute: float = Field(1_000.0, description="dead letters per supplier per minute, beyond: counted")
    dedup_window_h: int = Field(48, description="how long a record's idempotency key is remembered")
    body_timeout_s: float = Field(60.0, gt=0, description="a request body not received within this gets 408")
    header_timeout_s: float = Field(10.0, gt=0, description="a request's headers not received within this get 408")
    keep_alive_s: float = Field(5.0, gt=0, description="an idle keep-alive connection is closed after this")
    max_header_bytes: int = Field(16 * 1024, ge=1024, description="request line and headers above this get 431")
    max_headers: int = Field(64, ge=8, description="requests with more headers than this get 431")
    api_max_connections: int = Field(
        2048, ge=16, description="connections and requests one API process holds at once; beyond, 503 at once"
    )
    xlsx_max_unpacked_bytes: int = Field(
        100 * 1024 * 1024, description="XLSX files unpacking (zip central directory) to more than this get 413"
    )
    xlsx_max_ratio: float = Field(200.0, gt=1, description="XLSX members compressed more than this ratio get 413")
    xlsx_max_rows: int = Field(100_001, ge=2, description="XLSX sheets with more rows (header included) get 413")
    xlsx_max_columns: int = Field(64, ge=1, description="XLSX sheets with a cell past this column get 413")
    max_rejections_listed: int = Field(
        100, ge=1, description="an answer lists this many rejections; the rest are counted by reason and downloadable"
    )
    rejection_report_ttl_s: float = Field(
        3600.0, gt=0, description="GET /v1/rejections/{request_id} serves a request's full rejection list this long"
    )
    key_cache_s: float = Field(
        1.0, ge=0, le=5, description="an API process re-reads a key after this (revocation takes effect within it)"
    )

    circle_walk_km: float = Field(
        WALK_KM, gt=0, description="an outlet serves every circle whose centre is this close (schema/circles.py)"
    )
    demand_multiplier: float = Field(1.0, gt=0, description="emergency multiplier on every circle's daily demand")
    observed_demand_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="demand comes from sold_24h when the fresh outlets sending it hold this share of fresh stock",
    )
    demand_median_of: int = Field(
        5, ge=1, description="observed demand is the median of the raw rates of this many level computations"
    )

    worker_id: str = Field(
        "baogong-streams",
        description="Faust app id = the consumer group electing the leader; the consumers of a supply topic form "
        "the group <worker_id>-<topic>",
    )
    worker_port: int = Field(6066, description="Faust web port of the stream worker")
    worker_session_timeout_s: float = Field(
        10.0,
        ge=6.0,
        le=90.0,
        description="a worker not heard from this long leaves the consumer group and its partitions move on; "
        "the longest a restarted worker can wait for its killed predecessor to be dropped",
    )
    worker_instance_id: str = Field(
        "",
        description="static consumer-group membership: a worker restarting with the same id takes its partitions "
        "back at once (default: host name and worker_port; 'none' turns it off)",
    )
    partitions: int = Field(4, description="partitions of the supply topics (workers <= partitions)")
    level_interval_s: float = Field(5.0, description="seconds between circle-level computations")
    live_levels: bool = Field(
        True, description="the leader also recomputes the circles a committed batch touched, within a second"
    )
    live_interval_s: float = Field(0.25, gt=0, description="shortest time between two live level passes")
    stall_after_s: float | None = Field(
        None,
        gt=0,
        description="levels older than this are not current: rules hold still, PipelineStalled fires "
        "(default 3 x level_interval_s)",
    )
    max_lag_s: float = Field(
        60.0, gt=0, description="levels whose oldest unwritten supply report is older than this are not current"
    )
    sink_batch_size: int = Field(
        500,
        ge=1,
        description="most reports per database write (~15,000 lines of 30-line reports); 250 and 1,000 measured "
        "no faster in the scale benchmark (tests/bench/scale.py, (c))",
    )
    sink_max_wait_s: float = Field(
        0.2,
        gt=0,
        description="longest one poll of a supply consumer waits when nothing is there; a report that arrives goes "
        "on at once, so this bounds only how long a stopping worker waits for its poll",
    )
    sink_writers: int = Field(
        4,
        ge=1,
        description="database writes in flight per supply topic, one per group of partitions (partition mod this): "
        "the scale benchmark's (c) stored 46k lines/s with 1, 64k with 2, 96k with 4 (4 partitions, 2 cores)",
    )
    poison_limit: int = Field(
        100,
        ge=0,
        description="the worker stops (without acknowledging) when more messages or lines than this in a row "
        "could not be written and nothing was written in between; 0 never stops (streams/batch.py)",
    )

    eval_interval_s: float = Field(5.0, description="seconds between alert rule evaluations")
    alert_for_s: float = Field(60.0, description="a condition must hold this long before it fires")
    alert_clear_for_s: float = Field(60.0, description="recovery must hold this long before it resolves")
    hysteresis: float = Field(0.2, description="resolve only above threshold * (1 + hysteresis)")
    webhook_urls: tuple[str, ...] = Field((), description="Alertmanager-format webhook receivers (responders)")
    operator_webhook_urls: tuple[str, ...] = Field((), description="receivers of feed alerts; default webhook_urls")
    feed_window_min: int = Field(10, description="minutes of feed health the feed-quality rule looks at")
    feed_reject_ratio: float = Field(0.5, description="feed alert when this share of a feed's records is rejected")
    feed_min_rejects: int = Field(50, description="... and at least this many were rejected in the window")
    refused_ratio: float = Field(
        0.5, gt=0, le=1, description="SupplierRequestsRefused when this share of a key's requests is refused"
    )
    refused_min_requests: int = Field(20, ge=1, description="... and at least this many were refused in the window")
    notify_timeout_s: float = Field(10.0, gt=0, description="longest one notifier call may take, all included")
    notify_lease_s: float = Field(
        60.0,
        gt=0,
        description="a claimed notification is its dispatcher's this long (must exceed notify_timeout_s); "
        "after a crash it is sent again once the lease lapses",
    )
    notify_expire_h: float = Field(
        24.0, gt=0, description="a notification not delivered this long after it was queued is expired (kept, visible)"
    )
    reopen_window_s: float = Field(
        3600.0, ge=0, description="an alert recurring this soon after it resolved reopens (paged as a reopening)"
    )
    escalate_after_min: dict[str, float] = Field(
        default_factory=lambda: {"critical": 10.0, "high": 30.0},
        description="per severity (JSON): minutes a firing alert waits for an acknowledgement before the next "
        "team of the escalation chain is paged; a severity not listed never escalates",
    )
    renotify_after_h: dict[str, float] = Field(
        default_factory=lambda: {"critical": 2.0, "high": 6.0},
        description="per severity (JSON): hours an acknowledged, unresolved alert waits before it is paged again",
    )
    escalate_after_min_by_kind: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description='per kind of the team holding the alert (JSON), e.g. {"district_bureau": {"critical": 20}}',
    )
    renotify_after_h_by_kind: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="per kind of the team holding the alert (JSON): re-notification hours"
    )
    alert_timer_factor: float = Field(
        1.0, gt=0, description="emergency mode: every escalation and re-notification wait times this (0.5 halves)"
    )
    teams_reload_s: float = Field(30.0, gt=0, description="how often the alert dispatcher reloads teams and routes")
    alerts_host: str = Field("127.0.0.1", description="where `baogong alerts serve` (the responder app) listens")
    alerts_port: int = Field(8089, description="port of the responder app (acknowledge, resolve, silences, links)")
    alerts_db_connections: int = Field(8, ge=1, description="database connections of the responder app")
    public_url: str = Field(
        "http://127.0.0.1:8089", description="the responder app as people reach it: the base of links in messages"
    )
    action_secret: SecretStr | None = Field(
        None, description="signs the act-on-this-alert links in messages (16+ random characters); unset: no links"
    )
    action_link_ttl_h: float = Field(24.0, gt=0, description="a link in a message works this long after it was sent")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Build settings from `BAOGONG_*` variables, with `explicit` values winning.

        Raises pydantic.ValidationError naming the variable when a value is bad.
        """
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = source.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if name.endswith("_urls"):
                values[name] = tuple(u.strip() for u in raw.split(",") if u.strip())
            elif name in _JSON_FIELDS:
                try:
                    values[name] = json.loads(raw)
                except ValueError:
                    values[name] = raw  # not JSON: the validation error names the variable
            else:
                values[name] = raw
        values.update(explicit)
        return cls.model_validate(values)

    @property
    def stall_bound_s(self) -> float:
        """How old levels may be and still count as current: `stall_after_s`, else 3 level intervals."""
        return self.stall_after_s if self.stall_after_s is not None else 3 * self.level_interval_s

    def topic(self, name: str) -> str:
        """The full name of topic `name` under this deployment's prefix."""
        return f"{self.topic_prefix}{name}"

    def env(self) -> dict[str, str]:
        """These settings as `BAOGONG_*` variables, for child processes (secrets included)."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, dict):
                value = json.dumps(value)
            out[ENV_PREFIX + name.upper()] = str(value)
        return out
