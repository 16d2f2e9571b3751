-- A report is the outlet's snapshot, and the worker's offsets live beside what it wrote (issue 8, points 1, 3, 6).
--
-- * outlet_reports is keyed by (outlet, necessity, reported_at, line_key): the
--   lines of one report for one necessity (several SKUs, several pack sizes)
--   are separate rows that add up, where the old key kept only the first.
--   `line_key` is the line's message_id, else its sku (Kafka reports), else ''
--   (schema.contract.Accepted.line_key); rows stored before this migration get ''.
--   outlet_stock.quantity becomes the sum of an outlet's rows at its newest
--   reported_at (queries.sql upsert_stock_from_staging).
-- * stream_offsets: per topic partition, the offset of the next message the
--   stream worker has not written yet. It is updated in the same transaction as
--   the rows and feed-health counts of each batch, so a redelivered message
--   (offset below next_offset) is known as written and never counted twice;
--   the pipeline-lag check compares it with the broker's end offsets.

ALTER TABLE outlet_reports ADD COLUMN line_key text NOT NULL DEFAULT '';
ALTER TABLE outlet_reports DROP CONSTRAINT outlet_reports_pkey;
ALTER TABLE outlet_reports ADD CONSTRAINT outlet_reports_pkey PRIMARY KEY (outlet_id, necessity, reported_at, line_key);

CREATE TABLE stream_offsets (
    topic           text NOT NULL,                      -- the full topic name, prefix included
    partition       integer NOT NULL,
    next_offset     bigint NOT NULL,                    -- every message below this one is written (or dead-lettered)
    message_at      timestamptz,                        -- broker timestamp of the last message written
    written_at      timestamptz NOT NULL DEFAULT now(), -- when that write committed
    PRIMARY KEY (topic, partition)
);
