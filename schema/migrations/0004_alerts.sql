-- Alerts and their notifications.

-- One row per alert episode. The partial unique index allows at most one open
-- (pending or firing) alert per fingerprint: an ongoing condition can never
-- open a second alert, so it can never page twice.
CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    fingerprint     text NOT NULL,
    rule            text NOT NULL,
    circle_id       text,
    necessity       text,
    severity        text NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    labels          jsonb NOT NULL,
    annotations     jsonb NOT NULL,
    pending_since   timestamptz NOT NULL,
    starts_at       timestamptz,                        -- when it fired
    ends_at         timestamptz,                        -- when it resolved
    clearing_since  timestamptz,                        -- recovery seen, waiting out clear_for
    acknowledged_at timestamptz,
    acknowledged_by text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (fingerprint) WHERE state <> 'resolved';
CREATE INDEX alerts_state ON alerts (state);

-- The notification outbox: written in the same transaction as the alert
-- change, delivered by the dispatcher, retried until a receiver takes it.
-- The unique key makes each (alert, receiver, status) page exactly once.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES alerts (id),
    receiver        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('firing', 'resolved')),
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text,
    UNIQUE (alert_id, receiver, status)
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at) WHERE delivered_at IS NULL;
