-- execution-engine: the OMS orders, their transition log and their fills.
-- Money, prices, lots and pips are unconstrained numeric: exact, and a value keeps its scale
-- ('1.10' reads back as 1.10). orders.orders is one mutable row per order guarded by `version`;
-- transitions and fills are append-only (UPDATE and DELETE raise).

CREATE SCHEMA IF NOT EXISTS orders;

CREATE TABLE IF NOT EXISTS orders.orders (
    client_order_id   text PRIMARY KEY,
    idempotency_key   text NOT NULL,
    signal_id         text NOT NULL,
    symbol            text NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    direction         text NOT NULL CHECK (direction IN ('LONG', 'SHORT')),
    lots              numeric NOT NULL CHECK (lots > 0),
    sl_pips           numeric NOT NULL CHECK (sl_pips > 0),
    tp_pips           numeric NOT NULL CHECK (tp_pips > 0),
    entry_price       numeric NOT NULL CHECK (entry_price > 0),
    risk_percent      numeric NOT NULL CHECK (risk_percent > 0 AND risk_percent <= 100),
    account_balance   numeric NOT NULL CHECK (account_balance > 0),
    account_currency  text NOT NULL CHECK (account_currency ~ '^[A-Z]{3}$'),
    status            text NOT NULL CHECK (status IN ('PENDING', 'SUBMITTED', 'PARTIAL', 'FILLED', 'CLOSED',
                                                      'REJECTED', 'CANCELLED', 'TIMEOUT', 'EXPIRED')),
    broker_order_id   text,
    filled_lots       numeric NOT NULL DEFAULT 0 CHECK (filled_lots >= 0 AND filled_lots <= lots),
    fill_notional     numeric NOT NULL DEFAULT 0 CHECK (fill_notional >= 0),
    commission        numeric NOT NULL DEFAULT 0 CHECK (commission >= 0),
    reason            text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    submitted_at      timestamptz,
    acknowledged_at   timestamptz,
    version           integer NOT NULL CHECK (version >= 1),
    CONSTRAINT orders_idempotency_key_unique UNIQUE (idempotency_key)
);

CREATE INDEX IF NOT EXISTS orders_created_idx ON orders.orders (created_at DESC, client_order_id DESC);
CREATE INDEX IF NOT EXISTS orders_status_created_idx ON orders.orders (status, created_at DESC);
CREATE INDEX IF NOT EXISTS orders_symbol_created_idx ON orders.orders (symbol, created_at DESC);

CREATE TABLE IF NOT EXISTS orders.transitions (
    client_order_id  text NOT NULL REFERENCES orders.orders (client_order_id),
    version          integer NOT NULL CHECK (version >= 1),
    event            text NOT NULL,
    from_status      text,
    to_status        text NOT NULL,
    at               timestamptz NOT NULL,
    detail           text,
    PRIMARY KEY (client_order_id, version)
);

CREATE TABLE IF NOT EXISTS orders.fills (
    fill_id          text PRIMARY KEY,
    client_order_id  text NOT NULL REFERENCES orders.orders (client_order_id),
    kind             text NOT NULL CHECK (kind IN ('OPEN', 'CLOSE')),
    symbol           text NOT NULL,
    direction        text NOT NULL CHECK (direction IN ('LONG', 'SHORT')),
    lots             numeric NOT NULL CHECK (lots > 0),
    price            numeric NOT NULL CHECK (price > 0),
    commission       numeric NOT NULL CHECK (commission >= 0),
    ts               timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS fills_order_idx ON orders.fills (client_order_id, ts);

CREATE OR REPLACE FUNCTION orders.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE OR REPLACE TRIGGER transitions_append_only BEFORE UPDATE OR DELETE ON orders.transitions
    FOR EACH ROW EXECUTE FUNCTION orders.refuse_change();
CREATE OR REPLACE TRIGGER fills_append_only BEFORE UPDATE OR DELETE ON orders.fills
    FOR EACH ROW EXECUTE FUNCTION orders.refuse_change();
