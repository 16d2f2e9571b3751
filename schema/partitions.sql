-- Partitions of the raw time series on plain PostgreSQL (schema/partitions.py, migration 0018). Identifiers
-- ({table}, {partition}, {column}, ...) and partition bounds ({start}, {end}: timestamptz literals; DDL takes
-- no parameters) are filled in with psycopg.sql.

-- Is this table partitioned (plain PostgreSQL after 0018; a hypertable or a table before 0018 is not)?
-- name: is_partitioned
SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%(table)s)) AS partitioned;

-- The table's partitions with their bounds (NULL: MINVALUE / MAXVALUE, or the default partition).
-- name: partitions
SELECT c.relname::text AS name, c.oid = pt.partdefid AS is_default,
       b[1]::timestamptz AS start_at, b[2]::timestamptz AS end_at
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_partitioned_table pt ON pt.partrelid = i.inhparent
LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                               'FROM \((?:''([^'']*)''|MINVALUE)\) TO \((?:''([^'']*)''|MAXVALUE)\)') b ON true
WHERE i.inhparent = to_regclass(%(table)s)
ORDER BY 3 NULLS FIRST, 1;

-- The grid ranges (by their start) the default partition holds rows in, between %(from)s and %(to)s.
-- name: default_occupied
SELECT DISTINCT date_bin(%(stride)s::interval, {column}, %(origin)s::timestamptz) AS start_at
FROM {default}
WHERE {column} >= %(from)s AND {column} < %(to)s
ORDER BY 1;

-- Serialises partition changes between two maintain runs (held to the end of the transaction).
-- name: lock_partitions
SELECT pg_advisory_xact_lock(hashtext('baogong partitions'));

-- name: exists
SELECT to_regclass(%(name)s) IS NOT NULL AS found;

-- A new partition is built beside the table, filled with what the default partition held for its range, then
-- attached: ATTACH takes SHARE UPDATE EXCLUSIVE on the table (writers carry on), skips checking the new
-- partition's rows thanks to the CHECK (dropped afterwards) and checks the default holds none of the range.
-- name: create_standalone
CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE);

-- name: bound_check
ALTER TABLE {partition} ADD CONSTRAINT {check} CHECK ({column} >= {start} AND {column} < {end});

-- name: move_from_default
WITH moved AS (
    DELETE FROM {default} WHERE {column} >= {start} AND {column} < {end} RETURNING *
)
INSERT INTO {partition} SELECT * FROM moved;

-- name: attach
ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES FROM ({start}) TO ({end});

-- name: drop_bound_check
ALTER TABLE {partition} DROP CONSTRAINT {check};

-- The rows a partition held, counted before it is dropped (one scan of a partition leaving for good).
-- name: count_rows
SELECT count(*) AS n FROM {partition};

-- name: drop_partition
DROP TABLE {partition};

-- Rows past retention the default partition holds (old reports that never had a partition).
-- name: purge_default
DELETE FROM {default} WHERE {column} < %(before)s;
