-- Delivery that cannot stall or reorder (alerts/dispatch.py).
--
-- A notification is queued until a receiver takes it (delivered) or it is
-- given up after `notify_expire_h` (expired, its last error kept). A
-- dispatcher claims a row with a lease (`lease_owner`, `leased_at`,
-- `leased_until`) in a short transaction, sends it outside any transaction,
-- and records the outcome in another; a dispatcher that dies holding a lease
-- loses nothing: the lease lapses and the row is sent again (at-least-once).
ALTER TABLE notifications
    ADD COLUMN state        text NOT NULL DEFAULT 'queued'
                            CHECK (state IN ('queued', 'delivered', 'expired')),
    ADD COLUMN lease_owner  text,                        -- the dispatcher sending it now, or that died sending it
    ADD COLUMN leased_at    timestamptz,
    ADD COLUMN leased_until timestamptz,                 -- after this another dispatcher may send it again
    ADD COLUMN expired_at   timestamptz;

UPDATE notifications SET state = 'delivered' WHERE delivered_at IS NOT NULL;

DROP INDEX notifications_pending;
CREATE INDEX notifications_queued ON notifications (receiver, next_attempt_at) WHERE state = 'queued';
CREATE INDEX notifications_alert ON notifications (alert_id, receiver, id);

-- The notification log: every attempt to deliver a notification, and its outcome.
--   delivered  the receiver took it
--   failed     it refused or did not answer in time (error says how); retried with back-off
--   lost       the dispatcher holding the lease never reported back (killed?); sent again
--   expired    given up after notify_expire_h (the notification keeps its last error)
CREATE TABLE notification_attempts (
    id              bigserial PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES notifications (id),
    attempt         integer NOT NULL,                   -- 1 for the first try
    dispatcher      text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'lost', 'expired')),
    error           text
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, id);
