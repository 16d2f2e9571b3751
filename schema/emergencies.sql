-- Emergencies and operator keys (loaded by schema/emergency_store.py; migration 0019).
-- Times are the caller's (`%(at)s`), so a driven clock and the levels agree on what was active when.

-- name: district_exists
SELECT district FROM circles WHERE district = %(district)s LIMIT 1;

-- name: districts
SELECT DISTINCT district FROM circles WHERE district <> '' ORDER BY district;

-- name: circle_exists
SELECT id FROM circles WHERE id = %(circle_id)s;

-- name: insert_emergency
INSERT INTO emergencies (scope_kind, scope_id, grade, reason, declared_by, declared_at)
VALUES (%(scope_kind)s, %(scope_id)s, %(grade)s, %(reason)s, %(declared_by)s, %(at)s)
RETURNING *, (SELECT count(*) FROM circles c
              WHERE scope_kind = 'city' OR (scope_kind = 'district' AND c.district = scope_id)
                 OR (scope_kind = 'circle' AND c.id = scope_id)) AS circles;

-- Lifting is idempotent in effect: a second lift finds nothing to update (no row back).
-- name: lift_emergency
UPDATE emergencies
SET lifted_by = %(lifted_by)s, lifted_at = greatest(%(at)s, declared_at), lift_reason = %(reason)s
WHERE id = %(id)s AND lifted_at IS NULL
RETURNING *;

-- name: emergency
SELECT * FROM emergencies WHERE id = %(id)s;

-- Active at %(at)s (declared by then, not lifted by then), or every one ever when %(all)s; with how many
-- circles each covers.
-- name: list_emergencies
SELECT e.*,
       (e.declared_at <= %(at)s AND (e.lifted_at IS NULL OR e.lifted_at > %(at)s)) AS active,
       (SELECT count(*) FROM circles c
        WHERE e.scope_kind = 'city' OR (e.scope_kind = 'district' AND c.district = e.scope_id)
           OR (e.scope_kind = 'circle' AND c.id = e.scope_id)) AS circles
FROM emergencies e
WHERE %(all)s OR (e.declared_at <= %(at)s AND (e.lifted_at IS NULL OR e.lifted_at > %(at)s))
ORDER BY e.declared_at DESC, e.id DESC;

-- The grade each circle is under at %(at)s; one more row with circle_id NULL: the city-wide grade (for
-- alerts that belong to no circle). Circles under no emergency have no row.
-- name: circle_grades
SELECT circle_id, grade FROM circle_grades(%(at)s)
UNION ALL
SELECT NULL, min(grade)::smallint FROM emergencies
WHERE scope_kind = 'city' AND declared_at <= %(at)s AND (lifted_at IS NULL OR lifted_at > %(at)s)
HAVING count(*) > 0;

-- name: insert_operator_key
INSERT INTO operator_keys (prefix, name, key_hash)
VALUES (%(prefix)s, %(name)s, %(key_hash)s)
ON CONFLICT (prefix) DO NOTHING
RETURNING prefix, name, created_at;

-- name: operator_key_lookup
SELECT prefix, name, key_hash, revoked_at FROM operator_keys WHERE prefix = %(prefix)s;

-- name: revoke_operator_key
UPDATE operator_keys SET revoked_at = %(at)s WHERE prefix = %(prefix)s AND revoked_at IS NULL RETURNING prefix, name;

-- name: list_operator_keys
SELECT prefix, name, created_at, revoked_at FROM operator_keys ORDER BY name, created_at;

-- Whether a key prefix belongs to a supplier or a responder (to answer 403, not 401, for the wrong kind).
-- name: other_key_kind
SELECT 'supplier' AS kind FROM api_keys WHERE prefix = %(prefix)s
UNION ALL
SELECT 'responder' FROM responder_keys WHERE prefix = %(prefix)s;

-- One circle's latest levels with the grade each was computed under (the demo's before → after).
-- name: circle_latest_levels
SELECT necessity, days_of_supply, status, grade FROM circle_levels_latest WHERE circle_id = %(circle_id)s;
