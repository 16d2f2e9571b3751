-- Statements of ingest/outlets.py: the operator's outlet registry import.
-- Reads the reference data a row is checked against, the current state of the
-- file's outlets (to tell created / updated / unchanged / moved apart), and
-- writes the changed outlets and their circles from COPY-filled temp tables.

-- ---------------------------------------------------------------- reference data

-- name: business_types
SELECT code, name_zh, name_en FROM business_types ORDER BY code;

-- name: supplier_ids
SELECT id FROM suppliers ORDER BY id;

-- name: community_circles
SELECT id, circle_id FROM communities ORDER BY id;

-- name: circles
SELECT id, name, center_lat, center_lon, owner, team FROM circles ORDER BY id;

-- ---------------------------------------------------------------- current state

-- name: lock_outlets
-- Two imports (or an import and a seed) never interleave, so the created /
-- updated counts read before writing stay true. Readers (the ingest registry) are not blocked.
LOCK TABLE outlets, outlet_circles IN SHARE ROW EXCLUSIVE MODE;

-- name: existing_outlets
SELECT id, name, business_type, chain, supplier_id, community_id, lat, lon, active
FROM outlets
WHERE id = ANY(%(ids)s);

-- name: existing_outlet_circles
SELECT outlet_id, array_agg(circle_id ORDER BY circle_id) AS circle_ids
FROM outlet_circles
WHERE outlet_id = ANY(%(ids)s)
GROUP BY outlet_id;

-- ---------------------------------------------------------------- writing

-- name: create_import_staging
CREATE TEMP TABLE import_outlets (
    id text PRIMARY KEY, name text, business_type text, chain text, supplier_id text, community_id text,
    lat double precision, lon double precision, active boolean
) ON COMMIT DROP;

-- name: copy_import_staging
COPY import_outlets (id, name, business_type, chain, supplier_id, community_id, lat, lon, active) FROM STDIN;

-- name: upsert_outlets_from_import
-- Every column comes from the file (absent optional columns were filled with the stored values before COPY).
INSERT INTO outlets (id, name, business_type, chain, supplier_id, community_id, lat, lon, active)
SELECT id, name, business_type, chain, supplier_id, community_id, lat, lon, active
FROM import_outlets
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, business_type = EXCLUDED.business_type, chain = EXCLUDED.chain,
    supplier_id = EXCLUDED.supplier_id, community_id = EXCLUDED.community_id,
    lat = EXCLUDED.lat, lon = EXCLUDED.lon, active = EXCLUDED.active;

-- name: create_import_circle_staging
CREATE TEMP TABLE import_outlet_circles (outlet_id text, circle_id text) ON COMMIT DROP;

-- name: copy_import_circle_staging
COPY import_outlet_circles (outlet_id, circle_id) FROM STDIN;

-- name: delete_stale_import_circles
-- An imported outlet serves exactly the circles computed now; links of outlets not in the file stay.
DELETE FROM outlet_circles oc
USING import_outlets o
WHERE oc.outlet_id = o.id
  AND NOT EXISTS (
      SELECT 1 FROM import_outlet_circles s WHERE s.outlet_id = oc.outlet_id AND s.circle_id = oc.circle_id
  );

-- name: insert_import_circles
INSERT INTO outlet_circles (outlet_id, circle_id)
SELECT outlet_id, circle_id FROM import_outlet_circles
ON CONFLICT (outlet_id, circle_id) DO NOTHING;
