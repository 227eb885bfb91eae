-- execution-engine: positions (one mutable row each, guarded by `version`) and closed trades
-- (append-only: UPDATE and DELETE raise). A position's id, and its trade's id, is the
-- client_order_id of the order that opened it (orders.orders lives in another schema, so there is
-- no foreign key across them). Money and prices are unconstrained numeric (exact, scale kept).

CREATE SCHEMA IF NOT EXISTS trades;

CREATE TABLE IF NOT EXISTS trades.positions (
    position_id         text PRIMARY KEY,
    client_order_id     text NOT NULL,
    symbol              text NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    direction           text NOT NULL CHECK (direction IN ('LONG', 'SHORT')),
    account_currency    text NOT NULL CHECK (account_currency ~ '^[A-Z]{3}$'),
    lots                numeric NOT NULL CHECK (lots > 0),
    open_notional       numeric NOT NULL CHECK (open_notional > 0),
    open_price          numeric NOT NULL CHECK (open_price > 0),
    sl_price            numeric NOT NULL,
    tp_price            numeric NOT NULL,
    open_time           timestamptz NOT NULL,
    commission          numeric NOT NULL CHECK (commission >= 0),
    status              text NOT NULL CHECK (status IN ('OPEN', 'CLOSED')),
    version             integer NOT NULL CHECK (version >= 1),
    broker_order_id     text,
    close_requested_at  timestamptz,
    close_price         numeric CHECK (close_price > 0),
    close_time          timestamptz,
    close_reason        text CHECK (close_reason IN ('TP', 'SL', 'MANUAL', 'TIMEOUT', 'BROKER_REJECT')),
    pips                numeric,
    pnl                 numeric,
    CHECK (status = 'OPEN' OR (close_price IS NOT NULL AND close_time > open_time AND close_reason IS NOT NULL
                               AND pips IS NOT NULL AND pnl IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS positions_open_idx ON trades.positions (symbol, open_time DESC) WHERE status = 'OPEN';
CREATE INDEX IF NOT EXISTS positions_status_idx ON trades.positions (status, open_time DESC);

CREATE TABLE IF NOT EXISTS trades.trades (
    trade_id          text PRIMARY KEY,
    client_order_id   text NOT NULL,
    symbol            text NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    direction         text NOT NULL CHECK (direction IN ('LONG', 'SHORT')),
    lots              numeric NOT NULL CHECK (lots > 0),
    open_price        numeric NOT NULL CHECK (open_price > 0),
    close_price       numeric NOT NULL CHECK (close_price > 0),
    open_time         timestamptz NOT NULL,
    close_time        timestamptz NOT NULL,
    pips              numeric NOT NULL,
    gross_pnl         numeric NOT NULL,
    commission        numeric NOT NULL CHECK (commission >= 0),
    pnl               numeric NOT NULL,
    account_currency  text NOT NULL CHECK (account_currency ~ '^[A-Z]{3}$'),
    close_reason      text NOT NULL CHECK (close_reason IN ('TP', 'SL', 'MANUAL', 'TIMEOUT', 'BROKER_REJECT')),
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (close_time > open_time)
);

CREATE INDEX IF NOT EXISTS trades_close_idx ON trades.trades (close_time DESC, trade_id DESC);
CREATE INDEX IF NOT EXISTS trades_symbol_close_idx ON trades.trades (symbol, close_time DESC);

CREATE OR REPLACE FUNCTION trades.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE OR REPLACE TRIGGER trades_append_only BEFORE UPDATE OR DELETE ON trades.trades
    FOR EACH ROW EXECUTE FUNCTION trades.refuse_change();
