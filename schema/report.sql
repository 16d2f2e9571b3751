-- The daily situation report (baogong/report/data.py; issue 10 point 8). Every statement takes the day as
-- a window of Asia/Shanghai time: %(start)s (the day's 00:00 +08), %(end)s (the next day's 00:00, or now
-- for today) and %(prev_start)s (the day before's 00:00). Nothing here scans raw reports: levels come from
-- the hourly rollup (plus the raw hours it does not have yet) and from circle_levels by its primary key
-- (circle, necessity, computed_at), alerts and tasks are small tables, feed health is per supplier.

-- name: report_circles
SELECT c.id AS circle_id, c.name, c.district, coalesce(sum(m.population), 0)::bigint AS population
FROM circles c
LEFT JOIN communities m ON m.circle_id = c.id
GROUP BY c.id, c.name, c.district
ORDER BY c.id;

-- name: report_necessities
SELECT code AS necessity, name_zh, unit, watch_days, shortage_days, critical_days, min_coverage
FROM necessities
ORDER BY code;

-- Hours come from the rollup circle_levels_hourly (migration 0016) before its newest bucket, and from
-- circle_levels from that bucket on (the newest rolled-up hour may have been refreshed while still open, and
-- before the first `baogong maintain` the rollup is empty), so a report for today is complete without
-- waiting for a refresh. Both cut hours on the UTC hour (whole hours in Asia/Shanghai too).

-- Per circle and necessity, for the day and the day before: the worst status (CRITICAL > SHORTAGE >
-- STALE > WATCH > OK, the rollups' order), the lowest days of supply, how many levels.
-- name: report_status_days
WITH rolled AS (
    SELECT coalesce(max(bucket), %(prev_start)s) AS upto
    FROM circle_levels_hourly WHERE bucket >= %(prev_start)s AND bucket < %(end)s
), hours AS (
    SELECT h.bucket, h.circle_id, h.necessity, h.status_worst, h.days_min, h.samples
    FROM circle_levels_hourly h, rolled
    WHERE h.bucket >= %(prev_start)s AND h.bucket < least(rolled.upto, %(end)s)
    UNION ALL
    SELECT date_trunc('hour', l.computed_at, 'UTC'), l.circle_id, l.necessity,
           (array_agg(l.status ORDER BY CASE l.status WHEN 'CRITICAL' THEN 0 WHEN 'SHORTAGE' THEN 1
                                      WHEN 'STALE' THEN 2 WHEN 'WATCH' THEN 3 ELSE 4 END))[1],
           min(l.days_of_supply), count(*)::int
    FROM circle_levels l, rolled
    WHERE l.computed_at >= greatest(rolled.upto, %(prev_start)s) AND l.computed_at < %(end)s
    GROUP BY 1, 2, 3
)
SELECT circle_id, necessity, (bucket >= %(start)s) AS today,
       (array_agg(status_worst ORDER BY CASE status_worst WHEN 'CRITICAL' THEN 0 WHEN 'SHORTAGE' THEN 1
                                        WHEN 'STALE' THEN 2 WHEN 'WATCH' THEN 3 ELSE 4 END))[1] AS status_worst,
       min(days_min) AS days_min,
       sum(samples)::int AS samples
FROM hours
GROUP BY circle_id, necessity, (bucket >= %(start)s)
ORDER BY circle_id, necessity;

-- Days of supply per hour of the day (mean and lowest), per circle and necessity.
-- name: report_days_hourly
WITH rolled AS (
    SELECT coalesce(max(bucket), %(start)s) AS upto
    FROM circle_levels_hourly WHERE bucket >= %(start)s AND bucket < %(end)s
)
SELECT h.bucket, h.circle_id, h.necessity, h.days_avg, h.days_min
FROM circle_levels_hourly h, rolled
WHERE h.bucket >= %(start)s AND h.bucket < least(rolled.upto, %(end)s)
UNION ALL
SELECT date_trunc('hour', l.computed_at, 'UTC'), l.circle_id, l.necessity, avg(l.days_of_supply), min(l.days_of_supply)
FROM circle_levels l, rolled
WHERE l.computed_at >= greatest(rolled.upto, %(start)s) AND l.computed_at < %(end)s
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;

-- The last level of each circle and necessity in the day (`today`) and in the day before: one index probe
-- per pair. No row for a pair with no level in that day.
-- name: report_last_levels
SELECT d.today, c.id AS circle_id, n.code AS necessity, l.computed_at, l.status, l.days_of_supply, l.stock,
       l.stock_unconfirmed, l.unconfirmed_age_s, l.daily_demand, l.coverage, l.coverage_stock,
       l.outlets_expected, l.outlets_fresh, l.demand_source
FROM circles c
CROSS JOIN necessities n
CROSS JOIN (VALUES (true), (false)) AS d(today)
CROSS JOIN LATERAL (
    SELECT * FROM circle_levels x
    WHERE x.circle_id = c.id AND x.necessity = n.code
      AND x.computed_at >= CASE WHEN d.today THEN %(start)s ELSE %(prev_start)s END
      AND x.computed_at < CASE WHEN d.today THEN %(end)s ELSE %(start)s END
    ORDER BY x.computed_at DESC
    LIMIT 1
) l
ORDER BY c.id, n.code, d.today;

-- Every alert that paged someone and was open at some moment of the day, with how it was handled:
-- paged (fired, or last reopened), acknowledged, resolved (by hand: resolved_by; else it recovered),
-- escalations (alert_events 'escalated'), and its newest supply task.
-- name: report_alerts
SELECT a.id AS alert_id, a.rule, a.circle_id, a.necessity, a.severity, a.state,
       coalesce(a.reopened_at, a.starts_at) AS paged_at, a.acknowledged_at, a.acknowledged_by,
       CASE WHEN a.state = 'resolved' THEN a.ends_at END AS resolved_at, a.resolved_by,
       a.reopen_count, a.escalation_level, a.teams,
       (SELECT count(*) FROM alert_events e WHERE e.alert_id = a.id AND e.kind = 'escalated')::int AS escalations,
       t.id AS task_id, t.state AS task_state, t.target_quantity, t.dispatched_at, t.delivered_at, t.recovered_at
FROM alerts a
LEFT JOIN LATERAL (
    SELECT * FROM supply_tasks s WHERE s.alert_id = a.id ORDER BY s.id DESC LIMIT 1
) t ON true
WHERE a.starts_at IS NOT NULL AND a.starts_at < %(end)s
  AND (a.state <> 'resolved' OR a.ends_at >= %(start)s)
ORDER BY coalesce(a.reopened_at, a.starts_at), a.id;

-- Per supplier over the day: records accepted, rejected, duplicates, dead-lettered, and how many hours of the
-- day saw a record accepted (feed_health_hourly before its newest bucket, feed_health from it on); when it last
-- had a record accepted (up to the day's end, looking back a week; by the minute, from feed_health's key).
-- name: report_feed
WITH rolled AS (
    SELECT coalesce(max(bucket), %(start)s) AS upto
    FROM feed_health_hourly WHERE bucket >= %(start)s AND bucket < %(end)s
), hours AS (
    SELECT h.supplier_id, h.bucket, h.accepted, h.rejected, h.duplicates, h.dead_lettered
    FROM feed_health_hourly h, rolled
    WHERE h.bucket >= %(start)s AND h.bucket < least(rolled.upto, %(end)s)
    UNION ALL
    SELECT f.supplier_id, date_trunc('hour', f.minute, 'UTC'), sum(f.accepted), sum(f.rejected), sum(f.duplicates),
           sum(f.dead_lettered)
    FROM feed_health f, rolled
    WHERE f.minute >= greatest(rolled.upto, %(start)s) AND f.minute < %(end)s
    GROUP BY 1, 2
)
SELECT s.id AS supplier_id, s.name,
       coalesce(sum(h.accepted), 0)::bigint AS accepted,
       coalesce(sum(h.rejected), 0)::bigint AS rejected,
       coalesce(sum(h.duplicates), 0)::bigint AS duplicates,
       coalesce(sum(h.dead_lettered), 0)::bigint AS dead_lettered,
       count(DISTINCT h.bucket) FILTER (WHERE h.accepted > 0)::int AS hours_reporting,
       (SELECT max(f.minute) FROM feed_health f
        WHERE f.supplier_id = s.id AND f.accepted > 0
          AND f.minute >= %(start)s - interval '7 days' AND f.minute < %(end)s) AS last_accepted
FROM suppliers s
LEFT JOIN hours h ON h.supplier_id = s.id
GROUP BY s.id, s.name
ORDER BY s.id;
