-- Supplier API key administration (loaded by ingest/key_admin.py).
-- A key is active while `revoked_at IS NULL OR revoked_at > now()`: a rotation
-- schedules the old keys' revocation in the future (the grace period).
-- Only hashes are ever written here; plaintext keys never reach the database.

-- name: supplier_exists
SELECT id FROM suppliers WHERE id = %(supplier_id)s;

-- Taken by a rotation so two rotations of one supplier run one after the
-- other. FOR NO KEY UPDATE does not block the foreign-key checks of writes
-- that reference the supplier (outlets, api_keys).
-- name: lock_supplier
SELECT id FROM suppliers WHERE id = %(supplier_id)s FOR NO KEY UPDATE;

-- For an "unknown supplier" message: some ids that do exist, and how many.
-- name: supplier_sample
SELECT id, count(*) OVER () AS total FROM suppliers ORDER BY id LIMIT %(limit)s;

-- No row back means the random prefix collided with an existing key: draw another.
-- name: insert_api_key
INSERT INTO api_keys (prefix, supplier_id, key_hash)
VALUES (%(prefix)s, %(supplier_id)s, %(key_hash)s)
ON CONFLICT (prefix) DO NOTHING
RETURNING prefix, supplier_id, created_at;

-- Revoke the supplier's other active keys at now() + grace. A key already due
-- to be revoked earlier keeps its earlier time: a rotation never extends a key's life.
-- name: revoke_other_keys
UPDATE api_keys
SET revoked_at = now() + %(grace)s
WHERE supplier_id = %(supplier_id)s
  AND prefix <> %(keep_prefix)s
  AND (revoked_at IS NULL OR revoked_at > now() + %(grace)s)
RETURNING prefix, revoked_at;

-- Revoke one key now; no row back when it is unknown or already revoked.
-- name: revoke_key
UPDATE api_keys
SET revoked_at = now()
WHERE prefix = %(prefix)s
  AND (revoked_at IS NULL OR revoked_at > now())
RETURNING prefix;

-- name: key_info
SELECT prefix, supplier_id, created_at, revoked_at, (revoked_at IS NULL OR revoked_at > now()) AS active
FROM api_keys
WHERE prefix = %(prefix)s;

-- Never selects key_hash: listings carry no key material.
-- name: list_keys
SELECT prefix, supplier_id, created_at, revoked_at, (revoked_at IS NULL OR revoked_at > now()) AS active
FROM api_keys
WHERE %(supplier_id)s::text IS NULL OR supplier_id = %(supplier_id)s::text
ORDER BY supplier_id, created_at, prefix;
