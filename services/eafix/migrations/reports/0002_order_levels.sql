-- reporter's report draws each trade's stop-loss and take-profit: the pip distances of its order
-- (OrderIntent.sl_pips / tp_pips). Nullable: orders recorded before this migration have none.

ALTER TABLE reports.orders ADD COLUMN IF NOT EXISTS sl_pips numeric CHECK (sl_pips > 0);
ALTER TABLE reports.orders ADD COLUMN IF NOT EXISTS tp_pips numeric CHECK (tp_pips > 0);
