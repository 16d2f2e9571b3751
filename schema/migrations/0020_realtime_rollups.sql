-- The rollups include the hour and the day still open, on TimescaleDB as on plain PostgreSQL (issue 10, point 1).
--
-- 0016 created the continuous aggregates with materialized_only = true: they held only buckets a refresh had
-- completed, so today's median price and the current hour of every circle were missing from the panels and the
-- daily report until the bucket ended and the next refresh ran, while the plain engine's tables (refreshed by
-- `baogong maintain` up to the newest row) showed them. Real-time aggregation reads the not yet materialised tail
-- from the hypertable at query time, so both engines answer the same. On plain PostgreSQL this does nothing.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        ALTER MATERIALIZED VIEW circle_levels_hourly SET (timescaledb.materialized_only = false);
        ALTER MATERIALIZED VIEW circle_levels_daily SET (timescaledb.materialized_only = false);
        ALTER MATERIALIZED VIEW prices_daily SET (timescaledb.materialized_only = false);
        ALTER MATERIALIZED VIEW feed_health_hourly SET (timescaledb.materialized_only = false);
    END IF;
END
$$;
