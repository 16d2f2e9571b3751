-- The alert lifecycle people can trust, escalation, and grouped pages (alerts/model.py, alerts/escalate.py,
-- alerts/group.py, alerts/evaluate.py).
--
-- An alert is one row per (rule, fingerprint) while it lasts: pending -> firing -> acknowledged -> resolved,
-- and the same row goes back to firing when the condition recurs within `reopen_window_s` of its
-- resolution (reopen_count + 1). Acknowledging and resolving by hand (alerts/actions.py) write
-- `acknowledged` / `resolved` (with resolved_by). Every change is a row in alert_events.
ALTER TABLE alerts DROP CONSTRAINT alerts_state_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_state_check
    CHECK (state IN ('pending', 'firing', 'acknowledged', 'resolved'));
ALTER TABLE alerts
    ADD COLUMN resolved_by       text,                          -- who resolved it by hand (NULL: it recovered)
    ADD COLUMN reopened_at       timestamptz,                   -- when it last went back to firing
    ADD COLUMN reopen_count      integer NOT NULL DEFAULT 0,
    ADD COLUMN escalation_level  integer NOT NULL DEFAULT 0,    -- 0: only the routed teams were paged
    ADD COLUMN escalated_at      timestamptz,                   -- when it last reached a further team
    ADD COLUMN notified_severity text,                          -- the worst severity anyone was paged about
    ADD COLUMN renotified_at     timestamptz,                   -- when it was last paged again, unresolved
    ADD COLUMN unknown_since     timestamptz,                   -- its data has been unknown (stale) since
    ADD COLUMN data_missing_at   timestamptz,                   -- when the teams were told "data missing"
    ADD COLUMN silence_id        bigint,                        -- the silence that held its last page back
    ADD COLUMN teams             text[] NOT NULL DEFAULT '{}';  -- every team told, in order (routed, escalated)
UPDATE alerts SET notified_severity = severity WHERE starts_at IS NOT NULL;
CREATE INDEX alerts_recent ON alerts (rule, fingerprint, ends_at DESC) WHERE state = 'resolved';

-- The history of every alert: one row per change, by the dispatcher or a person.
-- kinds: pending, fired, reopened, severity_raised, data_missing, data_back, escalated, renotified,
--        silenced, resolved, closed_removed_circle (the dispatcher); acknowledged, resolved, commented,
--        silenced (people, alerts/actions.py); task_opened, task_dispatched, task_delivered, task_closed.
CREATE TABLE alert_events (
    id          bigserial PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id),
    at          timestamptz NOT NULL,
    kind        text NOT NULL,
    actor       text NOT NULL,                                  -- 'dispatcher', or the person
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

-- Pages are grouped: one outbox row per (receiver, group, evaluation wave) lists every alert of its circle
-- for that team (alert_ids; alert_id is the first). A group's rows go out strictly in order per receiver
-- (claim_notifications). Re-notifications, escalations, severity raises and reopenings are new waves, so
-- each can page; a wave evaluated twice (same `wave_at`) pages once.
ALTER TABLE notifications DROP CONSTRAINT notifications_alert_id_receiver_status_key;
ALTER TABLE notifications
    ADD COLUMN group_key text,
    ADD COLUMN alert_ids bigint[],
    ADD COLUMN reasons   text[] NOT NULL DEFAULT '{}',          -- fired, resolved, escalated, data_missing, …
    ADD COLUMN wave_at   timestamptz;
UPDATE notifications SET group_key = 'alert:' || alert_id, alert_ids = ARRAY[alert_id], wave_at = created_at;
ALTER TABLE notifications
    ALTER COLUMN group_key SET NOT NULL,
    ALTER COLUMN alert_ids SET NOT NULL,
    ALTER COLUMN wave_at SET NOT NULL,
    ALTER COLUMN wave_at SET DEFAULT now();
CREATE UNIQUE INDEX notifications_one_per_wave ON notifications (receiver, group_key, wave_at, status);
CREATE INDEX notifications_group ON notifications (group_key, receiver, id) WHERE state = 'queued';
CREATE INDEX notifications_alert_ids ON notifications USING gin (alert_ids);
