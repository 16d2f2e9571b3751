-- Statements of tests/bench/scale.py.

-- name: create_raw_reports
-- The raw consumer's target: outlet_reports' columns and primary key, nothing else.
CREATE TABLE bench_raw_reports (
    reported_at     timestamptz NOT NULL,
    outlet_id       text NOT NULL,
    necessity       text NOT NULL,
    quantity        double precision NOT NULL,
    sold_24h        double precision,
    supplier_id     text NOT NULL,
    message_id      text,
    received_at     timestamptz NOT NULL,
    line_key        text NOT NULL DEFAULT '',
    PRIMARY KEY (outlet_id, necessity, reported_at, line_key)
);

-- name: copy_raw_reports
COPY bench_raw_reports (reported_at, outlet_id, necessity, quantity, sold_24h, supplier_id, message_id,
                        received_at, line_key) FROM STDIN;

-- name: count_raw_reports
SELECT count(*) AS n FROM bench_raw_reports;

-- name: copy_outlet_stock
COPY outlet_stock (outlet_id, necessity, quantity, sold_24h, reported_at) FROM STDIN;

-- name: analyze_stock
ANALYZE outlet_stock;

-- name: levels_heartbeat
SELECT levels_at FROM pipeline_status WHERE id = 'levels';

-- name: stored_lines
SELECT count(*) AS n FROM outlet_reports;

-- name: written_messages
-- Messages of a topic the worker has written (its partitions' offsets start at 0).
SELECT coalesce(sum(next_offset), 0)::bigint AS n FROM stream_offsets WHERE topic = %(topic)s;
