-- The raw time series become range-partitioned tables on plain PostgreSQL (issue 10, point 1).
--
-- Where TimescaleDB is created in this database they are hypertables already (0003, 0016) and this migration
-- does nothing. Elsewhere outlet_reports, prices, circle_levels and feed_health are rebuilt as
-- `PARTITION BY RANGE` tables with the same names, columns, defaults, primary keys (every one includes the time
-- column, so ON CONFLICT keeps working), indexes, CHECK constraints and grants, and every row they held. Queries
-- read them by name and are unchanged.
--
-- Partitions, named <table>_pYYYYMMDD after their first day (UTC):
-- * outlet_reports and circle_levels: one UTC day each. circle_levels is the big one (a city of 200 circles:
--   ~41 M rows, ~6 GB a day); a day is what retention drops at once and what a panel's day scans.
-- * prices and feed_health: 7 days from Monday 00:00 UTC. Both are small (one price per outlet and necessity
--   when it changes; one feed-health row per supplier, source and minute: ~0.6 M rows a week for 30 suppliers),
--   so a week keeps their partition count low (5 or 6 inside the default 35 days of retention).
-- * <table>_default catches everything outside the created ranges (a report from far in the past or future),
--   so an insert never fails for want of a partition.
--
-- This migration creates the ranges from 35 days back (BAOGONG_RETENTION_DAYS' default) to 7 days ahead;
-- rows outside them go to the default partition. From then on `baogong maintain` (schema/partitions.py)
-- creates the ranges over the configured retention window and 7 days ahead, moving any rows the default
-- partition holds for them, drops partitions that fell out of the window, and deletes old rows left in the
-- default partition.
DO $$
DECLARE
    spec record;
    old text;
    stmts text[];
    stmt text;
    idx record;
    lo timestamptz;
    step interval;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    FOR spec IN
        SELECT * FROM (VALUES ('outlet_reports', 'reported_at', 'day'), ('prices', 'reported_at', 'week'),
                              ('circle_levels', 'computed_at', 'day'), ('feed_health', 'minute', 'week'))
                 AS s (tab, col, unit)
    LOOP
        old := spec.tab || '_unpartitioned';
        step := CASE spec.unit WHEN 'day' THEN interval '24 hours' ELSE interval '168 hours' END;

        -- What to rebuild on the new table: primary key and unique constraints with their names, the other
        -- indexes (their definitions name the table, which is the new one by the time they run), the grants.
        SELECT coalesce(array_agg(format('ALTER TABLE %I ADD CONSTRAINT %I %s', spec.tab, c.conname,
                                         pg_get_constraintdef(c.oid)) ORDER BY c.conname), '{}')
          INTO stmts
          FROM pg_constraint c
         WHERE c.conrelid = spec.tab::regclass AND c.contype IN ('p', 'u');
        SELECT stmts || coalesce(array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid), '{}')
          INTO stmts
          FROM pg_index i
         WHERE i.indrelid = spec.tab::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid);
        SELECT stmts || coalesce(array_agg(format('GRANT %s ON %I TO %s', a.privilege_type, spec.tab,
                                                  CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                                       ELSE quote_ident(pg_get_userbyid(a.grantee)) END)), '{}')
          INTO stmts
          FROM pg_class t, aclexplode(t.relacl) a
         WHERE t.oid = spec.tab::regclass AND a.grantee <> t.relowner;

        -- The old table and its indexes step aside (renaming a key's index renames its constraint too).
        EXECUTE format('ALTER TABLE %I RENAME TO %I', spec.tab, old);
        FOR idx IN
            SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = old::regclass
        LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', idx.relname, left(idx.relname, 50) || '_unpartitioned');
        END LOOP;

        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE '
                       'INCLUDING COMMENTS) PARTITION BY RANGE (%I)', spec.tab, old, spec.col);
        FOREACH stmt IN ARRAY stmts LOOP
            EXECUTE stmt;
        END LOOP;

        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', spec.tab || '_default', spec.tab);
        FOR lo IN
            SELECT generate_series(date_trunc(spec.unit, now() - interval '35 days', 'UTC'),
                                   now() + interval '7 days', step)
        LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           spec.tab || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD'), spec.tab, lo, lo + step);
        END LOOP;

        EXECUTE format('INSERT INTO %I SELECT * FROM %I', spec.tab, old);
        EXECUTE format('DROP TABLE %I', old);
    END LOOP;
END
$$;
