-- Supply tasks (issue 9, point 7): acknowledging a shortage opens one for the
-- circle's team, with the quantity that brings the circle back to its target
-- and the suggested sources (alerts/restock.py); the team moves it open ->
-- dispatched -> delivered; it closes when its alert resolves. Its times
-- (paged -> acknowledged -> dispatched -> recovered) are kept for the
-- after-action review (schema/tasks.sql `task_review`).

-- History: each task_* change is an alert_events row of its alert (migration 0013).

CREATE TABLE supply_tasks (
    id              bigserial PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES alerts (id),
    circle_id       text NOT NULL,
    necessity       text NOT NULL,
    target_days     double precision,           -- the target it was sized for (the necessity's watch_days)
    target_quantity double precision,           -- what brings the circle back to target_days; NULL: no level known
    suggestions     jsonb NOT NULL DEFAULT '[]', -- [{outlet_id, outlet_name, circle_id, distance_km, quantity, spare}]
    state           text NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'dispatched', 'delivered', 'closed')),
    paged_at        timestamptz,                -- when the alert fired (or last reopened)
    acknowledged_at timestamptz NOT NULL,       -- the alert's acknowledgement (else when the task opened)
    opened_at       timestamptz NOT NULL,
    opened_by       text NOT NULL,
    dispatched_at   timestamptz,
    dispatched_by   text,
    delivered_at    timestamptz,
    delivered_by    text,
    closed_at       timestamptz,
    recovered_at    timestamptz,                -- the alert's ends_at when it resolved by recovery
    CHECK (state NOT IN ('dispatched', 'delivered') OR dispatched_at IS NOT NULL),
    CHECK (state <> 'delivered' OR delivered_at IS NOT NULL),
    CHECK (state <> 'closed' OR closed_at IS NOT NULL)
);
-- One task per alert while it lasts: acknowledging again opens none. An alert that reopens (0013) after
-- its task closed gets a new task when acknowledged again; the closed one stays for the review.
CREATE UNIQUE INDEX supply_tasks_one_open ON supply_tasks (alert_id) WHERE state <> 'closed';
CREATE INDEX supply_tasks_alert ON supply_tasks (alert_id, id);
CREATE INDEX supply_tasks_circle ON supply_tasks (circle_id, necessity);
