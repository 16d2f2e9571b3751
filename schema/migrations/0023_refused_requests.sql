-- The supplier API against hostile and clumsy input (issue 13).
--
-- feed_requests: per supplier, key (its public prefix), minute and outcome, how many requests the API
-- answered: ok (something accepted or duplicate), rejected (422/403: no record valid), bad_request (400:
-- unusable body), oversize (413), throttled (429), timeout (408). Written by each API process once a second
-- from memory (ingest/refusals.py), read by the SupplierRequestsRefused rule and the operators' feed health;
-- rows older than a day are deleted by the API. Size: one row per key, minute and outcome seen.
CREATE TABLE feed_requests (
    supplier_id     text NOT NULL,
    key_prefix      text NOT NULL,
    minute          timestamptz NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('ok', 'rejected', 'bad_request', 'oversize', 'throttled', 'timeout')),
    requests        integer NOT NULL DEFAULT 0,
    PRIMARY KEY (supplier_id, key_prefix, minute, outcome)
);
CREATE INDEX feed_requests_minute ON feed_requests (minute);

-- rejection_reports: the full rejection list of an answer that listed only the first ones
-- (max_rejections_listed), served to the same supplier at GET /v1/rejections/{request_id} for
-- rejection_report_ttl_s, then deleted by the API. `body` is the JSON list, gzip-compressed.
CREATE TABLE rejection_reports (
    request_id      text PRIMARY KEY,
    supplier_id     text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rejected        integer NOT NULL,
    body            bytea NOT NULL
);
CREATE INDEX rejection_reports_created ON rejection_reports (created_at);
