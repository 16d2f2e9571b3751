-- Rollups of the time series, and a read-only role for Grafana (issue 10, points 1, 2, 6).
--
-- Panels and the daily report read these instead of the raw history. The relations have the same names and
-- columns on both engines, so every query reading them is the same:
--
-- * plain PostgreSQL: tables with primary keys, refreshed incrementally by `baogong maintain`
--   (schema/maintain.py, schema/rollups.sql), which also deletes raw rows older than BAOGONG_RETENTION_DAYS;
-- * TimescaleDB (the extension is created in this database, migration 0003): continuous aggregates created
--   WITH NO DATA (allowed inside this migration's transaction; only WITH DATA is not), with refresh,
--   compression and retention policies; `baogong maintain` runs those jobs with CALL run_job.
--
-- Buckets are timestamptz: the start of the hour, or of the day in Asia/Shanghai (00:00 +08 = 16:00 UTC the
-- day before). `days_samples` (levels with a days_of_supply) is an extra column beside the agreed ones: it
-- lets the plain engine roll days up from hours with exactly the averages the raw rows give.
--
-- Sizes (demo city: 10 circles x 12 necessities = 120 series, a level every 5 s): circle_levels grows by
-- 120 x 17,280 = 2.1 M rows a day (~0.3 GB); kept 35 days (compressed after 2 on TimescaleDB, chunks of 1 day
-- from 0003). A city of 200 circles: 41 M rows a day, ~6 GB a day uncompressed, still one chunk a day.
-- circle_levels_hourly: 2,880 rows a day for the demo (57,600 for 200 circles), kept 180 days;
-- circle_levels_daily and prices_daily: one row per circle, necessity and day, kept 3 years (1095 days);
-- feed_health_hourly: one row per supplier and hour, kept 180 days. Plain PostgreSQL uses the settings
-- BAOGONG_RETENTION_DAYS / _ROLLUP_HOURLY_DAYS / _ROLLUP_DAILY_DAYS (same defaults); on TimescaleDB the
-- intervals below are the policies (change them with remove_retention_policy / add_retention_policy).

-- Prices arrive late (reported_at up to the retention window in the past): the plain refresh finds the days
-- touched since its last run by received_at. feed_health is found and purged by minute.
CREATE INDEX prices_received ON prices (received_at);
CREATE INDEX feed_health_minute ON feed_health (minute);

-- Where each plain-engine rollup was last refreshed up to (the newest change it had seen); unused on
-- TimescaleDB, whose continuous aggregates keep their own invalidation log.
CREATE TABLE rollup_watermarks (
    rollup          text PRIMARY KEY,
    refreshed_to    timestamptz,                        -- NULL: never refreshed
    refreshed_at    timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- feed health becomes a hypertable too (continuous aggregates need one); its index above is its time index.
        PERFORM create_hypertable('feed_health', 'minute', chunk_time_interval => interval '7 days',
                                  migrate_data => true, create_default_indexes => false);

        CREATE MATERIALIZED VIEW circle_levels_hourly WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
        SELECT time_bucket(interval '1 hour', computed_at) AS bucket, circle_id, necessity,
               min(days_of_supply) AS days_min, avg(days_of_supply) AS days_avg, max(days_of_supply) AS days_max,
               (array_agg(days_of_supply ORDER BY computed_at DESC))[1] AS days_last,
               avg(stock) AS stock_avg, avg(stock_unconfirmed) AS stock_unconfirmed_avg,
               min(coverage) AS coverage_min, min(coverage_stock) AS coverage_stock_min,
               (ARRAY['OK', 'WATCH', 'STALE', 'SHORTAGE', 'CRITICAL'])[max(CASE status WHEN 'OK' THEN 1 WHEN 'WATCH' THEN 2
                   WHEN 'STALE' THEN 3 WHEN 'SHORTAGE' THEN 4 WHEN 'CRITICAL' THEN 5 END)] AS status_worst,
               count(*)::integer AS samples, count(days_of_supply)::integer AS days_samples
        FROM circle_levels
        GROUP BY 1, 2, 3
        WITH NO DATA;

        CREATE MATERIALIZED VIEW circle_levels_daily WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
        SELECT time_bucket(interval '1 day', computed_at, 'Asia/Shanghai') AS bucket, circle_id, necessity,
               min(days_of_supply) AS days_min, avg(days_of_supply) AS days_avg, max(days_of_supply) AS days_max,
               (array_agg(days_of_supply ORDER BY computed_at DESC))[1] AS days_last,
               avg(stock) AS stock_avg, avg(stock_unconfirmed) AS stock_unconfirmed_avg,
               min(coverage) AS coverage_min, min(coverage_stock) AS coverage_stock_min,
               (ARRAY['OK', 'WATCH', 'STALE', 'SHORTAGE', 'CRITICAL'])[max(CASE status WHEN 'OK' THEN 1 WHEN 'WATCH' THEN 2
                   WHEN 'STALE' THEN 3 WHEN 'SHORTAGE' THEN 4 WHEN 'CRITICAL' THEN 5 END)] AS status_worst,
               count(*)::integer AS samples, count(days_of_supply)::integer AS days_samples
        FROM circle_levels
        GROUP BY 1, 2, 3
        WITH NO DATA;

        -- A join with one plain table (outlet_circles): an outlet's prices count in every circle it serves.
        -- A change to outlet_circles alone does not invalidate old buckets (TimescaleDB tracks the hypertable only).
        CREATE MATERIALIZED VIEW prices_daily WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
        SELECT time_bucket(interval '1 day', p.reported_at, 'Asia/Shanghai') AS bucket, oc.circle_id, p.necessity,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY p.price) AS price_median,
               min(p.price) AS price_min, max(p.price) AS price_max,
               count(DISTINCT p.outlet_id)::integer AS outlets, count(*)::integer AS reports
        FROM prices p JOIN outlet_circles oc ON oc.outlet_id = p.outlet_id
        GROUP BY 1, 2, 3
        WITH NO DATA;

        CREATE MATERIALIZED VIEW feed_health_hourly WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
        SELECT time_bucket(interval '1 hour', minute) AS bucket, supplier_id,
               sum(accepted)::bigint AS accepted, sum(rejected)::bigint AS rejected,
               sum(duplicates)::bigint AS duplicates, sum(dead_lettered)::bigint AS dead_lettered
        FROM feed_health
        GROUP BY 1, 2
        WITH NO DATA;

        -- Refresh: what changed in the last days (late prices: the last 35), never the bucket still open.
        PERFORM add_continuous_aggregate_policy('circle_levels_hourly', start_offset => interval '3 hours',
            end_offset => interval '1 hour', schedule_interval => interval '5 minutes');
        PERFORM add_continuous_aggregate_policy('circle_levels_daily', start_offset => interval '3 days',
            end_offset => interval '1 hour', schedule_interval => interval '1 hour');
        PERFORM add_continuous_aggregate_policy('prices_daily', start_offset => interval '35 days',
            end_offset => interval '1 hour', schedule_interval => interval '1 hour');
        PERFORM add_continuous_aggregate_policy('feed_health_hourly', start_offset => interval '3 hours',
            end_offset => interval '1 hour', schedule_interval => interval '5 minutes');

        -- Compression of the raw history (segments by series; the primary keys' columns are all covered).
        ALTER TABLE circle_levels SET (timescaledb.compress, timescaledb.compress_segmentby = 'circle_id, necessity',
                                       timescaledb.compress_orderby = 'computed_at DESC');
        ALTER TABLE outlet_reports SET (timescaledb.compress, timescaledb.compress_segmentby = 'outlet_id',
                                        timescaledb.compress_orderby = 'reported_at DESC, necessity');
        ALTER TABLE prices SET (timescaledb.compress, timescaledb.compress_segmentby = 'outlet_id',
                                timescaledb.compress_orderby = 'reported_at DESC, necessity');
        ALTER TABLE feed_health SET (timescaledb.compress, timescaledb.compress_segmentby = 'supplier_id',
                                     timescaledb.compress_orderby = 'minute DESC, source');
        PERFORM add_compression_policy('circle_levels', compress_after => interval '2 days');
        PERFORM add_compression_policy('outlet_reports', compress_after => interval '2 days');
        PERFORM add_compression_policy('prices', compress_after => interval '14 days');
        PERFORM add_compression_policy('feed_health', compress_after => interval '14 days');

        -- Retention: raw 35 days (BAOGONG_RETENTION_DAYS' default), rollups longer.
        PERFORM add_retention_policy('circle_levels', drop_after => interval '35 days');
        PERFORM add_retention_policy('outlet_reports', drop_after => interval '35 days');
        PERFORM add_retention_policy('prices', drop_after => interval '35 days');
        PERFORM add_retention_policy('feed_health', drop_after => interval '35 days');
        PERFORM add_retention_policy('circle_levels_hourly', drop_after => interval '180 days');
        PERFORM add_retention_policy('feed_health_hourly', drop_after => interval '180 days');
        PERFORM add_retention_policy('circle_levels_daily', drop_after => interval '1095 days');
        PERFORM add_retention_policy('prices_daily', drop_after => interval '1095 days');
    ELSE
        CREATE TABLE circle_levels_hourly (
            bucket                  timestamptz NOT NULL,
            circle_id               text NOT NULL,
            necessity               text NOT NULL,
            days_min                double precision,
            days_avg                double precision,
            days_max                double precision,
            days_last               double precision,
            stock_avg               double precision,
            stock_unconfirmed_avg   double precision,
            coverage_min            double precision,
            coverage_stock_min      double precision,
            status_worst            text NOT NULL,
            samples                 integer NOT NULL,
            days_samples            integer NOT NULL,
            PRIMARY KEY (circle_id, necessity, bucket)
        );
        CREATE INDEX circle_levels_hourly_bucket ON circle_levels_hourly (bucket);
        CREATE TABLE circle_levels_daily (LIKE circle_levels_hourly INCLUDING ALL);

        CREATE TABLE prices_daily (
            bucket          timestamptz NOT NULL,
            circle_id       text NOT NULL,
            necessity       text NOT NULL,
            price_median    double precision,
            price_min       double precision,
            price_max       double precision,
            outlets         integer NOT NULL,
            reports         integer NOT NULL,
            PRIMARY KEY (circle_id, necessity, bucket)
        );
        CREATE INDEX prices_daily_bucket ON prices_daily (bucket);

        CREATE TABLE feed_health_hourly (
            bucket          timestamptz NOT NULL,
            supplier_id     text NOT NULL,
            accepted        bigint NOT NULL,
            rejected        bigint NOT NULL,
            duplicates      bigint NOT NULL,
            dead_lettered   bigint NOT NULL,
            PRIMARY KEY (supplier_id, bucket)
        );
        CREATE INDEX feed_health_hourly_bucket ON feed_health_hourly (bucket);
    END IF;
END
$$;

-- The role Grafana's datasource uses: read what panels need, nothing else. NOLOGIN here; the operator gives
-- it a login (README, "Storage"). Roles are cluster-wide: created once, by whichever database migrates first.
DO $$
BEGIN
    CREATE ROLE baogong_grafana NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO baogong_grafana', current_schema());
END
$$;
-- Rollups and latest tables; the reference data panels label with; alerts (their annotations are the
-- summaries responders were paged with) and their history; supply tasks; feed and pipeline health; outlets
-- and their latest stock (silent outlets). Never api_keys, responder_keys, ingest_claims, teams' contacts,
-- notifications; no raw reports or prices (panels read the rollups).
GRANT SELECT ON circle_levels_hourly, circle_levels_daily, prices_daily, feed_health_hourly,
                circle_levels_latest, circle_levels, circles, communities, necessities, business_types,
                alerts, alert_events, supply_tasks, pipeline_status, feed_health, outlets, outlet_circles,
                outlet_stock
    TO baogong_grafana;
GRANT SELECT (id, name, kind) ON suppliers TO baogong_grafana;
