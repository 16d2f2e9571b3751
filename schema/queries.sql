-- Every named statement Baogong runs (loaded by schema/db.py).

-- ---------------------------------------------------------------- ingest

-- A key in its rotation grace period (revoked_at in the future) still works; revoked_in_s says how long.
-- name: api_key_lookup
SELECT supplier_id, key_hash, extract(epoch FROM revoked_at - now())::float8 AS revoked_in_s
FROM api_keys
WHERE prefix = %(prefix)s AND (revoked_at IS NULL OR revoked_at > now());

-- Who owns each active outlet, and its business type (plausibility ceilings, schema/catalogue.py).
-- name: outlet_owners
SELECT id, supplier_id, business_type FROM outlets WHERE active;

-- name: necessity_units
SELECT code, unit FROM necessities;

-- name: supplier_skus
SELECT supplier_id, sku, necessity, pack_quantity, pack_unit FROM supplier_skus;

-- Idempotency claims (ingest/claims.py). Run in the same transaction as the
-- publish, and roll back if the publish fails.

-- name: claim_reports
-- One row per outlet report, its record keys end to end; answers how many
-- reports this statement claimed. A report claimed before (or by a
-- concurrent request, whose commit this waits for) is skipped: when fewer
-- than all were claimed, the caller reads the others with
-- lock_claimed_reports and adds only their new records.
WITH claimed AS (
    INSERT INTO ingest_claims (report_key, record_keys)
    SELECT * FROM unnest(%(reports)b::bytea[], %(records)b::bytea[])
    ON CONFLICT (report_key) DO NOTHING
    RETURNING 1
)
SELECT count(*) AS claimed FROM claimed;

-- Of the given reports, the rows other transactions claimed (not the ones this one just inserted), locked.
-- name: lock_claimed_reports
SELECT report_key, record_keys FROM ingest_claims
WHERE report_key = ANY(%(reports)b::bytea[]) AND xmin <> pg_current_xact_id()::xid
FOR UPDATE;

-- name: add_claimed_records
UPDATE ingest_claims AS c SET record_keys = c.record_keys || u.added, seen_at = now()
FROM unnest(%(reports)b::bytea[], %(records)b::bytea[]) AS u(report_key, added)
WHERE c.report_key = u.report_key;

-- name: purge_claims
DELETE FROM ingest_claims WHERE seen_at < now() - make_interval(hours => %(hours)s);

-- ---------------------------------------------------------------- streams: sink

