-- Live circle levels (issue 11, point 2): the leader keeps every outlet's stock in memory and learns exactly
-- what changed, and when, from the database (streams/level_state.py).
--
-- * outlet_stock.written_xid: the transaction that last wrote the row (set on insert by default, on every
--   update by a trigger, so no writer can forget it). A reader that kept the snapshot of its previous read
--   (`pg_current_snapshot()`) finds exactly the rows committed since then: written_xid not visible in that
--   snapshot. Unlike a timestamp or a sequence, this never misses a transaction that committed late.
-- * level_inputs_version: bumped by every statement that changes what levels are computed from besides stock
--   (outlets, their circles, business types' necessities, necessities, communities, circles, emergencies,
--   and deleted stock); the leader reloads all of it when the number moves.
-- * NOTIFY baogong_levels at the commit of any such change or of new stock: the leader wakes at once instead
--   of polling (one notification per transaction; PostgreSQL folds identical ones).
-- * circle_levels_latest.recorded_at: when the series last got a history row. History is written when a level
--   changes and at least once a minute otherwise, no longer every pass.

ALTER TABLE outlet_stock ADD COLUMN written_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX outlet_stock_written_xid ON outlet_stock (written_xid);

CREATE FUNCTION outlet_stock_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.written_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;
CREATE TRIGGER outlet_stock_written BEFORE UPDATE ON outlet_stock FOR EACH ROW EXECUTE FUNCTION outlet_stock_written();

CREATE TABLE level_inputs_version (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    version     bigint NOT NULL
);
INSERT INTO level_inputs_version (version) VALUES (1);

CREATE FUNCTION level_inputs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE level_inputs_version SET version = version + 1;
    PERFORM pg_notify('baogong_levels', 'inputs');
    RETURN NULL;
END
$$;

CREATE FUNCTION level_stock_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baogong_levels', 'stock');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['outlets', 'outlet_circles', 'business_type_necessities', 'necessities',
                             'communities', 'circles', 'emergencies'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION level_inputs_changed()', t || '_level_inputs', t);
    END LOOP;
END
$$;
CREATE TRIGGER outlet_stock_removed AFTER DELETE OR TRUNCATE ON outlet_stock
    FOR EACH STATEMENT EXECUTE FUNCTION level_inputs_changed();
CREATE TRIGGER outlet_stock_level_notify AFTER INSERT OR UPDATE ON outlet_stock
    FOR EACH STATEMENT EXECUTE FUNCTION level_stock_changed();

ALTER TABLE circle_levels_latest ADD COLUMN recorded_at timestamptz;
UPDATE circle_levels_latest SET recorded_at = computed_at;
