-- Price watch (schema/price_store.py, migration 0022). Days are Asia/Shanghai days; '*' is the city-wide scope.

-- ---------------------------------------------------------------- one pass: inputs

-- Daily medians of outlet prices per circle and necessity, and city-wide: computed from the raw prices for the
-- recent days [%(raw_from)s, %(today)s) (they still change: late reports), read from the prices_daily rollup
-- for the older window [%(from)s, %(raw_from)s) and for last year's weeks [%(ly_from)s, %(ly_to)s). A city-wide
-- median counts each outlet's reports once; from the rollup it is the median of the circles' medians (the
-- rollup keeps no city-wide row).
-- name: price_history
WITH raw AS (
    SELECT (p.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, oc.circle_id, p.necessity,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY p.price) AS median
    FROM prices p JOIN outlet_circles oc ON oc.outlet_id = p.outlet_id
    WHERE p.reported_at >= %(raw_from)s AND p.reported_at < %(today)s
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT (p.reported_at AT TIME ZONE 'Asia/Shanghai')::date, '*', p.necessity,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY p.price)
    FROM prices p
    WHERE p.reported_at >= %(raw_from)s AND p.reported_at < %(today)s
    GROUP BY 1, 3
), rolled AS (
    SELECT (bucket AT TIME ZONE 'Asia/Shanghai')::date AS day, circle_id, necessity, price_median AS median
    FROM prices_daily
    WHERE price_median IS NOT NULL
      AND ((bucket >= %(from)s AND bucket < %(raw_from)s) OR (bucket >= %(ly_from)s AND bucket < %(ly_to)s))
)
SELECT day, circle_id, necessity, median FROM raw
UNION ALL
SELECT day, circle_id, necessity, median FROM rolled
UNION ALL
SELECT day, '*', necessity, percentile_cont(0.5) WITHIN GROUP (ORDER BY median) FROM rolled GROUP BY day, necessity;

-- The current price per circle and necessity, and city-wide: the median over active outlets of each outlet's
-- latest price reported in (%(fresh_from)s, %(now)s].
-- name: price_current
WITH latest AS (
    SELECT DISTINCT ON (p.outlet_id, p.necessity) p.outlet_id, p.necessity, p.price
    FROM prices p
    WHERE p.reported_at > %(fresh_from)s AND p.reported_at <= %(now)s
    ORDER BY p.outlet_id, p.necessity, p.reported_at DESC
), active AS (
    SELECT l.* FROM latest l JOIN outlets o ON o.id = l.outlet_id AND o.active
)
SELECT oc.circle_id, a.necessity, percentile_cont(0.5) WITHIN GROUP (ORDER BY a.price) AS price,
       count(*)::integer AS outlets
FROM active a JOIN outlet_circles oc ON oc.outlet_id = a.outlet_id
GROUP BY 1, 2
UNION ALL
SELECT '*', a.necessity, percentile_cont(0.5) WITHIN GROUP (ORDER BY a.price), count(*)::integer
FROM active a
GROUP BY 2;

-- Each active outlet's latest fresh price in the circles and necessities given (pairs of equal arrays): the
-- candidates for gouging leads.
-- name: price_outlets_latest
WITH wanted AS (
    SELECT * FROM unnest(%(circles)s::text[], %(necessities)s::text[]) AS w (circle_id, necessity)
)
SELECT DISTINCT ON (p.outlet_id, p.necessity, w.circle_id) p.outlet_id, w.circle_id, p.necessity, p.price,
       p.reported_at
FROM wanted w
JOIN outlet_circles oc ON oc.circle_id = w.circle_id
JOIN outlets o ON o.id = oc.outlet_id AND o.active
JOIN prices p ON p.outlet_id = oc.outlet_id AND p.necessity = w.necessity
WHERE p.reported_at > %(fresh_from)s AND p.reported_at <= %(now)s
ORDER BY p.outlet_id, p.necessity, w.circle_id, p.reported_at DESC;

-- ---------------------------------------------------------------- one pass: outputs

-- name: upsert_price_level
INSERT INTO price_levels (circle_id, necessity, day, computed_at, price, outlets, baseline, baseline_kind,
                          history_days, sd, deviation, phase, rise_day, rise_week, plan_grade, stale, spiking)
VALUES (%(circle_id)s, %(necessity)s, %(day)s, %(computed_at)s, %(price)s, %(outlets)s, %(baseline)s,
        %(baseline_kind)s, %(history_days)s, %(sd)s, %(deviation)s, %(phase)s, %(rise_day)s, %(rise_week)s,
        %(plan_grade)s, %(stale)s, %(spiking)s)
ON CONFLICT (circle_id, necessity, day) DO UPDATE
SET computed_at = EXCLUDED.computed_at, price = EXCLUDED.price, outlets = EXCLUDED.outlets,
    baseline = EXCLUDED.baseline, baseline_kind = EXCLUDED.baseline_kind, history_days = EXCLUDED.history_days,
    sd = EXCLUDED.sd, deviation = EXCLUDED.deviation, phase = EXCLUDED.phase, rise_day = EXCLUDED.rise_day,
    rise_week = EXCLUDED.rise_week, plan_grade = EXCLUDED.plan_grade, stale = EXCLUDED.stale,
    spiking = EXCLUDED.spiking
