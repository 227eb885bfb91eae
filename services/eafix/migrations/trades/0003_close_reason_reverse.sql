-- Stop-and-reverse (TradeClosed 1.1): a position closed by an order in the opposite direction on the
-- same symbol has close_reason REVERSE. The column checks are replaced by ones that allow it
-- (PostgreSQL named the originals <table>_close_reason_check).
ALTER TABLE trades.positions DROP CONSTRAINT IF EXISTS positions_close_reason_check;
ALTER TABLE trades.positions ADD CONSTRAINT positions_close_reason_check
    CHECK (close_reason IN ('TP', 'SL', 'MANUAL', 'TIMEOUT', 'BROKER_REJECT', 'REVERSE'));
ALTER TABLE trades.trades DROP CONSTRAINT IF EXISTS trades_close_reason_check;
ALTER TABLE trades.trades ADD CONSTRAINT trades_close_reason_check
    CHECK (close_reason IN ('TP', 'SL', 'MANUAL', 'TIMEOUT', 'BROKER_REJECT', 'REVERSE'));
