-- The supplier API's refused requests and rejection reports (loaded by ingest/refusals.py, ingest/rejections.py
-- and alerts/rules/refusals.py; tables in migrations/0023_refused_requests.sql).

-- name: add_feed_requests
INSERT INTO feed_requests (supplier_id, key_prefix, minute, outcome, requests)
VALUES (%(supplier_id)s, %(key_prefix)s, %(minute)s, %(outcome)s, %(requests)s)
ON CONFLICT (supplier_id, key_prefix, minute, outcome)
DO UPDATE SET requests = feed_requests.requests + EXCLUDED.requests;

-- name: purge_feed_requests
DELETE FROM feed_requests WHERE minute < now() - interval '1 day';

-- name: insert_rejection_report
INSERT INTO rejection_reports (request_id, supplier_id, rejected, body)
VALUES (%(request_id)s, %(supplier_id)s, %(rejected)s, %(body)s);

-- Only the supplier that sent the request gets its report, and only while it is fresh.
-- name: rejection_report
SELECT body, rejected, created_at FROM rejection_reports
WHERE request_id = %(request_id)s AND supplier_id = %(supplier_id)s
  AND created_at > now() - make_interval(secs => %(ttl_s)s);

-- name: purge_rejection_reports
DELETE FROM rejection_reports WHERE created_at < now() - make_interval(secs => %(ttl_s)s);

-- Per key (every issued key, so a key whose refusals stopped gets its all-clear) over the last %(window)s
-- minutes: requests answered, and those refused (anything but ok) by outcome.
-- name: refused_requests
SELECT k.supplier_id, s.name AS supplier_name, k.prefix AS key_prefix,
       coalesce(sum(r.requests), 0) AS requests,
       coalesce(sum(r.requests) FILTER (WHERE r.outcome <> 'ok'), 0) AS refused,
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'rejected'), 0) AS rejected,
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'bad_request'), 0) AS bad_request,
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'oversize'), 0) AS oversize,
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'throttled'), 0) AS throttled,
       coalesce(sum(r.requests) FILTER (WHERE r.outcome = 'timeout'), 0) AS timeout
FROM api_keys k
JOIN suppliers s ON s.id = k.supplier_id
LEFT JOIN feed_requests r
       ON r.key_prefix = k.prefix AND r.minute >= now() - make_interval(mins => %(window)s)
GROUP BY k.supplier_id, s.name, k.prefix;