-- The worker writes a batch in ONE transaction: it locks the batch's partitions
-- in stream_offsets (a second worker writing the same partitions during a
-- rebalance waits, then sees this one's offsets), skips messages below their
-- next_offset (written before: not written or counted again), writes the rows
-- (each attempt under a savepoint, so a row the database refuses is isolated
-- without losing the others), adds feed health, and moves the offsets on.

-- name: ensure_stream_offsets
INSERT INTO stream_offsets (topic, partition, next_offset)
SELECT t, p, 0 FROM unnest(%(topics)s::text[], %(partitions)s::int[]) AS u(t, p)
ORDER BY t, p
ON CONFLICT (topic, partition) DO NOTHING;

-- name: lock_stream_offsets
SELECT s.topic, s.partition, s.next_offset, s.message_at
FROM stream_offsets s
JOIN unnest(%(topics)s::text[], %(partitions)s::int[]) AS u(t, p) ON s.topic = u.t AND s.partition = u.p
ORDER BY s.topic, s.partition
FOR UPDATE OF s;

-- What is written already, without a lock (the worker's cheap check before validating a batch).
-- name: stream_offsets
SELECT s.topic, s.partition, s.next_offset, s.message_at
FROM stream_offsets s
JOIN unnest(%(topics)s::text[], %(partitions)s::int[]) AS u(t, p) ON s.topic = u.t AND s.partition = u.p;

-- A partition whose log now ends below what the worker wrote was recreated
-- (or the broker lost its log, as an in-memory broker does on restart): its
-- messages are new, whatever their offsets; start it again from 0.
-- name: reset_stream_offsets
UPDATE stream_offsets s SET next_offset = 0, message_at = NULL, written_at = now()
FROM unnest(%(topics)s::text[], %(partitions)s::int[], %(ends)s::bigint[]) AS u(t, p, e)
WHERE s.topic = u.t AND s.partition = u.p AND s.next_offset > u.e
RETURNING s.topic, s.partition, u.e AS log_end;

-- Offsets only move forward.
-- name: advance_stream_offsets
INSERT INTO stream_offsets (topic, partition, next_offset, message_at, written_at)
SELECT t, p, n, m, now()
FROM unnest(%(topics)s::text[], %(partitions)s::int[], %(next_offsets)s::bigint[], %(message_ats)s::timestamptz[])
    AS u(t, p, n, m)
ON CONFLICT (topic, partition) DO UPDATE
SET next_offset = EXCLUDED.next_offset, message_at = EXCLUDED.message_at, written_at = EXCLUDED.written_at
WHERE stream_offsets.next_offset <= EXCLUDED.next_offset;

-- `seq` is the row's place in the attempt (the sink's own numbering), to name the duplicates.
-- No JIT in the sink's transactions: a batch's statements take milliseconds, and the planner's guess for the
-- staging table (no statistics) can cross jit_above_cost, which would spend ~80 ms compiling each one.
-- name: create_report_staging
CREATE TEMP TABLE IF NOT EXISTS report_line_staging (
    reported_at timestamptz, outlet_id text, necessity text, line_key text, quantity double precision,
    sold_24h double precision, supplier_id text, message_id text, received_at timestamptz, seq integer
) ON COMMIT DELETE ROWS;
SET LOCAL jit = off;

-- name: clear_report_staging
TRUNCATE report_line_staging;

-- name: copy_report_staging
-- The columns in the order of `streams.sink._copy_text`: what a report's lines share first, once formatted.
COPY report_line_staging (reported_at, outlet_id, supplier_id, received_at, necessity, line_key, quantity, sold_24h,
                          message_id, seq)
FROM STDIN;

-- The staging path, taken when the direct COPY (copy_reports, below) met a row stored before (a redelivery):
-- one row per (outlet, necessity, reported_at, line_key) in the staging table (the sink sums a message's lines
-- sharing a key, and keeps the first of a key repeated across messages) goes into outlet_reports unless stored
-- before; the statement answers the `seq` of those (duplicates).
-- name: insert_reports_from_staging_naming_duplicates
WITH inserted AS (
    INSERT INTO outlet_reports (reported_at, outlet_id, necessity, line_key, quantity, sold_24h, supplier_id,
                                message_id, received_at)
    SELECT reported_at, outlet_id, necessity, line_key, quantity, sold_24h, supplier_id, message_id, received_at
    FROM report_line_staging
    ON CONFLICT (outlet_id, necessity, reported_at, line_key) DO NOTHING
    RETURNING outlet_id, necessity, reported_at, line_key
)
SELECT s.seq FROM report_line_staging s
WHERE NOT EXISTS (
    SELECT FROM inserted i
    WHERE i.outlet_id = s.outlet_id AND i.necessity = s.necessity AND i.reported_at = s.reported_at
      AND i.line_key = s.line_key
);

-- An outlet's stock of a necessity is the sum of all its stored lines at its
-- newest reported_at (a report split over several messages adds up; the same
-- reported_at again re-sums the same rows); a late, older report never
-- overwrites a newer one. The sum is an index lookup per outlet and necessity
-- (LATERAL), never a scan of the day's partition, however large it grows.
-- name: upsert_stock_from_staging
WITH newest AS (
    SELECT outlet_id, necessity, max(reported_at) AS reported_at
    FROM report_line_staging
    GROUP BY outlet_id, necessity
)
INSERT INTO outlet_stock (outlet_id, necessity, quantity, sold_24h, reported_at, updated_at)
SELECT n.outlet_id, n.necessity, s.quantity, s.sold_24h, n.reported_at, now()
FROM newest n
CROSS JOIN LATERAL (
    SELECT sum(r.quantity) AS quantity, sum(r.sold_24h) AS sold_24h
    FROM outlet_reports r
    WHERE r.outlet_id = n.outlet_id AND r.necessity = n.necessity AND r.reported_at = n.reported_at
      AND r.reported_at BETWEEN %(earliest)s AND %(latest)s  -- the batch's days only, see upsert_stock_for_keys
) s
WHERE s.quantity IS NOT NULL
ON CONFLICT (outlet_id, necessity) DO UPDATE
SET quantity = EXCLUDED.quantity, sold_24h = EXCLUDED.sold_24h,
    reported_at = EXCLUDED.reported_at, updated_at = EXCLUDED.updated_at
WHERE outlet_stock.reported_at <= EXCLUDED.reported_at;

-- The usual write: a batch's rows go straight into the tables with one COPY each (no staging table, no
-- INSERT … SELECT). The sink runs it under a savepoint; a row stored before (a unique violation) rolls it
-- back and the batch takes the staging path above, which skips and names the duplicates.
-- name: copy_reports
COPY outlet_reports (reported_at, outlet_id, supplier_id, received_at, necessity, line_key, quantity, sold_24h,
                     message_id)
FROM STDIN;

-- name: copy_prices
COPY prices (reported_at, outlet_id, supplier_id, received_at, necessity, price, message_id) FROM STDIN;

-- No JIT in the sink's transactions (see create_report_staging).
-- name: sink_settings
SET LOCAL jit = off;

