-- outlet_stock loses its index on necessity (from 0002): nothing reads stock by necessity alone (the level
-- queries and the live levels read every row; panels join it by outlet), and the worker's stock upsert paid
-- for it on every update, which moves the row and so inserts into every index: dropping it took an eighth off
-- an upsert of 4,000 keys (41 ms from 47, the scale benchmark's Suihua-size city). What remains is the
-- primary key (outlet, necessity), which the upsert and the panels use, and written_xid (live levels, 0021).
DROP INDEX IF EXISTS outlet_stock_necessity;
