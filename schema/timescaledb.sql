-- Converting a database set up on plain PostgreSQL to TimescaleDB (`baogong migrate --timescaledb`,
-- schema/timescaledb.py). The end state is the one migrations 0003, 0016 and 0020 give a database created
-- on TimescaleDB: the same hypertables, chunk intervals, real-time continuous aggregates, compression and
-- retention policies. Keep them in step: tests/integration/test_timescaledb.py checks both where TimescaleDB runs.

-- name: create_extension
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- name: relkind
SELECT relkind::text AS relkind FROM pg_class WHERE oid = to_regclass(%(relation)s);

-- name: create_hypertable
SELECT create_hypertable(%(relation)s::regclass, %(column)s::name, chunk_time_interval => %(chunk)s::interval,
                         create_default_indexes => false);

-- name: cagg_circle_levels_hourly
CREATE MATERIALIZED VIEW circle_levels_hourly WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
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

-- name: cagg_circle_levels_daily
CREATE MATERIALIZED VIEW circle_levels_daily WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
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

-- name: cagg_prices_daily
CREATE MATERIALIZED VIEW prices_daily WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(interval '1 day', p.reported_at, 'Asia/Shanghai') AS bucket, oc.circle_id, p.necessity,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.price) AS price_median,
       min(p.price) AS price_min, max(p.price) AS price_max,
       count(DISTINCT p.outlet_id)::integer AS outlets, count(*)::integer AS reports
FROM prices p JOIN outlet_circles oc ON oc.outlet_id = p.outlet_id
GROUP BY 1, 2, 3
WITH NO DATA;

-- name: cagg_feed_health_hourly
CREATE MATERIALIZED VIEW feed_health_hourly WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(interval '1 hour', minute) AS bucket, supplier_id,
       sum(accepted)::bigint AS accepted, sum(rejected)::bigint AS rejected,
       sum(duplicates)::bigint AS duplicates, sum(dead_lettered)::bigint AS dead_lettered
FROM feed_health
GROUP BY 1, 2
WITH NO DATA;

-- name: policies
SELECT add_continuous_aggregate_policy('circle_levels_hourly', start_offset => interval '3 hours',
           end_offset => interval '1 hour', schedule_interval => interval '5 minutes'),
       add_continuous_aggregate_policy('circle_levels_daily', start_offset => interval '3 days',
           end_offset => interval '1 hour', schedule_interval => interval '1 hour'),
       add_continuous_aggregate_policy('prices_daily', start_offset => interval '35 days',
           end_offset => interval '1 hour', schedule_interval => interval '1 hour'),
       add_continuous_aggregate_policy('feed_health_hourly', start_offset => interval '3 hours',
           end_offset => interval '1 hour', schedule_interval => interval '5 minutes');

-- name: compression
ALTER TABLE circle_levels SET (timescaledb.compress, timescaledb.compress_segmentby = 'circle_id, necessity',
                               timescaledb.compress_orderby = 'computed_at DESC');
ALTER TABLE outlet_reports SET (timescaledb.compress, timescaledb.compress_segmentby = 'outlet_id',
                                timescaledb.compress_orderby = 'reported_at DESC, necessity');
ALTER TABLE prices SET (timescaledb.compress, timescaledb.compress_segmentby = 'outlet_id',
                        timescaledb.compress_orderby = 'reported_at DESC, necessity');
ALTER TABLE feed_health SET (timescaledb.compress, timescaledb.compress_segmentby = 'supplier_id',
                             timescaledb.compress_orderby = 'minute DESC, source');
SELECT add_compression_policy('circle_levels', compress_after => interval '2 days'),
       add_compression_policy('outlet_reports', compress_after => interval '2 days'),
       add_compression_policy('prices', compress_after => interval '14 days'),
       add_compression_policy('feed_health', compress_after => interval '14 days');

-- name: retention
SELECT add_retention_policy('circle_levels', drop_after => interval '35 days'),
       add_retention_policy('outlet_reports', drop_after => interval '35 days'),
       add_retention_policy('prices', drop_after => interval '35 days'),
       add_retention_policy('feed_health', drop_after => interval '35 days'),
       add_retention_policy('circle_levels_hourly', drop_after => interval '180 days'),
       add_retention_policy('feed_health_hourly', drop_after => interval '180 days'),
       add_retention_policy('circle_levels_daily', drop_after => interval '1095 days'),
       add_retention_policy('prices_daily', drop_after => interval '1095 days');

-- name: grants
GRANT SELECT ON circle_levels_hourly, circle_levels_daily, prices_daily, feed_health_hourly, circle_levels,
                feed_health
    TO baogong_grafana;
