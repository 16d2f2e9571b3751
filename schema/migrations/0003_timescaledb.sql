-- Where the TimescaleDB extension is available, the time series become
-- hypertables; on plain PostgreSQL this migration does nothing. Queries are
-- the same on both.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        PERFORM create_hypertable('outlet_reports', 'reported_at', chunk_time_interval => interval '1 day', migrate_data => true);
        PERFORM create_hypertable('prices', 'reported_at', chunk_time_interval => interval '7 days', migrate_data => true);
        PERFORM create_hypertable('circle_levels', 'computed_at', chunk_time_interval => interval '1 day', migrate_data => true);
    END IF;
END
$$;
