-- Idempotency claims per outlet report instead of per record (ingest/claims.py).
--
-- A row per record made each accepted record a random insert into a unique
-- index: the database's largest cost at full ingest load, more than the
-- API's own per-record work (tests/bench). A report (one outlet, one
-- reported_at) is what suppliers send and retry, so one row per report now
-- holds its records' 8-byte keys end to end. The per-record keys of 0005 are
-- dropped: a record repeated across this upgrade is published again, and
-- the worker's primary key still stores it once.
DROP TABLE ingest_dedup;

CREATE TABLE ingest_claims (
    report_key      bytea PRIMARY KEY,                  -- 16 bytes of SHA-256 over kind, supplier, outlet, reported_at
    record_keys     bytea NOT NULL,                     -- 8 bytes per record (message_id, else necessity), end to end
    seen_at         timestamptz NOT NULL DEFAULT now()  -- last claim; rows older than the window are purged
);
CREATE INDEX ingest_claims_seen ON ingest_claims (seen_at);
