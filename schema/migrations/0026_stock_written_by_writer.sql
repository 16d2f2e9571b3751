-- The stock upsert of the stream worker names its transaction itself (`written_xid = pg_current_xact_id()`,
-- schema/queries.sql upsert_stock_for_keys), so the row trigger of 0021 runs only for writers that do not: its
-- WHEN clause (evaluated without calling PL/pgSQL) sees written_xid unchanged by the statement. The guarantee of
-- 0021 is the same — every update of a row records the transaction that made it — at a fraction of the cost
-- per row for the worker, which updates thousands of rows a batch.
DROP TRIGGER outlet_stock_written ON outlet_stock;
CREATE TRIGGER outlet_stock_written BEFORE UPDATE ON outlet_stock FOR EACH ROW
    WHEN (NEW.written_xid = OLD.written_xid) EXECUTE FUNCTION outlet_stock_written();
