-- SKU maps (ingest/skus.py).

-- name: supplier_exists
SELECT 1 FROM suppliers WHERE id = %(supplier_id)s;

-- name: necessity_units
SELECT code, unit FROM necessities;

-- name: upsert_sku
INSERT INTO supplier_skus (supplier_id, sku, necessity, pack_quantity, pack_unit, description, updated_at)
VALUES (%(supplier_id)s, %(sku)s, %(necessity)s, %(pack_quantity)s, %(pack_unit)s, %(description)s, now())
ON CONFLICT (supplier_id, sku) DO UPDATE
SET necessity = EXCLUDED.necessity, pack_quantity = EXCLUDED.pack_quantity, pack_unit = EXCLUDED.pack_unit,
    description = EXCLUDED.description, updated_at = now();
