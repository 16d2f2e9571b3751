-- Supplier feeds: SKU maps, ingest de-duplication, feed health.

-- A supplier's own SKU codes mapped to catalogue necessities. One SKU is one
-- pack: `pack_quantity` of `pack_unit` (e.g. a 5 kg bag of rice: 5, 'kg';
-- a case of 12 x 0.55 L water: 6.6, 'L'). A record with `sku` and a count
-- unit (piece, bag, case…) means that many packs.
CREATE TABLE supplier_skus (
    supplier_id     text NOT NULL REFERENCES suppliers (id),
    sku             text NOT NULL,
    necessity       text NOT NULL REFERENCES necessities (code),
    pack_quantity   double precision NOT NULL CHECK (pack_quantity > 0),
    pack_unit       text NOT NULL,
    description     text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (supplier_id, sku)
);

-- Idempotency keys of records accepted over HTTP, kept for the
-- de-duplication window: a record whose key is here is answered as a
-- duplicate. (Beyond the window a repeat is still never counted twice:
-- outlet_reports' primary key absorbs it.)
CREATE TABLE ingest_dedup (
    key         bytea PRIMARY KEY,                      -- 16 bytes of SHA-256 over supplier + idempotency key
    seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_dedup_seen ON ingest_dedup (seen_at);

-- Accepted and rejected records per supplier per minute, from every path;
-- the feed-quality rule reads it.
CREATE TABLE feed_health (
    supplier_id     text NOT NULL,
    minute          timestamptz NOT NULL,
    source          text NOT NULL,                      -- http, kafka
    accepted        integer NOT NULL DEFAULT 0,
    rejected        integer NOT NULL DEFAULT 0,
    duplicates      integer NOT NULL DEFAULT 0,
    dead_lettered   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (supplier_id, minute, source)
);
