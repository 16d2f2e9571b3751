-- Which stock counts, in one place: every level query (circles, districts,
-- the city) reads it from here.
--
-- counted_stock(at): each active outlet's latest stock row per necessity,
-- reported at or after the outlet was last activated (a reactivated outlet's
-- old stock never comes back), with `fresh` (inside the necessity's freshness
-- window as of `at`, or later than `at`) and `expected` (the outlet's business
-- type is expected to carry the necessity, which drives outlet coverage).
-- A plain SQL function: the planner inlines it into the calling query.
CREATE FUNCTION counted_stock(at timestamptz)
RETURNS TABLE (outlet_id text, necessity text, quantity double precision, sold_24h double precision,
               reported_at timestamptz, fresh boolean, expected boolean)
LANGUAGE sql STABLE AS $$
    SELECT s.outlet_id, s.necessity, s.quantity, s.sold_24h, s.reported_at,
           s.reported_at >= at - make_interval(mins => n.freshness_minutes),
           btn.necessity IS NOT NULL
    FROM outlet_stock s
    JOIN outlets o ON o.id = s.outlet_id AND o.active
     AND (o.active_since IS NULL OR s.reported_at >= o.active_since)
    JOIN necessities n ON n.code = s.necessity
    LEFT JOIN business_type_necessities btn ON btn.business_type = o.business_type AND btn.necessity = s.necessity
$$;
