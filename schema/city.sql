-- Statements of schema/city_seed.py: a generated city (schema/city_gen.py) into an empty database,
-- and reading whichever city the database holds back (the simulator's outlets).

-- name: city_rows
-- A database holds one city: `baogong seed city` refuses when any of these is non-zero.
SELECT (SELECT count(*) FROM circles) AS circles, (SELECT count(*) FROM outlets) AS outlets;

-- name: empty_city
-- `--replace`: the city and everything recorded about it. CASCADE also empties the tables that
-- reference these (api_keys, supplier_skus, teams and their members, rotations, routes; the
-- alerts' notifications, attempts, events and tasks). The catalogue, the workers' stream
-- offsets and pipeline status stay. Rollups are emptied where they are plain tables; on
-- TimescaleDB they are continuous aggregates, which their next refresh empties.
DO $$
DECLARE
    rollup text;
BEGIN
    TRUNCATE outlet_circles, outlets, communities, circles, suppliers,
             outlet_reports, outlet_stock, prices, circle_levels, circle_levels_latest,
             feed_health, ingest_claims, alerts, silences, rollup_watermarks
    CASCADE;
    FOREACH rollup IN ARRAY ARRAY['circle_levels_hourly', 'circle_levels_daily', 'prices_daily', 'feed_health_hourly']
    LOOP
        IF EXISTS (SELECT 1 FROM pg_class WHERE relname = rollup AND relkind = 'r') THEN
            EXECUTE format('TRUNCATE %I', rollup);
        END IF;
    END LOOP;
END
$$;

-- name: copy_suppliers
COPY suppliers (id, name, kind) FROM STDIN;

-- name: copy_circles
COPY circles (id, name, center_lat, center_lon, owner, team, district) FROM STDIN;

-- name: copy_communities
COPY communities (id, name, street_office, population, circle_id) FROM STDIN;

-- name: copy_outlets
COPY outlets (id, name, business_type, chain, supplier_id, community_id, lat, lon) FROM STDIN;

-- name: copy_outlet_circles
COPY outlet_circles (outlet_id, circle_id) FROM STDIN;

-- name: analyze_city
ANALYZE suppliers, circles, communities, outlets, outlet_circles;

-- ---------------------------------------------------------------- reading a city back

-- name: read_circles
SELECT id, name, center_lat, center_lon, owner, team, district FROM circles ORDER BY id;

-- name: read_communities
-- A community has no coordinates of its own in the database: its circle's centre stands in.
SELECT m.id, m.name, m.street_office, m.population, m.circle_id, c.center_lat AS lat, c.center_lon AS lon
FROM communities m JOIN circles c ON c.id = m.circle_id
ORDER BY m.id;

-- name: read_suppliers
SELECT s.id, s.name, s.kind, EXISTS (SELECT 1 FROM api_keys k WHERE k.supplier_id = s.id AND k.revoked_at IS NULL)
       AS has_key
FROM suppliers s ORDER BY s.id;

-- name: read_outlets
-- Active outlets with their circles, the home circle (their community's) first.
SELECT o.id, o.name, o.business_type, o.chain, o.supplier_id, o.community_id, o.lat, o.lon,
       m.circle_id AS home,
       array_agg(oc.circle_id ORDER BY oc.circle_id) FILTER (WHERE oc.circle_id IS NOT NULL) AS circle_ids
FROM outlets o
JOIN communities m ON m.id = o.community_id
LEFT JOIN outlet_circles oc ON oc.outlet_id = o.id
WHERE o.active
GROUP BY o.id, m.circle_id
ORDER BY o.id;

-- name: known_key_prefixes
-- Which of these key prefixes the database holds, unrevoked (`baogong simulate` finds the city's demo keys).
SELECT prefix FROM api_keys WHERE prefix = ANY(%(prefixes)s) AND revoked_at IS NULL;
