-- Statements of schema/teams_store.py: responder teams, their members, channels,
-- rotations and overrides, and the routing tree (migration 0011).

-- ---------------------------------------------------------------- what a team is checked against

-- name: team_reference_circles
SELECT id, district FROM circles ORDER BY id;

-- name: team_reference_communities
SELECT id FROM communities ORDER BY id;

-- ---------------------------------------------------------------- loading the directory

-- name: lock_teams
-- Two imports (or an import and a seed) never interleave, so the created / updated
-- counts read before writing stay true. Readers (the dispatcher) are not blocked.
LOCK TABLE teams, team_members, team_rotations, team_overrides, team_channels, team_routes
IN SHARE ROW EXCLUSIVE MODE;

-- name: load_teams
SELECT id, name, kind, coalesce(circle_id, community_id, district, '') AS scope, escalates_to
FROM teams ORDER BY id;

-- name: load_team_members
SELECT team_id, member_id, name, phone, email, rotation_position
FROM team_members ORDER BY team_id, position;

-- name: load_team_rotations
SELECT team_id, shift, handoff, start_date, time_zone FROM team_rotations ORDER BY team_id;

-- name: load_team_overrides
SELECT team_id, member_id, starts_at, ends_at FROM team_overrides ORDER BY team_id, starts_at, member_id;

-- name: load_team_channels
SELECT team_id, name, kind, config FROM team_channels ORDER BY team_id, position;

-- name: load_route_tree
SELECT tree FROM team_routes;

-- name: load_circle_districts
SELECT id, district FROM circles WHERE district <> '' ORDER BY id;

-- ---------------------------------------------------------------- writing one team (all of it)

-- name: upsert_team
INSERT INTO teams (id, name, kind, circle_id, community_id, district, escalates_to)
VALUES (%(id)s, %(name)s, %(kind)s, %(circle_id)s, %(community_id)s, %(district)s, %(escalates_to)s)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, kind = EXCLUDED.kind, circle_id = EXCLUDED.circle_id,
    community_id = EXCLUDED.community_id, district = EXCLUDED.district,
    escalates_to = EXCLUDED.escalates_to, updated_at = now();

-- name: delete_team_members
-- Their overrides go with them (ON DELETE CASCADE); the team's members are written again next.
DELETE FROM team_members WHERE team_id = %(team_id)s;

-- name: delete_team_rotation
DELETE FROM team_rotations WHERE team_id = %(team_id)s;

-- name: delete_team_channels
DELETE FROM team_channels WHERE team_id = %(team_id)s;

-- name: insert_team_member
INSERT INTO team_members (team_id, member_id, position, name, phone, email, rotation_position)
VALUES (%(team_id)s, %(member_id)s, %(position)s, %(name)s, %(phone)s, %(email)s, %(rotation_position)s);

-- name: insert_team_rotation
INSERT INTO team_rotations (team_id, shift, handoff, start_date, time_zone)
VALUES (%(team_id)s, %(shift)s, %(handoff)s, %(start_date)s, %(time_zone)s);

-- name: insert_team_override
INSERT INTO team_overrides (team_id, member_id, starts_at, ends_at)
VALUES (%(team_id)s, %(member_id)s, %(starts_at)s, %(ends_at)s);

-- name: insert_team_channel
INSERT INTO team_channels (team_id, name, position, kind, config)
VALUES (%(team_id)s, %(name)s, %(position)s, %(kind)s, %(config)s);

-- name: upsert_route_tree
INSERT INTO team_routes (id, tree) VALUES (true, %(tree)s)
ON CONFLICT (id) DO UPDATE SET tree = EXCLUDED.tree, updated_at = now();

-- name: count_team_rows
SELECT (SELECT count(*) FROM teams) AS teams, (SELECT count(*) FROM team_members) AS team_members;

-- ---------------------------------------------------------------- overrides by hand (baogong teams override)

-- name: upsert_team_override
-- One override per member and start: giving the same start again moves its end.
INSERT INTO team_overrides (team_id, member_id, starts_at, ends_at)
VALUES (%(team_id)s, %(member_id)s, %(starts_at)s, %(ends_at)s)
ON CONFLICT (team_id, member_id, starts_at) DO UPDATE SET ends_at = EXCLUDED.ends_at
RETURNING (xmax = 0) AS created;

-- name: delete_team_override
DELETE FROM team_overrides
WHERE team_id = %(team_id)s AND member_id = %(member_id)s AND starts_at = %(starts_at)s;

-- name: touch_team
UPDATE teams SET updated_at = now() WHERE id = %(team_id)s;
