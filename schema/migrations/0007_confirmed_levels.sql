-- Circle levels a bureau can act on (issue 8, points 2, 3, 4, 7).
--
-- * Only confirmed stock counts: `stock` is now the stock reported inside the
--   necessity's freshness window; older stock is `stock_unconfirmed`, kept with
--   the age of its oldest report, never added to days of supply.
-- * Two coverages: `coverage` (share of expected outlets with a fresh report)
--   and `coverage_stock` (share of the last known stock that is fresh).
-- * Demand from what people buy: `demand_source` says whether daily demand came
--   from the outlets' sold_24h ('observed') or population x per-capita;
--   `demand_observed` is the smoothed observed rate before the emergency
--   multiplier (NULL when not observed): the median of the raw rates of the
--   last few computations, which circle_levels_latest keeps in
--   `demand_observed_recent` (oldest first) for the next computation.
-- * Currency: `lag_reports` / `lag_s`, how far behind the stream was when the
--   level was computed (NULL when unknown).
-- * `outlets.active_since`: a reactivated outlet's stock reported before its
--   reactivation never comes back into a circle.
-- * `circles.district`: totals above circles (district, city) count every outlet once.

ALTER TABLE circle_levels
    ADD COLUMN stock_unconfirmed double precision NOT NULL DEFAULT 0,
    ADD COLUMN unconfirmed_age_s double precision,          -- age of the oldest unconfirmed report counted
    ADD COLUMN coverage_stock double precision,             -- NULL in rows computed before this migration
    ADD COLUMN demand_source text NOT NULL DEFAULT 'population'
        CHECK (demand_source IN ('observed', 'population')),
    ADD COLUMN demand_observed double precision,
    ADD COLUMN lag_reports bigint,
    ADD COLUMN lag_s double precision;

ALTER TABLE circle_levels_latest
    ADD COLUMN demand_observed_recent double precision[],
    ADD COLUMN stock_unconfirmed double precision NOT NULL DEFAULT 0,
    ADD COLUMN unconfirmed_age_s double precision,
    ADD COLUMN coverage_stock double precision,
    ADD COLUMN demand_source text NOT NULL DEFAULT 'population'
        CHECK (demand_source IN ('observed', 'population')),
    ADD COLUMN demand_observed double precision,
    ADD COLUMN lag_reports bigint,
    ADD COLUMN lag_s double precision;

-- Since when an outlet has been active without interruption: only its stock
-- reported at or after this moment counts in a circle. NULL for an outlet that
-- was never reactivated (all its reports count). The trigger sets it to the
-- transaction's time whenever the outlet goes from inactive to active, by
-- whatever path (registry import, seed, an operator's UPDATE), unless the same
-- statement sets active_since itself.
ALTER TABLE outlets ADD COLUMN active_since timestamptz;

CREATE FUNCTION outlets_track_active_since() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.active AND NOT OLD.active AND NEW.active_since IS NOT DISTINCT FROM OLD.active_since THEN
        NEW.active_since := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER outlets_active_since
    BEFORE UPDATE OF active ON outlets
    FOR EACH ROW EXECUTE FUNCTION outlets_track_active_since();

-- The district a circle belongs to ('' when the registry does not say yet).
ALTER TABLE circles ADD COLUMN district text NOT NULL DEFAULT '';