WHERE price_levels.computed_at <= EXCLUDED.computed_at;

-- name: upsert_price_lead
INSERT INTO price_leads AS l (outlet_id, necessity, circle_id, day, first_at, last_at, price, circle_price,
                              ratio_max, phase, plan_grade)
VALUES (%(outlet_id)s, %(necessity)s, %(circle_id)s, %(day)s, %(at)s, %(at)s, %(price)s, %(circle_price)s,
        %(ratio)s, %(phase)s, %(plan_grade)s)
ON CONFLICT (outlet_id, necessity, circle_id, day) DO UPDATE
SET last_at = greatest(l.last_at, EXCLUDED.last_at), price = EXCLUDED.price, circle_price = EXCLUDED.circle_price,
    ratio_max = greatest(l.ratio_max, EXCLUDED.ratio_max), phase = EXCLUDED.phase, plan_grade = EXCLUDED.plan_grade;

-- ---------------------------------------------------------------- readers

-- The newest level of every scope and necessity (rows of the last 7 stored days: a scope no pass graded for a
-- week has gone), with names; circles since removed are left out.
-- name: price_levels_latest
SELECT DISTINCT ON (pl.circle_id, pl.necessity)
       pl.*, CASE WHEN pl.circle_id = '*' THEN '全市' ELSE c.name END AS circle_name,
       n.name_zh AS necessity_name, n.unit
FROM price_levels pl
JOIN necessities n ON n.code = pl.necessity
LEFT JOIN circles c ON c.id = pl.circle_id
WHERE pl.day >= (SELECT max(day) FROM price_levels) - 7
  AND (pl.circle_id = '*' OR c.id IS NOT NULL)
ORDER BY pl.circle_id, pl.necessity, pl.day DESC;

-- The combined signal's subjects: every circle's newest price level beside its newest stock level.
-- name: panic_subjects
SELECT DISTINCT ON (pl.circle_id, pl.necessity)
       pl.*, c.name AS circle_name, n.name_zh AS necessity_name, n.unit,
       l.status AS stock_status, l.days_of_supply, l.computed_at AS level_computed_at, l.lag_s, n.watch_days
FROM price_levels pl
JOIN circles c ON c.id = pl.circle_id
JOIN necessities n ON n.code = pl.necessity
LEFT JOIN circle_levels_latest l ON l.circle_id = pl.circle_id AND l.necessity = pl.necessity
WHERE pl.day >= (SELECT max(day) FROM price_levels) - 7
ORDER BY pl.circle_id, pl.necessity, pl.day DESC;

-- Gouging leads since %(since)s (a day), newest first, optionally of one circle and/or necessity.
-- name: price_leads
SELECT l.*, o.name AS outlet_name, o.supplier_id, s.name AS supplier_name, n.name_zh AS necessity_name, n.unit
FROM price_leads l
JOIN outlets o ON o.id = l.outlet_id
JOIN necessities n ON n.code = l.necessity
LEFT JOIN suppliers s ON s.id = o.supplier_id
WHERE l.day >= %(since)s
  AND (%(circle)s::text IS NULL OR l.circle_id = %(circle)s)
  AND (%(necessity)s::text IS NULL OR l.necessity = %(necessity)s)
ORDER BY l.day DESC, l.ratio_max DESC, l.outlet_id;

-- One outlet's daily prices of a necessity since %(since)s, beside its circle's daily median: a lead's history.
-- name: outlet_price_history
WITH mine AS (
    SELECT (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, min(price) AS low, max(price) AS high,
           (array_agg(price ORDER BY reported_at DESC))[1] AS last
    FROM prices
    WHERE outlet_id = %(outlet_id)s AND necessity = %(necessity)s AND reported_at >= %(since)s
    GROUP BY 1
)
SELECT m.day, m.low, m.high, m.last, pl.price AS circle_price, pl.baseline AS circle_baseline
FROM mine m
LEFT JOIN price_levels pl ON pl.circle_id = %(circle_id)s AND pl.necessity = %(necessity)s AND pl.day = m.day
ORDER BY m.day;

-- The price levels of day %(day)s that were not calm (spiking, STRESS, or stale), worst first: the daily
-- report's price section.
-- name: price_levels_of_day
SELECT pl.*, CASE WHEN pl.circle_id = '*' THEN '全市' ELSE c.name END AS circle_name, n.name_zh AS necessity_name,
       n.unit
FROM price_levels pl
JOIN necessities n ON n.code = pl.necessity
LEFT JOIN circles c ON c.id = pl.circle_id
WHERE pl.day = %(day)s AND (pl.spiking OR pl.stale OR pl.phase = 'STRESS')
ORDER BY pl.spiking DESC, pl.stale, pl.deviation DESC NULLS LAST, pl.circle_id, pl.necessity;
