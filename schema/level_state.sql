-- Statements of streams/level_state.py: what circle levels are computed from, read in one REPEATABLE READ
-- transaction so that the version, the snapshot and every row belong to one moment (migration 0021).

-- name: repeatable_read
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: version_and_snapshot
SELECT (SELECT version FROM level_inputs_version) AS version, pg_current_snapshot()::text AS snapshot;

-- name: necessities
SELECT code, per_capita_daily, watch_days, shortage_days, critical_days, min_coverage, freshness_minutes
FROM necessities ORDER BY code;

-- name: circles
SELECT c.id, c.district, coalesce(sum(m.population), 0)::bigint AS population
FROM circles c LEFT JOIN communities m ON m.circle_id = c.id
GROUP BY c.id, c.district ORDER BY c.id;

-- name: outlets
SELECT id, active, (extract(epoch FROM active_since) * 1000000)::int8 AS active_since, business_type FROM outlets ORDER BY id;

-- name: outlet_circles
SELECT outlet_id, circle_id FROM outlet_circles;

-- name: carries
SELECT business_type, necessity FROM business_type_necessities;

-- name: stock_all
SELECT outlet_id, necessity, quantity, sold_24h, (extract(epoch FROM reported_at) * 1000000)::int8 AS reported FROM outlet_stock;

-- Rows committed since the snapshot of the previous read: written by a transaction that snapshot did not see.
-- name: stock_since
SELECT outlet_id, necessity, quantity, sold_24h, (extract(epoch FROM reported_at) * 1000000)::int8 AS reported
FROM outlet_stock
WHERE written_xid >= pg_snapshot_xmin(%(since)s::pg_snapshot)
  AND NOT pg_visible_in_snapshot(written_xid, %(since)s::pg_snapshot);

-- name: grades
SELECT circle_id, grade FROM circle_grades(%(now)s);

-- name: previous_levels
-- The latest stored level of each series of these circles (all when NULL).
SELECT circle_id, necessity, computed_at, recorded_at, demand_observed_recent, stock, stock_unconfirmed,
       daily_demand, days_of_supply, coverage, coverage_stock, outlets_expected, outlets_fresh, status,
       demand_source, grade
FROM circle_levels_latest
WHERE %(circles)s::text[] IS NULL OR circle_id = ANY(%(circles)s::text[]);
