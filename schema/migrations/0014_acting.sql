-- Acting on alerts: responder keys and silences (alerts/actions.py, alerts/http.py, alerts/silence.py).
--
-- A responder key belongs to one member of one team (team_members; schema/teams.py). It is stored as
-- schema/keys.py stores supplier keys: the public prefix finds the row, only SHA-256 of the whole key is
-- kept. There is no foreign key to team_members on purpose: an import rewrites a team's members (delete,
-- then insert, in one transaction), which would cascade to the keys; instead a key authenticates only
-- while its member is still in the team (checked at each request). Revoked: revoked_at is set.
CREATE TABLE responder_keys (
    prefix      text PRIMARY KEY,
    team_id     text NOT NULL,
    member_id   text NOT NULL,
    key_hash    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text
);
CREATE INDEX responder_keys_member ON responder_keys (team_id, member_id);

-- Silences, as Alertmanager's: every matcher ({name, value, is_regex}) must match an alert's labels
-- (plus `rule`) for it to be silenced while starts_at <= now < ends_at. Expiring one sets ends_at to the
-- moment of expiry and expired_by; rows are never deleted (the audit trail).
CREATE TABLE silences (
    id          bigserial PRIMARY KEY,
    matchers    jsonb NOT NULL CHECK (jsonb_typeof(matchers) = 'array' AND jsonb_array_length(matchers) > 0),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_by  text NOT NULL,
    comment     text NOT NULL CHECK (comment <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expired_by  text,
    CHECK (ends_at >= starts_at)
);
CREATE INDEX silences_ends ON silences (ends_at);
