-- Statements of schema/seed.py: the catalogue and the synthetic demo city.
-- Every write is an upsert, so seeding twice leaves the same rows.

-- ---------------------------------------------------------------- reference (catalogue)

-- name: upsert_business_type
INSERT INTO business_types (code, name_zh, name_en, category)
VALUES (%(code)s, %(name_zh)s, %(name_en)s, %(category)s)
ON CONFLICT (code) DO UPDATE
SET name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, category = EXCLUDED.category;

-- name: upsert_necessity
-- Resets a necessity's thresholds to the catalogue's defaults.
INSERT INTO necessities (code, name_zh, name_en, unit, per_capita_daily, watch_days, shortage_days,
                         critical_days, freshness_minutes, min_coverage)
VALUES (%(code)s, %(name_zh)s, %(name_en)s, %(unit)s, %(per_capita_daily)s, %(watch_days)s, %(shortage_days)s,
        %(critical_days)s, %(freshness_minutes)s, %(min_coverage)s)
ON CONFLICT (code) DO UPDATE
SET name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,
    per_capita_daily = EXCLUDED.per_capita_daily, watch_days = EXCLUDED.watch_days,
    shortage_days = EXCLUDED.shortage_days, critical_days = EXCLUDED.critical_days,
    freshness_minutes = EXCLUDED.freshness_minutes, min_coverage = EXCLUDED.min_coverage;

-- name: upsert_business_type_necessity
INSERT INTO business_type_necessities (business_type, necessity)
VALUES (%(business_type)s, %(necessity)s)
ON CONFLICT (business_type, necessity) DO NOTHING;

-- ---------------------------------------------------------------- demo city

-- name: upsert_supplier
INSERT INTO suppliers (id, name, kind)
VALUES (%(id)s, %(name)s, %(kind)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, kind = EXCLUDED.kind;

-- name: upsert_circle
INSERT INTO circles (id, name, center_lat, center_lon, owner, team, district)
VALUES (%(id)s, %(name)s, %(center_lat)s, %(center_lon)s, %(owner)s, %(team)s, %(district)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, center_lat = EXCLUDED.center_lat, center_lon = EXCLUDED.center_lon,
    owner = EXCLUDED.owner, team = EXCLUDED.team, district = EXCLUDED.district;

-- name: upsert_community
INSERT INTO communities (id, name, street_office, population, circle_id)
VALUES (%(id)s, %(name)s, %(street_office)s, %(population)s, %(circle_id)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, street_office = EXCLUDED.street_office, population = EXCLUDED.population,
    circle_id = EXCLUDED.circle_id;

-- name: create_outlet_staging
CREATE TEMP TABLE seed_outlets (
    id text, name text, business_type text, chain text, supplier_id text, community_id text,
    lat double precision, lon double precision
) ON COMMIT DROP;

-- name: copy_outlet_staging
COPY seed_outlets (id, name, business_type, chain, supplier_id, community_id, lat, lon) FROM STDIN;

-- name: upsert_outlets_from_staging
-- Leaves `active` alone: an operator's deactivation survives a re-seed.
INSERT INTO outlets (id, name, business_type, chain, supplier_id, community_id, lat, lon)
SELECT id, name, business_type, chain, supplier_id, community_id, lat, lon
FROM seed_outlets
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, business_type = EXCLUDED.business_type, chain = EXCLUDED.chain,
    supplier_id = EXCLUDED.supplier_id, community_id = EXCLUDED.community_id,
    lat = EXCLUDED.lat, lon = EXCLUDED.lon;

-- name: create_outlet_circle_staging
CREATE TEMP TABLE seed_outlet_circles (outlet_id text, circle_id text) ON COMMIT DROP;

-- name: copy_outlet_circle_staging
COPY seed_outlet_circles (outlet_id, circle_id) FROM STDIN;

-- name: delete_stale_outlet_circles
-- A demo outlet's circles are exactly the seeded ones (a re-seed with another seed moves outlets).
DELETE FROM outlet_circles oc
USING seed_outlets o
WHERE oc.outlet_id = o.id
  AND NOT EXISTS (
      SELECT 1 FROM seed_outlet_circles s WHERE s.outlet_id = oc.outlet_id AND s.circle_id = oc.circle_id
  );

-- name: insert_outlet_circles_from_staging
INSERT INTO outlet_circles (outlet_id, circle_id)
SELECT outlet_id, circle_id FROM seed_outlet_circles
ON CONFLICT (outlet_id, circle_id) DO NOTHING;

-- name: insert_api_key
-- Only the hash is stored; an existing key (even a revoked one) is left as it is.
INSERT INTO api_keys (prefix, supplier_id, key_hash)
VALUES (%(prefix)s, %(supplier_id)s, %(key_hash)s)
ON CONFLICT (prefix) DO NOTHING;

-- name: count_reference_rows
SELECT
    (SELECT count(*) FROM business_types) AS business_types,
    (SELECT count(*) FROM necessities) AS necessities,
    (SELECT count(*) FROM business_type_necessities) AS business_type_necessities,
    (SELECT count(*) FROM suppliers) AS suppliers,
    (SELECT count(*) FROM api_keys) AS api_keys,
    (SELECT count(*) FROM circles) AS circles,
    (SELECT count(*) FROM communities) AS communities,
    (SELECT count(*) FROM outlets) AS outlets,
    (SELECT count(*) FROM outlet_circles) AS outlet_circles;