-- The direct path's stock (the sink's `_attempt`: every row of its COPY was new). For each (outlet, necessity)
-- with the newest reported_at T of the rows just written and their sums (`quantities`, `solds`, the sink's):
-- * there is no stored stock, or it is older than T: no line at T was stored before (whoever stores a line
--   moves its stock to at least that line's time in the same transaction, and stock never goes back), so the
--   rows just written are all the lines at T and their sums are the stock: no lookup;
-- * the stored stock is at T (a report split over messages or batches): the lines at T are re-summed from
--   outlet_reports, the rows just written included, as upsert_stock_from_staging does;
-- * it is newer than T: nothing changes (the ON CONFLICT's WHERE).
-- The usual key costs the conflict's own lookup of the stored row, where summing every key from outlet_reports
-- cost one more index lookup each (half the statement's time in the scale benchmark). `earliest` and `latest`
-- bound the keys' times: redundant for the result, they let the planner keep only the partitions (or
-- TimescaleDB chunks) of the batch's days instead of pruning them all again at each lookup.
-- name: upsert_stock_for_keys
INSERT INTO outlet_stock AS o (outlet_id, necessity, quantity, sold_24h, reported_at, updated_at)
SELECT outlet_id, necessity, quantity, sold_24h, reported_at, now()
FROM unnest(%(outlets)s::text[], %(necessities)s::text[], %(reported_ats)s::timestamptz[],
            %(quantities)s::float8[], %(solds)s::float8[])
    AS n(outlet_id, necessity, reported_at, quantity, sold_24h)
ON CONFLICT (outlet_id, necessity) DO UPDATE
SET (quantity, sold_24h) = (
        SELECT CASE WHEN o.reported_at = EXCLUDED.reported_at THEN sum(r.quantity) ELSE EXCLUDED.quantity END,
               CASE WHEN o.reported_at = EXCLUDED.reported_at THEN sum(r.sold_24h) ELSE EXCLUDED.sold_24h END
        FROM outlet_reports r
        WHERE o.reported_at = EXCLUDED.reported_at
          AND r.outlet_id = EXCLUDED.outlet_id AND r.necessity = EXCLUDED.necessity
          AND r.reported_at = EXCLUDED.reported_at AND r.reported_at BETWEEN %(earliest)s AND %(latest)s
    ),
    reported_at = EXCLUDED.reported_at, updated_at = EXCLUDED.updated_at,
    written_xid = pg_current_xact_id()  -- named here, so the row trigger of 0021/0026 does not run
WHERE o.reported_at <= EXCLUDED.reported_at;

-- name: create_price_staging
CREATE TEMP TABLE IF NOT EXISTS price_staging (
    reported_at timestamptz, outlet_id text, necessity text, price double precision,
    supplier_id text, message_id text, received_at timestamptz, seq integer
) ON COMMIT DELETE ROWS;
SET LOCAL jit = off;

-- name: clear_price_staging
TRUNCATE price_staging;

-- name: copy_price_staging
COPY price_staging (reported_at, outlet_id, supplier_id, received_at, necessity, price, message_id, seq) FROM STDIN;

-- As insert_reports_from_staging_naming_duplicates.
-- name: insert_prices_from_staging_naming_duplicates
WITH inserted AS (
    INSERT INTO prices (reported_at, outlet_id, necessity, price, supplier_id, message_id, received_at)
    SELECT reported_at, outlet_id, necessity, price, supplier_id, message_id, received_at
    FROM price_staging
    ON CONFLICT (outlet_id, necessity, reported_at) DO NOTHING
    RETURNING outlet_id, necessity, reported_at
)
SELECT s.seq FROM price_staging s
WHERE NOT EXISTS (
    SELECT FROM inserted i
    WHERE i.outlet_id = s.outlet_id AND i.necessity = s.necessity AND i.reported_at = s.reported_at
);

-- Feed health: one row per supplier, minute and path; counts only grow.
-- name: add_feed_health
INSERT INTO feed_health (supplier_id, minute, source, accepted, rejected, duplicates, dead_lettered)
VALUES (%(supplier_id)s, %(minute)s, %(source)s, %(accepted)s, %(rejected)s, %(duplicates)s,
        %(dead_lettered)s)
ON CONFLICT (supplier_id, minute, source) DO UPDATE
SET accepted = feed_health.accepted + EXCLUDED.accepted,
    rejected = feed_health.rejected + EXCLUDED.rejected,
    duplicates = feed_health.duplicates + EXCLUDED.duplicates,
    dead_lettered = feed_health.dead_lettered + EXCLUDED.dead_lettered;

-- ---------------------------------------------------------------- streams: circle levels

-- Per circle and necessity, as of %(now)s: population; outlets expected to
-- carry the necessity (active, by business type); and over the stock rows that
-- count (`counted_stock`, migration 0010: an active outlet's latest stock,
-- reported at or after the outlet was last activated), fresh ones against
-- unconfirmed ones. An outlet counts in every circle it serves. Also the raw
-- observed demand rates the latest level kept. Under an emergency (`grade`, from
-- `circle_grades`, migration 0019) a report is fresh only inside the grade's
-- shorter window too: %(cap_grade)s / %(cap_necessity)s / %(cap_minutes)s are
-- `schema.emergency.freshness_caps()`, necessity '*' the grade's default cap.
-- name: circle_inputs
WITH population AS (
    SELECT circle_id, sum(population)::bigint AS population FROM communities GROUP BY circle_id
), expected AS (
    SELECT oc.circle_id, btn.necessity, count(*) AS outlets_expected
    FROM outlet_circles oc
    JOIN outlets o ON o.id = oc.outlet_id AND o.active
    JOIN business_type_necessities btn ON btn.business_type = o.business_type
    GROUP BY oc.circle_id, btn.necessity
), grades AS (
    SELECT * FROM circle_grades(%(now)s)
), caps AS (
    SELECT * FROM unnest(%(cap_grade)s::smallint[], %(cap_necessity)s::text[], %(cap_minutes)s::int[])
        AS t (grade, necessity, minutes)
), windows AS (
    SELECT g.circle_id, n.code AS necessity,
           %(now)s - make_interval(mins => coalesce(cn.minutes, ca.minutes)) AS fresh_since
    FROM grades g
    CROSS JOIN necessities n
    LEFT JOIN caps cn ON cn.grade = g.grade AND cn.necessity = n.code
    LEFT JOIN caps ca ON ca.grade = g.grade AND ca.necessity = '*'
), known AS (
    SELECT oc.circle_id, k.necessity, k.quantity, k.sold_24h, k.reported_at, k.expected,
           k.fresh AND (w.fresh_since IS NULL OR k.reported_at >= w.fresh_since) AS fresh
    FROM counted_stock(%(now)s) k
    JOIN outlet_circles oc ON oc.outlet_id = k.outlet_id
    LEFT JOIN windows w ON w.circle_id = oc.circle_id AND w.necessity = k.necessity
), stock AS (
    SELECT k.circle_id, k.necessity,
           coalesce(sum(k.quantity) FILTER (WHERE k.fresh), 0) AS stock,
           coalesce(sum(k.quantity) FILTER (WHERE NOT k.fresh), 0) AS stock_unconfirmed,
           min(k.reported_at) FILTER (WHERE NOT k.fresh) AS oldest_unconfirmed,
           count(*) FILTER (WHERE k.fresh) AS reports_fresh,
           count(*) FILTER (WHERE k.fresh AND k.expected) AS outlets_fresh,
           sum(k.sold_24h) FILTER (WHERE k.fresh) AS sold_24h,
           coalesce(sum(k.quantity) FILTER (WHERE k.fresh AND k.sold_24h IS NOT NULL), 0) AS stock_with_sold
    FROM known k
    GROUP BY k.circle_id, k.necessity
)
SELECT c.id AS circle_id, n.code AS necessity, g.grade,
       coalesce(p.population, 0) AS population, n.per_capita_daily,
       n.watch_days, n.shortage_days, n.critical_days, n.min_coverage,
       coalesce(s.stock, 0) AS stock,
       coalesce(s.stock_unconfirmed, 0) AS stock_unconfirmed,
       s.oldest_unconfirmed,
       coalesce(s.reports_fresh, 0) AS reports_fresh,
       coalesce(e.outlets_expected, 0) AS outlets_expected,
       coalesce(s.outlets_fresh, 0) AS outlets_fresh,
       s.sold_24h,
       coalesce(s.stock_with_sold, 0) AS stock_with_sold,
       l.demand_observed_recent AS prev_observed_raw,
       l.computed_at AS prev_computed_at
FROM circles c
CROSS JOIN necessities n
LEFT JOIN population p ON p.circle_id = c.id
LEFT JOIN expected e ON e.circle_id = c.id AND e.necessity = n.code
LEFT JOIN stock s ON s.circle_id = c.id AND s.necessity = n.code
LEFT JOIN circle_levels_latest l ON l.circle_id = c.id AND l.necessity = n.code
LEFT JOIN grades g ON g.circle_id = c.id
ORDER BY c.id, n.code;

-- The same inputs for the areas above circles: each district (`circles.district`)
-- and the whole city (district NULL). An outlet belongs to the district of its
-- own community's circle and counts ONCE in its district and once in the city,
-- however many circles it serves; population likewise (a community has one circle).
-- name: area_totals
WITH outlet_district AS (
    SELECT o.id AS outlet_id, o.business_type, c.district
    FROM outlets o
    JOIN communities m ON m.id = o.community_id
    JOIN circles c ON c.id = m.circle_id
    WHERE o.active
), population AS (
    SELECT c.district, sum(m.population)::bigint AS population
    FROM communities m JOIN circles c ON c.id = m.circle_id
    GROUP BY GROUPING SETS ((c.district), ())
), expected AS (
    SELECT od.district, btn.necessity, count(*) AS outlets_expected
    FROM outlet_district od
    JOIN business_type_necessities btn ON btn.business_type = od.business_type
    GROUP BY GROUPING SETS ((od.district, btn.necessity), (btn.necessity))
), known AS (
    SELECT od.district, k.* FROM counted_stock(%(now)s) k JOIN outlet_district od ON od.outlet_id = k.outlet_id
), stock AS (
    SELECT k.district, k.necessity,
           coalesce(sum(k.quantity) FILTER (WHERE k.fresh), 0) AS stock,
           coalesce(sum(k.quantity) FILTER (WHERE NOT k.fresh), 0) AS stock_unconfirmed,
           min(k.reported_at) FILTER (WHERE NOT k.fresh) AS oldest_unconfirmed,
           count(*) FILTER (WHERE k.fresh) AS reports_fresh,
           count(*) FILTER (WHERE k.fresh AND k.expected) AS outlets_fresh,
           sum(k.sold_24h) FILTER (WHERE k.fresh) AS sold_24h,
           coalesce(sum(k.quantity) FILTER (WHERE k.fresh AND k.sold_24h IS NOT NULL), 0) AS stock_with_sold
    FROM known k
    GROUP BY GROUPING SETS ((k.district, k.necessity), (k.necessity))
), areas AS (
    SELECT DISTINCT district FROM circles
    UNION ALL
    SELECT NULL
)
SELECT a.district, n.code AS necessity,
       coalesce(p.population, 0) AS population, n.per_capita_daily,
       n.watch_days, n.shortage_days, n.critical_days, n.min_coverage,
       coalesce(s.stock, 0) AS stock,
       coalesce(s.stock_unconfirmed, 0) AS stock_unconfirmed,
       s.oldest_unconfirmed,
       coalesce(s.reports_fresh, 0) AS reports_fresh,
       coalesce(e.outlets_expected, 0) AS outlets_expected,
       coalesce(s.outlets_fresh, 0) AS outlets_fresh,
       s.sold_24h,
       coalesce(s.stock_with_sold, 0) AS stock_with_sold
FROM areas a
CROSS JOIN necessities n
LEFT JOIN population p ON p.district IS NOT DISTINCT FROM a.district
LEFT JOIN expected e ON e.district IS NOT DISTINCT FROM a.district AND e.necessity = n.code
LEFT JOIN stock s ON s.district IS NOT DISTINCT FROM a.district AND s.necessity = n.code
ORDER BY a.district NULLS FIRST, n.code;

-- A pass's levels go through one COPY into this staging table, then one statement each into the history
-- (the rows marked `history`) and the latest table: a city's thousands of levels in a few round trips.
-- name: create_level_staging
CREATE TEMP TABLE IF NOT EXISTS level_staging (
    computed_at timestamptz, circle_id text, necessity text, stock double precision,
    stock_unconfirmed double precision, unconfirmed_age_s double precision, daily_demand double precision,
    demand_source text, demand_observed double precision, observed_raw double precision[],
    days_of_supply double precision, coverage double precision, coverage_stock double precision,
    outlets_expected integer, outlets_fresh integer, status text, lag_reports bigint, lag_s double precision,
    grade smallint, recorded_at timestamptz, history boolean
) ON COMMIT DELETE ROWS;

-- name: copy_level_staging
COPY level_staging (computed_at, circle_id, necessity, stock, stock_unconfirmed, unconfirmed_age_s, daily_demand,
                    demand_source, demand_observed, observed_raw, days_of_supply, coverage, coverage_stock,
                    outlets_expected, outlets_fresh, status, lag_reports, lag_s, grade, recorded_at, history)
FROM STDIN;

-- name: insert_history_from_staging
INSERT INTO circle_levels (computed_at, circle_id, necessity, stock, stock_unconfirmed, unconfirmed_age_s,
                           daily_demand, demand_source, demand_observed, days_of_supply, coverage,
                           coverage_stock, outlets_expected, outlets_fresh, status, lag_reports, lag_s, grade)
SELECT computed_at, circle_id, necessity, stock, stock_unconfirmed, unconfirmed_age_s, daily_demand, demand_source,
       demand_observed, days_of_supply, coverage, coverage_stock, outlets_expected, outlets_fresh, status,
       lag_reports, lag_s, grade
FROM level_staging WHERE history
ON CONFLICT (circle_id, necessity, computed_at) DO NOTHING;

-- name: upsert_latest_from_staging
INSERT INTO circle_levels_latest (circle_id, necessity, computed_at, stock, stock_unconfirmed, unconfirmed_age_s,
                                  daily_demand, demand_source, demand_observed, demand_observed_recent,
                                  days_of_supply, coverage, coverage_stock, outlets_expected, outlets_fresh, status,
                                  lag_reports, lag_s, grade, recorded_at)
SELECT circle_id, necessity, computed_at, stock, stock_unconfirmed, unconfirmed_age_s, daily_demand, demand_source,
       demand_observed, observed_raw, days_of_supply, coverage, coverage_stock, outlets_expected, outlets_fresh,
       status, lag_reports, lag_s, grade, recorded_at
FROM level_staging
ON CONFLICT (circle_id, necessity) DO UPDATE
SET computed_at = EXCLUDED.computed_at, stock = EXCLUDED.stock, stock_unconfirmed = EXCLUDED.stock_unconfirmed,
    unconfirmed_age_s = EXCLUDED.unconfirmed_age_s, daily_demand = EXCLUDED.daily_demand,
    demand_source = EXCLUDED.demand_source, demand_observed = EXCLUDED.demand_observed,
    demand_observed_recent = EXCLUDED.demand_observed_recent, days_of_supply = EXCLUDED.days_of_supply,
    coverage = EXCLUDED.coverage, coverage_stock = EXCLUDED.coverage_stock,
    outlets_expected = EXCLUDED.outlets_expected, outlets_fresh = EXCLUDED.outlets_fresh, status = EXCLUDED.status,
    lag_reports = EXCLUDED.lag_reports, lag_s = EXCLUDED.lag_s, grade = EXCLUDED.grade,
    recorded_at = EXCLUDED.recorded_at
WHERE circle_levels_latest.computed_at <= EXCLUDED.computed_at;

-- name: insert_circle_level
INSERT INTO circle_levels (computed_at, circle_id, necessity, stock, stock_unconfirmed, unconfirmed_age_s,
                           daily_demand, demand_source, demand_observed, days_of_supply, coverage,
                           coverage_stock, outlets_expected, outlets_fresh, status, lag_reports, lag_s, grade)
VALUES (%(computed_at)s, %(circle_id)s, %(necessity)s, %(stock)s, %(stock_unconfirmed)s, %(unconfirmed_age_s)s,
        %(daily_demand)s, %(demand_source)s, %(demand_observed)s, %(days_of_supply)s, %(coverage)s,
        %(coverage_stock)s, %(outlets_expected)s, %(outlets_fresh)s, %(status)s, %(lag_reports)s, %(lag_s)s,
        %(grade)s)
ON CONFLICT (circle_id, necessity, computed_at) DO NOTHING;

-- name: upsert_circle_level_latest
INSERT INTO circle_levels_latest (circle_id, necessity, computed_at, stock, stock_unconfirmed, unconfirmed_age_s,
                                  daily_demand, demand_source, demand_observed, demand_observed_recent,
                                  days_of_supply, coverage, coverage_stock, outlets_expected, outlets_fresh, status,
                                  lag_reports, lag_s, grade, recorded_at)
VALUES (%(circle_id)s, %(necessity)s, %(computed_at)s, %(stock)s, %(stock_unconfirmed)s, %(unconfirmed_age_s)s,
        %(daily_demand)s, %(demand_source)s, %(demand_observed)s, %(observed_raw)s::double precision[],
        %(days_of_supply)s, %(coverage)s, %(coverage_stock)s, %(outlets_expected)s, %(outlets_fresh)s, %(status)s,
        %(lag_reports)s, %(lag_s)s, %(grade)s, %(recorded_at)s)
ON CONFLICT (circle_id, necessity) DO UPDATE
SET computed_at = EXCLUDED.computed_at, stock = EXCLUDED.stock, stock_unconfirmed = EXCLUDED.stock_unconfirmed,
    unconfirmed_age_s = EXCLUDED.unconfirmed_age_s, daily_demand = EXCLUDED.daily_demand,
    demand_source = EXCLUDED.demand_source, demand_observed = EXCLUDED.demand_observed,
    demand_observed_recent = EXCLUDED.demand_observed_recent, days_of_supply = EXCLUDED.days_of_supply, coverage = EXCLUDED.coverage,
    coverage_stock = EXCLUDED.coverage_stock, outlets_expected = EXCLUDED.outlets_expected,
    outlets_fresh = EXCLUDED.outlets_fresh, status = EXCLUDED.status,
    lag_reports = EXCLUDED.lag_reports, lag_s = EXCLUDED.lag_s, grade = EXCLUDED.grade,
    recorded_at = EXCLUDED.recorded_at
WHERE circle_levels_latest.computed_at <= EXCLUDED.computed_at;

-- ---------------------------------------------------------------- alerts

-- name: evaluation_lock
SELECT pg_advisory_xact_lock(7243);

-- Each level with the days of supply about %(trend_s)s seconds earlier (days_before, for the trend:
-- the newest level at least that old and less than twice that old; one index probe per level).
-- name: levels_for_rules
SELECT l.circle_id, c.name AS circle_name, l.necessity, n.name_zh AS necessity_name, n.unit,
       l.computed_at, l.lag_s, l.stock, l.daily_demand, l.days_of_supply, l.coverage, l.coverage_stock, l.status,
       n.watch_days, n.shortage_days, n.critical_days, n.min_coverage, h.days_of_supply AS days_before
FROM circle_levels_latest l
JOIN circles c ON c.id = l.circle_id
JOIN necessities n ON n.code = l.necessity
LEFT JOIN LATERAL (
    SELECT b.days_of_supply FROM circle_levels b
    WHERE b.circle_id = l.circle_id AND b.necessity = l.necessity
      AND b.computed_at <= l.computed_at - make_interval(secs => %(trend_s)s)
      AND b.computed_at > l.computed_at - make_interval(secs => 2 * %(trend_s)s)
    ORDER BY b.computed_at DESC LIMIT 1
) h ON true;

-- The columns of an alert the lifecycle reads (alerts/evaluate.py `_alert`).
-- name: open_alerts
SELECT id, fingerprint, rule, circle_id, necessity, severity, state, labels, annotations,
       pending_since, starts_at, ends_at, clearing_since, acknowledged_at, acknowledged_by, resolved_by,
       reopened_at, reopen_count, escalation_level, escalated_at, notified_severity, renotified_at,
       unknown_since, data_missing_at, silence_id, teams
FROM alerts WHERE state <> 'resolved' AND rule = %(rule)s
FOR UPDATE;

-- The latest resolved alert of each fingerprint of a rule that fired and resolved since %(since)s:
-- what a recurrence within the reopen window reopens. (No lock: nothing but an evaluation, which holds
-- evaluation_lock, changes a resolved alert.)
-- name: recent_alerts
SELECT DISTINCT ON (fingerprint)
       id, fingerprint, rule, circle_id, necessity, severity, state, labels, annotations,
       pending_since, starts_at, ends_at, clearing_since, acknowledged_at, acknowledged_by, resolved_by,
       reopened_at, reopen_count, escalation_level, escalated_at, notified_severity, renotified_at,
       unknown_since, data_missing_at, silence_id, teams
FROM alerts
WHERE rule = %(rule)s AND state = 'resolved' AND starts_at IS NOT NULL AND ends_at >= %(since)s
ORDER BY fingerprint, ends_at DESC, id DESC;

-- Every open alert after the rules ran (escalation), and whether its circle was removed.
-- name: open_alerts_all
SELECT id, fingerprint, rule, circle_id, necessity, severity, state, labels, annotations,
       pending_since, starts_at, ends_at, clearing_since, acknowledged_at, acknowledged_by, resolved_by,
       reopened_at, reopen_count, escalation_level, escalated_at, notified_severity, renotified_at,
       unknown_since, data_missing_at, silence_id, teams,
       (circle_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM circles c WHERE c.id = alerts.circle_id))
           AS circle_removed
FROM alerts WHERE state <> 'resolved'
ORDER BY id
FOR UPDATE;

-- A new alert (the lifecycle's other columns follow with update_alert).
-- name: insert_alert
INSERT INTO alerts (fingerprint, rule, circle_id, necessity, severity, state, labels, annotations,
                    pending_since, starts_at)
VALUES (%(fingerprint)s, %(rule)s, %(circle_id)s, %(necessity)s, %(severity)s, %(state)s, %(labels)s,
        %(annotations)s, %(pending_since)s, %(starts_at)s)
RETURNING id;

-- name: update_alert
UPDATE alerts
SET severity = %(severity)s, state = %(state)s, labels = %(labels)s, annotations = %(annotations)s,
    pending_since = %(pending_since)s, starts_at = %(starts_at)s, ends_at = %(ends_at)s,
    clearing_since = %(clearing_since)s, acknowledged_at = %(acknowledged_at)s,
    acknowledged_by = %(acknowledged_by)s, resolved_by = %(resolved_by)s, reopened_at = %(reopened_at)s,
    reopen_count = %(reopen_count)s, escalation_level = %(escalation_level)s, escalated_at = %(escalated_at)s,
    notified_severity = %(notified_severity)s, renotified_at = %(renotified_at)s,
    unknown_since = %(unknown_since)s, data_missing_at = %(data_missing_at)s, silence_id = %(silence_id)s,
    teams = %(teams)s::text[], updated_at = now()
WHERE id = %(id)s;

-- One change of an alert (alert_events; the dispatcher's, in the evaluation's transaction).
-- name: record_alert_event
INSERT INTO alert_events (alert_id, at, kind, actor, detail)
VALUES (%(alert_id)s, %(at)s, %(kind)s, %(actor)s, %(detail)s);

-- One grouped page of an evaluation wave (alerts/group.py): one row per receiver, group and wave.
-- name: queue_notification
INSERT INTO notifications (alert_id, alert_ids, receiver, status, group_key, reasons, wave_at, payload)
VALUES (%(alert_id)s, %(alert_ids)s, %(receiver)s, %(status)s, %(group_key)s, %(reasons)s, %(wave_at)s,
        %(payload)s)
ON CONFLICT (receiver, group_key, wave_at, status) DO NOTHING;

-- One alert's page, its own group (tests and tools that queue a page by hand).
-- name: insert_notification
INSERT INTO notifications (alert_id, alert_ids, receiver, status, group_key, payload)
VALUES (%(alert_id)s, ARRAY[%(alert_id)s::bigint], %(receiver)s, %(status)s, 'alert:' || %(alert_id)s::text,
        %(payload)s)
ON CONFLICT (receiver, group_key, wave_at, status) DO NOTHING;

-- The outbox (alerts/dispatch.py). A row is queued until delivered or expired;
-- a dispatcher leases it (short transaction), sends it outside any transaction,
-- and records the outcome (another short transaction). Times are %(now)s, the
-- dispatcher's clock, so tests drive them.

-- Receivers with something to send now, in the order claim_notifications allows
-- (a dispatcher starts one lane for each).
-- name: due_receivers
SELECT DISTINCT receiver
FROM notifications
WHERE state = 'queued' AND next_attempt_at <= %(now)s AND (leased_until IS NULL OR leased_until <= %(now)s)
  AND NOT EXISTS (
      SELECT 1 FROM notifications e
      WHERE e.group_key = notifications.group_key AND e.receiver = notifications.receiver
        AND e.id < notifications.id AND e.state = 'queued'
  );

-- Lease up to %(limit)s of a receiver's due rows, at most one per group (a
-- circle and team, alerts/group.py; every alert is always in the same group of
-- a receiver): the oldest queued row of each (group, receiver), so a later
-- notification of an alert (its resolution) waits while an earlier one (its
-- firing) is not yet delivered, even while that one backs off or is leased by
-- another dispatcher.
-- A lapsed lease (its dispatcher died mid-delivery) is taken over and
-- recorded as a lost attempt.
-- name: claim_notifications
WITH due AS (
    SELECT n.id, n.lease_owner AS lost_owner, n.leased_at AS lost_at, n.leased_until AS lost_until,
           n.attempts AS lost_attempt
    FROM notifications n
    WHERE n.receiver = %(receiver)s AND n.state = 'queued' AND n.next_attempt_at <= %(now)s
      AND (n.leased_until IS NULL OR n.leased_until <= %(now)s)
      AND NOT EXISTS (
          SELECT 1 FROM notifications e
          WHERE e.group_key = n.group_key AND e.receiver = n.receiver AND e.id < n.id AND e.state = 'queued'
      )
    ORDER BY n.id
    LIMIT %(limit)s
    FOR UPDATE OF n SKIP LOCKED
),
lost AS (
    INSERT INTO notification_attempts (notification_id, attempt, dispatcher, started_at, finished_at, outcome, error)
    SELECT id, lost_attempt, lost_owner, lost_at, lost_until, 'lost',
           'no result before the lease ran out (dispatcher stopped mid-delivery?); sending again'
    FROM due WHERE lost_owner IS NOT NULL
)
UPDATE notifications n
SET lease_owner = %(owner)s, leased_at = %(now)s, leased_until = %(now)s + make_interval(secs => %(lease_s)s),
    attempts = n.attempts + 1
FROM due
WHERE n.id = due.id
RETURNING n.id, n.alert_id, n.receiver, n.status, n.payload, n.attempts, n.created_at;

-- The receiver took it. Whoever holds the lease now, this is a fact: record it
-- once (a row already delivered or expired stays as it is).
-- name: mark_delivered
WITH done AS (
    UPDATE notifications
    SET state = 'delivered', delivered_at = %(now)s, last_error = NULL,
        lease_owner = NULL, leased_at = NULL, leased_until = NULL
    WHERE id = %(id)s AND state = 'queued'
    RETURNING id
)
INSERT INTO notification_attempts (notification_id, attempt, dispatcher, started_at, finished_at, outcome)
SELECT %(id)s, %(attempt)s, %(owner)s, %(started_at)s, %(now)s, 'delivered';

-- It failed: retry after %(backoff_s)s. Only the lease holder may reschedule
-- (a dispatcher that lost its lease must not free a row another one is sending).
-- name: mark_failed
WITH failed AS (
    UPDATE notifications
    SET last_error = %(error)s, next_attempt_at = %(now)s + make_interval(secs => %(backoff_s)s),
        lease_owner = NULL, leased_at = NULL, leased_until = NULL
    WHERE id = %(id)s AND state = 'queued' AND lease_owner = %(owner)s
    RETURNING id
)
INSERT INTO notification_attempts (notification_id, attempt, dispatcher, started_at, finished_at, outcome, error)
VALUES (%(id)s, %(attempt)s, %(owner)s, %(started_at)s, %(now)s, 'failed', %(error)s);

-- Give up on rows queued since before %(before)s (not while one is being sent):
-- state 'expired', the last error kept, an 'expired' attempt saying why.
-- name: expire_notifications
WITH expired AS (
    UPDATE notifications
    SET state = 'expired', expired_at = %(now)s,
        lease_owner = NULL, leased_at = NULL, leased_until = NULL
    WHERE state = 'queued' AND created_at < %(before)s AND (leased_until IS NULL OR leased_until <= %(now)s)
    RETURNING id, alert_id, receiver, status, attempts, last_error, created_at
),
logged AS (
    INSERT INTO notification_attempts (notification_id, attempt, dispatcher, started_at, finished_at, outcome, error)
    SELECT id, attempts, %(owner)s, %(now)s, %(now)s, 'expired',
           %(reason)s || CASE WHEN attempts = 0 THEN '; never attempted (is the receiver configured?)'
                              ELSE '; ' || attempts || ' attempt(s), last error: ' || coalesce(last_error, '-') END
    FROM expired
)
SELECT id, alert_id, receiver, status, attempts, last_error, created_at FROM expired ORDER BY id;

-- The notification log: who was told what, when, and whether it got through.
-- name: notification_log
SELECT n.id, n.alert_id, n.alert_ids, n.reasons, a.rule, a.circle_id, a.necessity, a.severity, n.receiver,
       n.status, n.state, n.created_at, n.attempts, n.next_attempt_at, n.delivered_at, n.expired_at, n.last_error,
       n.lease_owner, n.leased_until
FROM notifications n
JOIN alerts a ON a.id = n.alert_id
WHERE (%(alert_id)s::bigint IS NULL OR n.alert_ids @> ARRAY[%(alert_id)s::bigint])
  AND (%(receiver)s::text IS NULL OR n.receiver = %(receiver)s::text)
  AND (NOT %(undelivered)s::boolean OR n.state <> 'delivered')
ORDER BY n.id DESC
LIMIT %(limit)s;

-- name: notification_attempts
SELECT notification_id, attempt, dispatcher, started_at, finished_at, outcome, error
FROM notification_attempts
WHERE notification_id = ANY(%(ids)s)
ORDER BY notification_id, id;

-- name: alerts_list
SELECT id, fingerprint, rule, circle_id, necessity, severity, state, pending_since, starts_at, ends_at,
       acknowledged_at, acknowledged_by
FROM alerts ORDER BY id DESC LIMIT %(limit)s;

-- Per supplier: records accepted, rejected and dead-lettered over the last %(window)s minutes.
-- name: feed_quality
SELECT s.id AS supplier_id, s.name AS supplier_name,
       coalesce(sum(f.accepted), 0) AS accepted,
       coalesce(sum(f.rejected), 0) AS rejected,
       coalesce(sum(f.dead_lettered), 0) AS dead_lettered
FROM suppliers s
LEFT JOIN feed_health f ON f.supplier_id = s.id AND f.minute >= now() - make_interval(mins => %(window)s)
GROUP BY s.id, s.name;

-- ---------------------------------------------------------------- pipeline: is it current?

-- What the worker has written of each supply partition (stream_offsets is
-- written with each batch, in the batch's transaction).
-- name: written_offsets
SELECT topic, partition, next_offset, message_at, written_at
FROM stream_offsets
WHERE topic = ANY(%(topics)s)
ORDER BY topic, partition;

-- The heartbeat of one stage, written after every level pass.
-- name: upsert_pipeline_status
INSERT INTO pipeline_status (id, levels_at, lag_reports, lag_s, worker, updated_at)
VALUES (%(stage)s, %(levels_at)s, %(lag_reports)s, %(lag_s)s, %(worker)s, now())
ON CONFLICT (id) DO UPDATE
SET levels_at = EXCLUDED.levels_at, lag_reports = EXCLUDED.lag_reports, lag_s = EXCLUDED.lag_s,
    worker = EXCLUDED.worker, updated_at = EXCLUDED.updated_at
WHERE pipeline_status.levels_at <= EXCLUDED.levels_at;

-- name: pipeline_status_for_rules
SELECT id, levels_at, lag_reports, lag_s, worker, updated_at FROM pipeline_status WHERE id = %(stage)s;

-- Levels per status, and in how many circles each status occurs.
-- name: levels_by_status
SELECT status, count(*) AS levels, count(DISTINCT circle_id) AS circles
FROM circle_levels_latest
GROUP BY status;
