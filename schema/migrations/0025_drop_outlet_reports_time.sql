-- outlet_reports loses its time index (reported_at DESC, from 0002): nothing reads the table by time often
-- enough to pay for it, and every stored line paid for it (the worker's COPY updated it beside the primary key).
-- Retention drops whole partitions (plain PostgreSQL, 0018) or chunks (TimescaleDB); panels read rollups and
-- latest tables; the worker's stock upsert reads outlet_reports by its primary key (outlet, necessity,
-- reported_at, line_key). What is left reads by time once a day, in `baogong maintain`: scans of
-- `outlet_reports_default` (the few rows outside the created partitions; partitions.sql default_occupied,
-- move_from_default) and the purge of a raw table left unpartitioned (a hypertable: chunk exclusion serves it).
DROP INDEX IF EXISTS outlet_reports_time;
