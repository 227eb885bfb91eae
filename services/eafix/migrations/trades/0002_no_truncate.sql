-- The trade ledger refuses TRUNCATE too (0001 refuses UPDATE and DELETE row by row; TRUNCATE
-- bypasses row triggers), as risk's ledgers do.

CREATE OR REPLACE TRIGGER trades_no_truncate BEFORE TRUNCATE ON trades.trades
    FOR EACH STATEMENT EXECUTE FUNCTION trades.refuse_change();
