-- What `baogong demo` reads beside the live table (baogong/demo/). Days are Asia/Shanghai days.

-- Days in [%(from)s, %(today)s) that hold outlet prices, from the raw prices or the prices_daily rollup: does the
-- demo city have a price history (baogong/demo/prices.py, `price_history`)?
-- name: demo_price_days
SELECT DISTINCT (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day
FROM prices
WHERE reported_at >= %(from)s AND reported_at < %(today)s
UNION
SELECT DISTINCT (bucket AT TIME ZONE 'Asia/Shanghai')::date
FROM prices_daily
WHERE bucket >= %(from)s AND bucket < %(today)s AND price_median IS NOT NULL
ORDER BY day;

-- The newest price level of one circle and necessity.
-- name: demo_price_level
SELECT * FROM price_levels WHERE circle_id = %(circle_id)s AND necessity = %(necessity)s ORDER BY day DESC LIMIT 1;

-- The newest alert of a rule for one circle and necessity, open or resolved, since %(since)s.
-- name: demo_alert_of
SELECT id, state, severity, escalation_level FROM alerts
WHERE rule = %(rule)s AND circle_id = %(circle_id)s AND necessity = %(necessity)s AND pending_since >= %(since)s
ORDER BY id DESC LIMIT 1;

-- Each outlet's median weekday price per necessity over [%(from)s, %(today)s): its usual price, as its history has
-- it (weekend prices run higher; left out, they do not pull the median up).
-- name: demo_usual_prices
SELECT outlet_id, necessity, percentile_cont(0.5) WITHIN GROUP (ORDER BY price) AS price
FROM prices
WHERE reported_at >= %(from)s AND reported_at < %(today)s
  AND extract(isodow FROM reported_at AT TIME ZONE 'Asia/Shanghai') < 6
GROUP BY outlet_id, necessity;
