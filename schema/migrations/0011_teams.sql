-- Responder teams and the routing tree (schema/teams.py; managed with `baogong teams import`).
--
-- A team answers pages for what its kind and scope say: a circle's emergency
-- supply team or circle owner (circle_id), a community (community_id), a
-- district commerce bureau (district), or one city-wide body. Members carry
-- their contacts; `rotation_position` orders the members of the team's
-- on-call rotation (NULL: not in it), whose shift length, handoff time and
-- time zone are in `team_rotations`. Overrides put one member on call for a
-- span. Channels are a kind plus that kind's fields (`config`), as the
-- notifiers take them. `escalates_to` names the next team of the chain
-- (deferred, so a file may create both ends in any order).
--
-- The routing tree is one document (`team_routes`, a single row): it is
-- read and replaced whole, and a tree is only meaningful whole (first match
-- wins, `continue`, inherited teams). Its team ids are checked on import.

CREATE TABLE teams (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('circle_team', 'circle_owner', 'community', 'district_bureau',
                                                  'city_bureau', 'market_supervision', 'operators')),
    circle_id       text REFERENCES circles (id),
    community_id    text REFERENCES communities (id),
    district        text,
    escalates_to    text REFERENCES teams (id) DEFERRABLE INITIALLY DEFERRED,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT teams_circle_scope CHECK ((circle_id IS NOT NULL) = (kind IN ('circle_team', 'circle_owner'))),
    CONSTRAINT teams_community_scope CHECK ((community_id IS NOT NULL) = (kind = 'community')),
    CONSTRAINT teams_district_scope CHECK ((district IS NOT NULL) = (kind = 'district_bureau')),
    CONSTRAINT teams_no_self_escalation CHECK (escalates_to <> id)
);
CREATE INDEX teams_circle ON teams (circle_id) WHERE circle_id IS NOT NULL;

CREATE TABLE team_members (
    team_id             text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    member_id           text NOT NULL,
    position            integer NOT NULL,               -- order in the team, as the file lists them
    name                text NOT NULL,
    phone               text NOT NULL DEFAULT '',       -- digits only
    email               text NOT NULL DEFAULT '',
    rotation_position   integer,                        -- place in the on-call rotation; NULL: not in it
    PRIMARY KEY (team_id, member_id),
    UNIQUE (team_id, rotation_position)
);

CREATE TABLE team_rotations (
    team_id     text PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    shift       interval NOT NULL CHECK (shift > interval '0'),
    handoff     time NOT NULL,                          -- local time of day a shift starts
    start_date  date NOT NULL,                          -- the first shift starts then, at handoff
    time_zone   text NOT NULL DEFAULT 'Asia/Shanghai'
);

CREATE TABLE team_overrides (
    team_id     text NOT NULL,
    member_id   text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    PRIMARY KEY (team_id, member_id, starts_at),
    FOREIGN KEY (team_id, member_id) REFERENCES team_members (team_id, member_id) ON DELETE CASCADE,
    CHECK (ends_at > starts_at)
);

CREATE TABLE team_channels (
    team_id     text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name        text NOT NULL,                          -- unique in the team; the receiver is team:<team>/<name>
    position    integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('webhook', 'wecom', 'dingtalk', 'email', 'sms', 'alertmanager')),
    config      jsonb NOT NULL DEFAULT '{}',            -- the kind's fields (url, secret, to…)
    PRIMARY KEY (team_id, name)
);

CREATE TABLE team_routes (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    tree        jsonb NOT NULL,                         -- schema.teams.tree_to_doc
    updated_at  timestamptz NOT NULL DEFAULT now()
);
