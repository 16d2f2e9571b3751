-- Rollups and retention (schema/maintain.py, migration 0016). Hourly buckets start on the UTC hour (as
-- TimescaleDB's time_bucket), daily ones at 00:00 Asia/Shanghai; Shanghai has no daylight saving, so a day is
-- always 24 hours.

-- ---------------------------------------------------------------- which engine

-- Is TimescaleDB created in this database, installed on the server, preloaded; are the rollups tables ('r')
-- or continuous aggregates ('v'; NULL before migration 0016)?
-- name: engine
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available,
       current_setting('shared_preload_libraries') ~ '(^|[\s,"])timescaledb($|[\s,"])' AS preloaded,
       (SELECT relkind::text FROM pg_class WHERE oid = to_regclass('circle_levels_hourly')) AS rollups;

-- ---------------------------------------------------------------- plain PostgreSQL: watermarks

-- name: ensure_watermark
INSERT INTO rollup_watermarks (rollup) VALUES (%(rollup)s)
ON CONFLICT (rollup) DO NOTHING;

-- Held until the refresh commits: two maintain runs refresh one after the other.
-- name: lock_watermark
SELECT refreshed_to FROM rollup_watermarks WHERE rollup = %(rollup)s FOR UPDATE;

-- name: set_watermark
UPDATE rollup_watermarks SET refreshed_to = %(refreshed_to)s, refreshed_at = now() WHERE rollup = %(rollup)s;

-- The newest change each source has seen (index scans): levels by computed_at, prices by received_at (a price
-- may be reported late), feed health by minute.
-- name: levels_changed_to
SELECT max(computed_at) AS changed_to FROM circle_levels;

-- name: prices_changed_to
SELECT max(received_at) AS changed_to FROM prices;

-- name: feed_health_changed_to
SELECT max(minute) AS changed_to FROM feed_health;

-- ---------------------------------------------------------------- plain PostgreSQL: refresh
-- Each recomputes every bucket that may hold a row changed at or after %(since)s (NULL: every bucket) and
-- upserts it; a bucket whose numbers did not change is not written (so a second run reports 0 rows).

-- name: refresh_circle_levels_hourly
INSERT INTO circle_levels_hourly AS r
    (bucket, circle_id, necessity, days_min, days_avg, days_max, days_last, stock_avg, stock_unconfirmed_avg,
     coverage_min, coverage_stock_min, status_worst, samples, days_samples)
SELECT date_trunc('hour', computed_at, 'UTC'), circle_id, necessity,
       min(days_of_supply), avg(days_of_supply), max(days_of_supply),
       (array_agg(days_of_supply ORDER BY computed_at DESC))[1],
       avg(stock), avg(stock_unconfirmed), min(coverage), min(coverage_stock),
       (ARRAY['OK', 'WATCH', 'STALE', 'SHORTAGE', 'CRITICAL'])[max(CASE status WHEN 'OK' THEN 1 WHEN 'WATCH' THEN 2
           WHEN 'STALE' THEN 3 WHEN 'SHORTAGE' THEN 4 WHEN 'CRITICAL' THEN 5 END)],
       count(*), count(days_of_supply)
FROM circle_levels
WHERE computed_at >= coalesce(date_trunc('hour', %(since)s::timestamptz, 'UTC'), '-infinity')
GROUP BY 1, 2, 3
ON CONFLICT (circle_id, necessity, bucket) DO UPDATE
SET days_min = EXCLUDED.days_min, days_avg = EXCLUDED.days_avg, days_max = EXCLUDED.days_max,
    days_last = EXCLUDED.days_last, stock_avg = EXCLUDED.stock_avg,
    stock_unconfirmed_avg = EXCLUDED.stock_unconfirmed_avg, coverage_min = EXCLUDED.coverage_min,
    coverage_stock_min = EXCLUDED.coverage_stock_min, status_worst = EXCLUDED.status_worst,
    samples = EXCLUDED.samples, days_samples = EXCLUDED.days_samples
WHERE (r.days_min, r.days_avg, r.days_max, r.days_last, r.stock_avg, r.stock_unconfirmed_avg, r.coverage_min,
       r.coverage_stock_min, r.status_worst, r.samples, r.days_samples)
      IS DISTINCT FROM
      (EXCLUDED.days_min, EXCLUDED.days_avg, EXCLUDED.days_max, EXCLUDED.days_last, EXCLUDED.stock_avg,
       EXCLUDED.stock_unconfirmed_avg, EXCLUDED.coverage_min, EXCLUDED.coverage_stock_min, EXCLUDED.status_worst,
       EXCLUDED.samples, EXCLUDED.days_samples);

-- Days from hours (24 rows per series and day at most): averages weighted by their samples, so a day holds
-- what its raw levels would give (up to floating-point rounding). Run right after the hourly refresh.
-- name: refresh_circle_levels_daily
INSERT INTO circle_levels_daily AS r
    (bucket, circle_id, necessity, days_min, days_avg, days_max, days_last, stock_avg, stock_unconfirmed_avg,
     coverage_min, coverage_stock_min, status_worst, samples, days_samples)
SELECT date_trunc('day', bucket, 'Asia/Shanghai'), circle_id, necessity,
       min(days_min), sum(days_avg * days_samples) / nullif(sum(days_samples), 0), max(days_max),
       (array_agg(days_last ORDER BY bucket DESC))[1],
       sum(stock_avg * samples) / sum(samples), sum(stock_unconfirmed_avg * samples) / sum(samples),
       min(coverage_min), min(coverage_stock_min),
       (ARRAY['OK', 'WATCH', 'STALE', 'SHORTAGE', 'CRITICAL'])[
           max(array_position(ARRAY['OK', 'WATCH', 'STALE', 'SHORTAGE', 'CRITICAL'], status_worst))],
       sum(samples), sum(days_samples)
FROM circle_levels_hourly
WHERE bucket >= coalesce(date_trunc('day', %(since)s::timestamptz, 'Asia/Shanghai'), '-infinity')
GROUP BY 1, 2, 3
ON CONFLICT (circle_id, necessity, bucket) DO UPDATE
SET days_min = EXCLUDED.days_min, days_avg = EXCLUDED.days_avg, days_max = EXCLUDED.days_max,
    days_last = EXCLUDED.days_last, stock_avg = EXCLUDED.stock_avg,
    stock_unconfirmed_avg = EXCLUDED.stock_unconfirmed_avg, coverage_min = EXCLUDED.coverage_min,
    coverage_stock_min = EXCLUDED.coverage_stock_min, status_worst = EXCLUDED.status_worst,
    samples = EXCLUDED.samples, days_samples = EXCLUDED.days_samples
WHERE (r.days_min, r.days_avg, r.days_max, r.days_last, r.stock_avg, r.stock_unconfirmed_avg, r.coverage_min,
       r.coverage_stock_min, r.status_worst, r.samples, r.days_samples)
      IS DISTINCT FROM
      (EXCLUDED.days_min, EXCLUDED.days_avg, EXCLUDED.days_max, EXCLUDED.days_last, EXCLUDED.stock_avg,
       EXCLUDED.stock_unconfirmed_avg, EXCLUDED.coverage_min, EXCLUDED.coverage_stock_min, EXCLUDED.status_worst,
       EXCLUDED.samples, EXCLUDED.days_samples);

-- The days of every price received at or after %(since)s, recomputed whole; an outlet's prices count in every
-- circle it serves.
-- name: refresh_prices_daily
WITH days AS (
    SELECT DISTINCT date_trunc('day', reported_at, 'Asia/Shanghai') AS bucket
    FROM prices WHERE received_at >= coalesce(%(since)s::timestamptz, '-infinity')
)
INSERT INTO prices_daily AS r (bucket, circle_id, necessity, price_median, price_min, price_max, outlets, reports)
SELECT d.bucket, oc.circle_id, p.necessity,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p.price), min(p.price), max(p.price),
       count(DISTINCT p.outlet_id), count(*)
