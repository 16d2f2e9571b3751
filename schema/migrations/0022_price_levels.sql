-- Price watch (issue 12): price levels graded two ways, and gouging leads for the market supervision bureau.
--
-- price_levels: one row per scope (a circle id, or '*' for the whole city), necessity and day
-- (Asia/Shanghai); each price pass (`baogong prices refresh`, the worker leader's timer) rewrites today's row,
-- so a day keeps its last grading and the table is the graded history. Sizes: the demo city's
-- (10 circles + city) x 12 necessities = 132 rows a day; 200 circles: 2,412 a day. Kept as long as the daily
-- rollups (`baogong maintain`, rollup_daily_days).
CREATE TABLE price_levels (
    circle_id       text NOT NULL,                  -- '*': citywide
    necessity       text NOT NULL REFERENCES necessities (code),
    day             date NOT NULL,                  -- Asia/Shanghai
    computed_at     timestamptz NOT NULL,
    price           double precision,               -- median of outlets' latest fresh prices; NULL: stale
    outlets         integer NOT NULL,               -- outlets with a fresh price
    baseline        double precision,               -- NULL: not enough history
    baseline_kind   text CHECK (baseline_kind IN ('rolling', 'seasonal')),
    history_days    integer NOT NULL,               -- daily medians in the baseline window
    sd              double precision,               -- standard deviation used (after the floor)
    deviation       double precision,               -- (price - baseline) / sd
    phase           text NOT NULL CHECK (phase IN ('NORMAL', 'STRESS', 'ALERT', 'CRISIS', 'UNKNOWN')),
    rise_day        double precision,               -- 0.35 = +35 % on yesterday's daily median
    rise_week       double precision,               -- on the daily median a week before
    plan_grade      text NOT NULL,                  -- 'NONE', 'UNKNOWN' or a grade of the plan ('IV' .. 'I')
    stale           boolean NOT NULL,
    spiking         boolean NOT NULL,               -- phase ALERT/CRISIS or a plan grade: the price alert's condition
    PRIMARY KEY (circle_id, necessity, day)
);
CREATE INDEX price_levels_day ON price_levels (day);

-- An outlet far above its circle's median while that circle's price spikes: one row per outlet, necessity,
-- circle and day, first and last seen, with the worst ratio of that day.
CREATE TABLE price_leads (
    outlet_id       text NOT NULL REFERENCES outlets (id),
    necessity       text NOT NULL REFERENCES necessities (code),
    circle_id       text NOT NULL,
    day             date NOT NULL,
    first_at        timestamptz NOT NULL,
    last_at         timestamptz NOT NULL,
    price           double precision NOT NULL,      -- the outlet's price when last seen
    circle_price    double precision NOT NULL,      -- the circle's median then
    ratio_max       double precision NOT NULL,      -- the highest price / circle median of the day
    phase           text NOT NULL,
    plan_grade      text NOT NULL,
    PRIMARY KEY (outlet_id, necessity, circle_id, day)
);
CREATE INDEX price_leads_day ON price_leads (day);

-- The Prices dashboard reads levels and leads (no supplier keys or raw prices).
GRANT SELECT ON price_levels, price_leads TO baogong_grafana;
