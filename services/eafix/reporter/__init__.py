"""reporter: P&L and trading statistics over the trade ledger (see `service` for the process)."""