FROM days d
JOIN prices p ON p.reported_at >= d.bucket AND p.reported_at < d.bucket + interval '24 hours'
JOIN outlet_circles oc ON oc.outlet_id = p.outlet_id
GROUP BY 1, 2, 3
ON CONFLICT (circle_id, necessity, bucket) DO UPDATE
SET price_median = EXCLUDED.price_median, price_min = EXCLUDED.price_min, price_max = EXCLUDED.price_max,
    outlets = EXCLUDED.outlets, reports = EXCLUDED.reports
WHERE (r.price_median, r.price_min, r.price_max, r.outlets, r.reports)
      IS DISTINCT FROM
      (EXCLUDED.price_median, EXCLUDED.price_min, EXCLUDED.price_max, EXCLUDED.outlets, EXCLUDED.reports);

-- name: refresh_feed_health_hourly
INSERT INTO feed_health_hourly AS r (bucket, supplier_id, accepted, rejected, duplicates, dead_lettered)
SELECT date_trunc('hour', minute, 'UTC'), supplier_id,
       sum(accepted), sum(rejected), sum(duplicates), sum(dead_lettered)
FROM feed_health
WHERE minute >= coalesce(date_trunc('hour', %(since)s::timestamptz, 'UTC'), '-infinity')
GROUP BY 1, 2
ON CONFLICT (supplier_id, bucket) DO UPDATE
SET accepted = EXCLUDED.accepted, rejected = EXCLUDED.rejected, duplicates = EXCLUDED.duplicates,
    dead_lettered = EXCLUDED.dead_lettered
