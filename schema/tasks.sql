-- Supply tasks and restock suggestions (alerts/restock.py, alerts/tasks_store.py; migration 0015).

-- ---------------------------------------------------------------- restock suggestions

-- The short circle: its centre, its latest level of the necessity, and its target
-- (the necessity's watch_days). No row when the level was never computed.
-- name: restock_need
SELECT c.id AS circle_id, c.center_lat, c.center_lon, n.code AS necessity, n.unit, n.watch_days AS target_days,
       l.stock, l.daily_demand, l.days_of_supply, l.status, l.computed_at
FROM circles c
JOIN necessities n ON n.code = %(necessity)s
JOIN circle_levels_latest l ON l.circle_id = c.id AND l.necessity = n.code
WHERE c.id = %(circle_id)s;

-- Candidate sources: every active outlet with fresh (confirmed) stock of the
-- necessity as of %(now)s (`counted_stock`, the stock the levels count) that
-- serves a neighbouring circle (centre within %(radius_km)s km of the short
-- circle's centre) and does not serve the short circle itself. One row per
-- candidate and circle it serves (ALL its circles, near or not: taking stock
-- lowers each), with that circle's latest level and target (NULLs: no level).
-- name: restock_candidates
WITH short AS (
    SELECT id, radians(center_lat) AS lat, radians(center_lon) AS lon FROM circles WHERE id = %(circle_id)s
), near AS (
    SELECT c.id
    FROM circles c, short s
    WHERE c.id <> s.id
      AND 2 * 6371.0088 * asin(least(1.0, sqrt(
              sin((radians(c.center_lat) - s.lat) / 2) ^ 2
              + cos(s.lat) * cos(radians(c.center_lat)) * sin((radians(c.center_lon) - s.lon) / 2) ^ 2
          ))) <= %(radius_km)s
), sources AS (
    SELECT oc.outlet_id FROM outlet_circles oc JOIN near ON near.id = oc.circle_id
    EXCEPT
    SELECT oc.outlet_id FROM outlet_circles oc WHERE oc.circle_id = %(circle_id)s
), fresh AS (
    SELECT k.outlet_id, k.quantity
    FROM counted_stock(%(now)s) k
    JOIN sources s ON s.outlet_id = k.outlet_id
    WHERE k.necessity = %(necessity)s AND k.fresh AND k.quantity > 0
)
SELECT f.outlet_id, o.name AS outlet_name, o.lat, o.lon, m.circle_id AS home_circle, f.quantity,
       oc.circle_id, l.stock, l.daily_demand, l.days_of_supply, l.status, n.watch_days AS target_days
FROM fresh f
JOIN outlets o ON o.id = f.outlet_id
JOIN communities m ON m.id = o.community_id
JOIN outlet_circles oc ON oc.outlet_id = f.outlet_id
JOIN necessities n ON n.code = %(necessity)s
LEFT JOIN circle_levels_latest l ON l.circle_id = oc.circle_id AND l.necessity = n.code
ORDER BY f.outlet_id, oc.circle_id;

-- ---------------------------------------------------------------- supply tasks

-- The alert a task is opened for; `paged_at`: when it fired, or last reopened (migration 0013).
-- name: task_alert
SELECT id, rule, circle_id, necessity, state, coalesce(reopened_at, starts_at) AS paged_at,
       acknowledged_at, acknowledged_by
FROM alerts WHERE id = %(alert_id)s;

-- A task as shown (with the necessity's unit): by id, or an alert's newest.
-- name: task_get
SELECT t.*, n.unit
FROM supply_tasks t LEFT JOIN necessities n ON n.code = t.necessity
WHERE t.id = %(id)s::bigint OR t.alert_id = %(alert_id)s::bigint
ORDER BY t.id DESC
LIMIT 1;

-- The newest tasks first; %(open)s: not closed ones only.
-- name: task_list
SELECT t.*, n.unit
FROM supply_tasks t LEFT JOIN necessities n ON n.code = t.necessity
WHERE NOT %(open)s::boolean OR t.state <> 'closed'
ORDER BY t.id DESC
LIMIT %(limit)s;

-- One open task per alert: a second acknowledgement (or a concurrent one) inserts nothing.
-- name: insert_task
INSERT INTO supply_tasks (alert_id, circle_id, necessity, target_days, target_quantity, suggestions, paged_at,
                          acknowledged_at, opened_at, opened_by)
VALUES (%(alert_id)s, %(circle_id)s, %(necessity)s, %(target_days)s, %(target_quantity)s, %(suggestions)s,
        %(paged_at)s, %(acknowledged_at)s, %(now)s, %(actor)s)
ON CONFLICT (alert_id) WHERE state <> 'closed' DO NOTHING
RETURNING id;

-- name: lock_task
SELECT t.*, n.unit
FROM supply_tasks t LEFT JOIN necessities n ON n.code = t.necessity
WHERE t.id = %(id)s
FOR UPDATE OF t;

-- A manual move (alerts/tasks.py checked it): the state, and when and by whom it was reached.
-- name: move_task
UPDATE supply_tasks
SET state = %(state)s,
    dispatched_at = CASE WHEN %(state)s::text = 'dispatched' THEN %(now)s ELSE dispatched_at END,
    dispatched_by = CASE WHEN %(state)s::text = 'dispatched' THEN %(actor)s ELSE dispatched_by END,
    delivered_at = CASE WHEN %(state)s::text = 'delivered' THEN %(now)s ELSE delivered_at END,
    delivered_by = CASE WHEN %(state)s::text = 'delivered' THEN %(actor)s ELSE delivered_by END
WHERE id = %(id)s;

-- name: insert_task_event
INSERT INTO alert_events (alert_id, at, kind, actor, detail)
VALUES (%(alert_id)s, %(now)s, %(kind)s, %(actor)s, %(detail)s);

-- Close every task whose alert has resolved, from whatever state, at %(now)s:
-- `recovered_at` is the alert's end when it resolved by itself (the level
-- recovered), NULL when a person resolved it. Each close is a `task_closed`
-- event of the alert, by 'dispatcher' (it runs in the evaluation). Answers the tasks closed.
-- name: close_recovered_tasks
WITH due AS (
    SELECT t.id, t.alert_id, t.state AS was, a.ends_at, a.resolved_by
    FROM supply_tasks t
    JOIN alerts a ON a.id = t.alert_id
    WHERE t.state <> 'closed' AND a.state = 'resolved'
    ORDER BY t.id
    FOR UPDATE OF t
), closed AS (
    UPDATE supply_tasks t
    SET state = 'closed', closed_at = %(now)s,
        recovered_at = CASE WHEN due.resolved_by IS NULL THEN coalesce(due.ends_at, %(now)s) END
    FROM due
    WHERE t.id = due.id
    RETURNING t.id, t.alert_id, due.was, t.recovered_at, due.resolved_by
), logged AS (
    INSERT INTO alert_events (alert_id, at, kind, actor, detail)
    SELECT alert_id, %(now)s, 'task_closed', 'dispatcher',
           jsonb_build_object('task_id', id, 'from', was,
                              'reason', CASE WHEN resolved_by IS NULL THEN 'recovered' ELSE 'resolved' END,
                              'resolved_by', resolved_by)
    FROM closed
)
SELECT id, alert_id, was, recovered_at, resolved_by FROM closed ORDER BY id;

-- After-action review: per closed task, how long each step took (seconds;
-- NULL where a step never happened, e.g. closed before dispatch, or resolved
-- by a person rather than by recovery). Newest first; %(since)s bounds when it closed.
-- name: task_review
SELECT t.id, t.alert_id, t.circle_id, t.necessity, t.target_quantity, t.state,
       t.paged_at, t.acknowledged_at, t.dispatched_at, t.delivered_at, t.recovered_at, t.closed_at,
       extract(epoch FROM t.acknowledged_at - t.paged_at)::double precision AS page_to_ack_s,
       extract(epoch FROM t.dispatched_at - t.acknowledged_at)::double precision AS ack_to_dispatched_s,
       extract(epoch FROM t.recovered_at - t.dispatched_at)::double precision AS dispatched_to_recovered_s,
       extract(epoch FROM t.recovered_at - t.paged_at)::double precision AS page_to_recovered_s
FROM supply_tasks t
WHERE t.state = 'closed' AND t.closed_at >= %(since)s
ORDER BY t.closed_at DESC, t.id DESC;
