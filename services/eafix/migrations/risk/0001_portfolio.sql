-- risk-manager portfolio state (schema `risk`): accounts, open/reserved positions, the decision log
-- and the realized-trade ledger. The balance is derived: opening_balance + sum(realized_trades.pnl).
-- Money, prices, lots and pips are numeric (never float). decisions and realized_trades are
-- append-only (a trigger refuses UPDATE, DELETE and TRUNCATE). Idempotent (IF NOT EXISTS / OR REPLACE),
-- so applying it over an already migrated schema changes nothing.

CREATE SCHEMA IF NOT EXISTS risk;

CREATE TABLE IF NOT EXISTS risk.accounts (
    account_id       text        PRIMARY KEY CHECK (account_id ~ '^[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}$'),
    account_currency text        NOT NULL CHECK (account_currency ~ '^[A-Z]{3}$'),
    opening_balance  numeric     NOT NULL CHECK (opening_balance > 0),
    created_at       timestamptz NOT NULL
);

-- Current positions: an approved OrderIntent reserves one (PENDING) until a fill opens it (OPEN) or
-- a terminal report without fills releases it (row deleted); TradeClosed deletes or reduces it.
CREATE TABLE IF NOT EXISTS risk.positions (
    account_id      text        NOT NULL REFERENCES risk.accounts (account_id),
    client_order_id text        NOT NULL,
    signal_id       text,
    symbol          text        NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    direction       text        NOT NULL CHECK (direction IN ('LONG', 'SHORT')),
    state           text        NOT NULL CHECK (state IN ('PENDING', 'OPEN')),
    lots            numeric     NOT NULL CHECK (lots > 0),
    filled_lots     numeric     NOT NULL CHECK (filled_lots >= 0),
    sl_pips         numeric     CHECK (sl_pips > 0),
    risk_per_lot    numeric     NOT NULL CHECK (risk_per_lot >= 0),
    entry_price     numeric     CHECK (entry_price > 0),
    opened_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (account_id, client_order_id)
);

-- One row per signal decided (OrderIntent or RiskRejected, the event itself in `payload`):
-- redelivered signals are answered from here, also after a restart.
CREATE TABLE IF NOT EXISTS risk.decisions (
    account_id      text        NOT NULL REFERENCES risk.accounts (account_id),
    seq             bigint      NOT NULL CHECK (seq > 0),
    signal_id       text        NOT NULL,
    decided_at      timestamptz NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('APPROVED', 'REJECTED')),
    client_order_id text,
    reasons         text[],
    payload         jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, signal_id),
    CONSTRAINT decisions_seq_unique UNIQUE (account_id, seq),
    CONSTRAINT decisions_outcome_shape CHECK (
        (outcome = 'APPROVED' AND client_order_id IS NOT NULL AND reasons IS NULL)
        OR (outcome = 'REJECTED' AND client_order_id IS NULL AND cardinality(reasons) > 0)
    )
);

-- Realized P&L ledger (account currency, net of costs), one row per closed trade.
CREATE TABLE IF NOT EXISTS risk.realized_trades (
    account_id      text        NOT NULL REFERENCES risk.accounts (account_id),
    trade_id        text        NOT NULL,
    client_order_id text        NOT NULL,
    symbol          text        NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    pnl             numeric     NOT NULL,
    close_time      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, trade_id)
);

CREATE INDEX IF NOT EXISTS realized_trades_close_time_idx ON risk.realized_trades (account_id, close_time);

CREATE OR REPLACE FUNCTION risk.refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'risk.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE OR REPLACE TRIGGER decisions_append_only
    BEFORE UPDATE OR DELETE ON risk.decisions
    FOR EACH ROW EXECUTE FUNCTION risk.refuse_change();
CREATE OR REPLACE TRIGGER decisions_no_truncate
    BEFORE TRUNCATE ON risk.decisions
    FOR EACH STATEMENT EXECUTE FUNCTION risk.refuse_change();
CREATE OR REPLACE TRIGGER realized_trades_append_only
    BEFORE UPDATE OR DELETE ON risk.realized_trades
    FOR EACH ROW EXECUTE FUNCTION risk.refuse_change();
CREATE OR REPLACE TRIGGER realized_trades_no_truncate
    BEFORE TRUNCATE ON risk.realized_trades
    FOR EACH STATEMENT EXECUTE FUNCTION risk.refuse_change();