WHERE (r.accepted, r.rejected, r.duplicates, r.dead_lettered)
      IS DISTINCT FROM (EXCLUDED.accepted, EXCLUDED.rejected, EXCLUDED.duplicates, EXCLUDED.dead_lettered);

-- ---------------------------------------------------------------- plain PostgreSQL: retention

-- name: purge_circle_levels
DELETE FROM circle_levels WHERE computed_at < %(before)s;

-- name: purge_outlet_reports
DELETE FROM outlet_reports WHERE reported_at < %(before)s;

-- name: purge_prices
DELETE FROM prices WHERE reported_at < %(before)s;

-- name: purge_feed_health
DELETE FROM feed_health WHERE minute < %(before)s;

-- name: purge_circle_levels_hourly
DELETE FROM circle_levels_hourly WHERE bucket < %(before)s;

-- name: purge_feed_health_hourly
DELETE FROM feed_health_hourly WHERE bucket < %(before)s;

-- name: purge_circle_levels_daily
DELETE FROM circle_levels_daily WHERE bucket < %(before)s;

-- name: purge_prices_daily
DELETE FROM prices_daily WHERE bucket < %(before)s;

-- ---------------------------------------------------------------- TimescaleDB

-- Baogong's policy jobs in the order maintain runs them: refreshes (before raw chunks are dropped),
-- compression, retention. `relation` names the continuous aggregate, else the hypertable.
-- name: refresh_invalidated
CALL refresh_continuous_aggregate(%(view)s::regclass, NULL, NULL);

-- name: timescaledb_jobs
SELECT j.job_id, j.proc_name, coalesce(ca.view_name, j.hypertable_name)::text AS relation
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.continuous_aggregates ca
       ON ca.materialization_hypertable_schema = j.hypertable_schema
      AND ca.materialization_hypertable_name = j.hypertable_name
WHERE j.proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression', 'policy_retention')
ORDER BY CASE j.proc_name WHEN 'policy_refresh_continuous_aggregate' THEN 1 WHEN 'policy_compression' THEN 2
         ELSE 3 END, j.job_id;

-- Outside any transaction block: compression and retention jobs commit as they go.
-- name: run_job
CALL run_job(%(job_id)s);

-- name: timescaledb_job_errors
SELECT job_id, proc_name, finish_time, sqlerrcode, err_message
FROM timescaledb_information.job_errors
WHERE finish_time >= %(since)s
ORDER BY finish_time DESC
LIMIT 20;
