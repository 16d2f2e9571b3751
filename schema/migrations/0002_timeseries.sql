-- Time series: what outlets reported, each outlet's current level, circle levels.
-- Plain tables here; 0003 turns them into hypertables where TimescaleDB exists.

-- Every accepted report line, once: the primary key makes a redelivered
-- message a no-op (at-least-once delivery, idempotent write).
CREATE TABLE outlet_reports (
    reported_at     timestamptz NOT NULL,
    outlet_id       text NOT NULL,
    necessity       text NOT NULL,
    quantity        double precision NOT NULL,          -- canonical unit of the necessity
    sold_24h        double precision,
    supplier_id     text NOT NULL,
    message_id      text,
    received_at     timestamptz NOT NULL,
    PRIMARY KEY (outlet_id, necessity, reported_at)
);
CREATE INDEX outlet_reports_time ON outlet_reports (reported_at DESC);

-- Each outlet's latest level per necessity: a newer reported_at wins, an older
-- one arriving late never overwrites it (see queries.sql upsert_outlet_stock).
CREATE TABLE outlet_stock (
    outlet_id       text NOT NULL,
    necessity       text NOT NULL,
    quantity        double precision NOT NULL,
    sold_24h        double precision,
    reported_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (outlet_id, necessity)
);
CREATE INDEX outlet_stock_necessity ON outlet_stock (necessity);

CREATE TABLE prices (
    reported_at     timestamptz NOT NULL,
    outlet_id       text NOT NULL,
    necessity       text NOT NULL,
    price           double precision NOT NULL,          -- CNY per canonical unit
    supplier_id     text NOT NULL,
    message_id      text,
    received_at     timestamptz NOT NULL,
    PRIMARY KEY (outlet_id, necessity, reported_at)
);
CREATE INDEX prices_time ON prices (reported_at DESC);

-- Circle levels as computed by the stream worker, one row per circle,
-- necessity and computation time.
CREATE TABLE circle_levels (
    computed_at         timestamptz NOT NULL,
    circle_id           text NOT NULL,
    necessity           text NOT NULL,
    stock               double precision NOT NULL,
    daily_demand        double precision NOT NULL,
    days_of_supply      double precision,               -- NULL when demand is zero
    coverage            double precision NOT NULL,
    outlets_expected    integer NOT NULL,
    outlets_fresh       integer NOT NULL,
    status              text NOT NULL CHECK (status IN ('OK', 'WATCH', 'SHORTAGE', 'CRITICAL', 'STALE')),
    PRIMARY KEY (circle_id, necessity, computed_at)
);
CREATE INDEX circle_levels_time ON circle_levels (computed_at DESC);

-- The newest circle level, kept beside the history so dashboards and rule
-- evaluation read one small table.
CREATE TABLE circle_levels_latest (
    circle_id           text NOT NULL,
    necessity           text NOT NULL,
    computed_at         timestamptz NOT NULL,
    stock               double precision NOT NULL,
    daily_demand        double precision NOT NULL,
    days_of_supply      double precision,
    coverage            double precision NOT NULL,
    outlets_expected    integer NOT NULL,
    outlets_fresh       integer NOT NULL,
    status              text NOT NULL,
    PRIMARY KEY (circle_id, necessity)
);
