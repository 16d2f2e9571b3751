-- Emergency grades IV–I (issue 11, point 1). What each grade changes lives in schema/emergency.py.
--
-- * `emergencies`: every declaration, for the city (scope_id NULL), one district (circles.district) or
--   one circle, at grade 1..4 (I = 1, the most severe), with who declared it, when and why; lifting sets
--   lifted_by / lifted_at / lift_reason once. The rows are the audit: a trigger refuses any other change
--   and any delete.
-- * `circle_grades(at)`: the grade each covered circle is under at `at` — the most severe declaration
--   active then (declared at or before `at`, not lifted by `at`) over the city, its district or itself.
-- * `operator_keys`: keys of the bureau's operators, who declare and lift (hashed like supplier keys;
--   a supplier's or a responder's key is not an operator's).
-- * `grade` on circle_levels and circle_levels_latest: the grade a level was computed under (NULL: none).

CREATE TABLE emergencies (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope_kind      text NOT NULL CHECK (scope_kind IN ('city', 'district', 'circle')),
    scope_id        text,
    grade           smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
    reason          text NOT NULL CHECK (reason <> ''),
    declared_by     text NOT NULL CHECK (declared_by <> ''),
    declared_at     timestamptz NOT NULL,
    lifted_by       text,
    lifted_at       timestamptz,
    lift_reason     text,
    CONSTRAINT emergencies_scope CHECK ((scope_kind = 'city') = (scope_id IS NULL) AND scope_id <> ''),
    CONSTRAINT emergencies_lifted CHECK (
        (lifted_at IS NULL) = (lifted_by IS NULL) AND (lifted_at IS NULL) = (lift_reason IS NULL)
        AND (lifted_at IS NULL OR lifted_at >= declared_at)
    )
);

CREATE FUNCTION emergencies_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'emergency % is part of the audit and cannot be deleted; lift it instead', OLD.id
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'emergencies_audit';
    END IF;
    IF OLD.lifted_at IS NOT NULL
       OR (NEW.id, NEW.scope_kind, NEW.scope_id, NEW.grade, NEW.reason, NEW.declared_by, NEW.declared_at)
          IS DISTINCT FROM
          (OLD.id, OLD.scope_kind, OLD.scope_id, OLD.grade, OLD.reason, OLD.declared_by, OLD.declared_at) THEN
        RAISE EXCEPTION 'emergency % is part of the audit: only lifting it once is allowed', OLD.id
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'emergencies_audit';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER emergencies_audit
    BEFORE UPDATE OR DELETE ON emergencies
    FOR EACH ROW EXECUTE FUNCTION emergencies_audit();

-- A plain SQL function: the planner inlines it into the level query. Circles under no emergency have no row.
CREATE FUNCTION circle_grades(at timestamptz)
RETURNS TABLE (circle_id text, grade smallint)
LANGUAGE sql STABLE AS $$
    SELECT c.id, min(e.grade)::smallint
    FROM emergencies e
    JOIN circles c ON e.scope_kind = 'city'
                   OR (e.scope_kind = 'district' AND c.district = e.scope_id)
                   OR (e.scope_kind = 'circle' AND c.id = e.scope_id)
    WHERE e.declared_at <= at AND (e.lifted_at IS NULL OR e.lifted_at > at)
    GROUP BY c.id
$$;

-- Keys are `bg_<prefix>_<secret>` like every Baogong key (schema/keys.py); only SHA-256 of the key is kept.
CREATE TABLE operator_keys (
    prefix      text PRIMARY KEY,
    name        text NOT NULL CHECK (name <> ''),
    key_hash    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- No CHECK here: ADD COLUMN stays cheap on a partitioned or compressed history table.
ALTER TABLE circle_levels ADD COLUMN grade smallint;
ALTER TABLE circle_levels_latest ADD COLUMN grade smallint;
