-- Reference data: who supplies, where they sell, what a circle needs.
-- Business types and necessities are the catalogue (schema/catalogue.py seeds them).

CREATE TABLE business_types (
    code        text PRIMARY KEY,
    name_zh     text NOT NULL,
    name_en     text NOT NULL,
    category    text NOT NULL CHECK (category IN ('basic', 'quality'))
);

CREATE TABLE necessities (
    code                text PRIMARY KEY,
    name_zh             text NOT NULL,
    name_en             text NOT NULL,
    unit                text NOT NULL,                 -- canonical unit: kg, L or piece
    per_capita_daily    double precision NOT NULL CHECK (per_capita_daily > 0),
    watch_days          double precision NOT NULL,
    shortage_days       double precision NOT NULL,
    critical_days       double precision NOT NULL,
    freshness_minutes   integer NOT NULL CHECK (freshness_minutes > 0),
    min_coverage        double precision NOT NULL CHECK (min_coverage BETWEEN 0 AND 1),
    CHECK (critical_days < shortage_days AND shortage_days < watch_days)
);

-- Which business types are expected to carry which necessity (drives coverage).
CREATE TABLE business_type_necessities (
    business_type   text NOT NULL REFERENCES business_types (code),
    necessity       text NOT NULL REFERENCES necessities (code),
    PRIMARY KEY (business_type, necessity)
);

CREATE TABLE suppliers (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL,                          -- chain, supermarket, market, pharmacy, independent
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored as SHA-256 of the whole key; `prefix` (public) finds the row.
CREATE TABLE api_keys (
    prefix      text PRIMARY KEY,
    supplier_id text NOT NULL REFERENCES suppliers (id),
    key_hash    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_supplier ON api_keys (supplier_id);

CREATE TABLE circles (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    center_lat  double precision NOT NULL,
    center_lon  double precision NOT NULL,
    owner       text NOT NULL DEFAULT '',               -- 圈主, the circle owner
    team        text NOT NULL DEFAULT ''                -- its emergency supply team
);

CREATE TABLE communities (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    street_office   text NOT NULL,
    population      integer NOT NULL CHECK (population >= 0),
    circle_id       text NOT NULL REFERENCES circles (id)
);
CREATE INDEX communities_circle ON communities (circle_id);

CREATE TABLE outlets (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    business_type   text NOT NULL REFERENCES business_types (code),
    chain           text,
    supplier_id     text NOT NULL REFERENCES suppliers (id),
    community_id    text NOT NULL REFERENCES communities (id),
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    active          boolean NOT NULL DEFAULT true
);
CREATE INDEX outlets_supplier ON outlets (supplier_id);

-- An outlet serves every circle it is listed under (its community's circle,
-- and any other circle centre within a 15-minute walk).
CREATE TABLE outlet_circles (
    outlet_id   text NOT NULL REFERENCES outlets (id),
    circle_id   text NOT NULL REFERENCES circles (id),
    PRIMARY KEY (outlet_id, circle_id)
);
CREATE INDEX outlet_circles_circle ON outlet_circles (circle_id);
