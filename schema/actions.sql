-- Statements of alerts/actions.py and alerts/responders.py: acting on alerts (acknowledge, resolve,
-- comment), their audit trail (alert_events), silences and responder keys (migration 0014).
-- Times are %(now)s, the caller's clock, so tests drive them.

-- ---------------------------------------------------------------- alerts

-- Locks the alert for the rest of the action's transaction: two people acting at once act one after the other.
-- name: alert_for_action
SELECT id, rule, state, severity, circle_id, necessity, labels, annotations, pending_since, starts_at, ends_at,
       acknowledged_at, acknowledged_by, resolved_by
FROM alerts WHERE id = %(id)s
FOR NO KEY UPDATE;

-- name: acknowledge_alert
UPDATE alerts
SET state = 'acknowledged', acknowledged_at = %(now)s, acknowledged_by = %(actor)s, updated_at = now()
WHERE id = %(id)s AND state = 'firing';

-- name: resolve_alert
UPDATE alerts
SET state = 'resolved', ends_at = %(now)s, resolved_by = %(actor)s, clearing_since = NULL, updated_at = now()
WHERE id = %(id)s AND state <> 'resolved';

-- name: insert_alert_event
INSERT INTO alert_events (alert_id, at, kind, actor, detail)
VALUES (%(alert_id)s, %(at)s, %(kind)s, %(actor)s, %(detail)s)
RETURNING id;

-- The whole alert row (columns added by later migrations come along).
-- name: alert_detail
SELECT * FROM alerts WHERE id = %(id)s;

-- name: alert_history
SELECT id, at, kind, actor, detail FROM alert_events WHERE alert_id = %(id)s ORDER BY at, id;

-- Alerts by state: 'open' = not resolved (the default), 'all', or one state.
-- name: list_alerts
SELECT id, rule, state, severity, circle_id, necessity, labels, annotations, pending_since, starts_at, ends_at,
       acknowledged_at, acknowledged_by, resolved_by
FROM alerts
WHERE CASE %(state)s::text WHEN 'open' THEN state <> 'resolved' WHEN 'all' THEN true ELSE state = %(state)s::text END
  AND (%(circle)s::text IS NULL OR circle_id = %(circle)s::text)
  AND (%(necessity)s::text IS NULL OR necessity = %(necessity)s::text)
  AND (%(rule)s::text IS NULL OR rule = %(rule)s::text)
  AND (%(severity)s::text IS NULL OR severity = %(severity)s::text)
ORDER BY id DESC
LIMIT %(limit)s;

-- ---------------------------------------------------------------- silences

-- name: insert_silence
INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment, created_at)
VALUES (%(matchers)s, %(starts_at)s, %(ends_at)s, %(created_by)s, %(comment)s, %(now)s)
RETURNING id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_by;

-- Active and pending silences (not yet ended at %(now)s): what the dispatcher matches alerts against.
-- name: current_silences
SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_by
FROM silences WHERE ends_at > %(now)s
ORDER BY id;

-- name: all_silences
SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_by
FROM silences
ORDER BY id DESC
LIMIT %(limit)s;

-- name: silence_by_id
SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_by
FROM silences WHERE id = %(id)s
FOR NO KEY UPDATE;

-- Ends a silence now; a silence that had not started yet ends before it starts (it never was).
-- name: expire_silence
UPDATE silences
SET ends_at = %(now)s, starts_at = least(starts_at, %(now)s), expired_by = %(actor)s
WHERE id = %(id)s AND ends_at > %(now)s
RETURNING id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_by;

-- ---------------------------------------------------------------- responder keys

-- name: find_member
SELECT m.team_id, m.member_id, m.name, t.name AS team_name
FROM team_members m JOIN teams t ON t.id = m.team_id
WHERE m.member_id = %(member_id)s AND (%(team_id)s::text IS NULL OR m.team_id = %(team_id)s::text)
ORDER BY m.team_id;

-- No row back means the random prefix collided with an existing key: draw another.
-- name: insert_responder_key
INSERT INTO responder_keys (prefix, team_id, member_id, key_hash, created_by)
VALUES (%(prefix)s, %(team_id)s, %(member_id)s, %(key_hash)s, %(created_by)s)
ON CONFLICT (prefix) DO NOTHING
RETURNING prefix, team_id, member_id, created_at;

-- The key and its member, if the member is still in the team (member_name NULL: no longer).
-- name: responder_key_lookup
SELECT k.prefix, k.team_id, k.member_id, k.key_hash, k.revoked_at, m.name AS member_name
FROM responder_keys k
LEFT JOIN team_members m ON m.team_id = k.team_id AND m.member_id = k.member_id
WHERE k.prefix = %(prefix)s;

-- Never selects key_hash: listings carry no key material.
-- name: list_responder_keys
SELECT k.prefix, k.team_id, k.member_id, m.name AS member_name, k.created_at, k.created_by, k.revoked_at,
       k.revoked_by
FROM responder_keys k
LEFT JOIN team_members m ON m.team_id = k.team_id AND m.member_id = k.member_id
WHERE %(team_id)s::text IS NULL OR k.team_id = %(team_id)s::text
ORDER BY k.team_id, k.member_id, k.created_at, k.prefix;

-- No row back: unknown or already revoked.
-- name: revoke_responder_key
UPDATE responder_keys
SET revoked_at = %(now)s, revoked_by = %(actor)s
WHERE prefix = %(prefix)s AND revoked_at IS NULL
RETURNING prefix, team_id, member_id, revoked_at;

-- Whether a responder's team may act on an alert: it was told (routed or
-- escalated to), it answers for the alert's circle (its team, owner or one of
-- its communities), or it oversees every circle (bureaus, operators). No row:
-- no such alert (the action itself answers 404).
-- name: responder_may_act
SELECT t.id = ANY(a.teams)
       OR t.kind IN ('district_bureau', 'city_bureau', 'market_supervision', 'operators')
       OR t.circle_id = a.circle_id
       OR EXISTS (SELECT 1 FROM communities m WHERE m.id = t.community_id AND m.circle_id = a.circle_id)
       AS may_act,
       t.name AS team_name
FROM alerts a
JOIN teams t ON t.id = %(team_id)s
WHERE a.id = %(alert_id)s;
