-- reporter: its trade ledger and what it needs to explain it (strategy, fill rate, slippage). Every
-- table is append-only (UPDATE, DELETE and TRUNCATE raise); a redelivered event is the same primary
-- key and is skipped (ON CONFLICT DO NOTHING). Money and prices are exact numeric.

CREATE SCHEMA IF NOT EXISTS reports;

CREATE TABLE IF NOT EXISTS reports.signals (
    signal_id   text        PRIMARY KEY,
    strategy    text        NOT NULL,
    symbol      text        NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    ts          timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS reports.orders (
    client_order_id  text        PRIMARY KEY,
    signal_id        text        NOT NULL,
    symbol           text        NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    direction        text        NOT NULL CHECK (direction IN ('LONG', 'SHORT')),
    lots             numeric     NOT NULL CHECK (lots > 0),
    entry_price      numeric     NOT NULL CHECK (entry_price > 0),
    submitted_at     timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS reports.fills (
    client_order_id  text        PRIMARY KEY,
    symbol           text        NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    filled_lots      numeric     NOT NULL CHECK (filled_lots > 0),
    avg_price        numeric     NOT NULL CHECK (avg_price > 0),
    filled_at        timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS reports.trades (
    trade_id     text        PRIMARY KEY,
    close_time   timestamptz NOT NULL,
    payload      jsonb       NOT NULL,  -- the TradeClosed event as received (its JSON form)
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS trades_close_idx ON reports.trades (close_time, trade_id);

CREATE OR REPLACE FUNCTION reports.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END;
$$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['signals', 'orders', 'fills', 'trades'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE UPDATE OR DELETE ON reports.%I '
                       'FOR EACH ROW EXECUTE FUNCTION reports.refuse_change()', t || '_append_only', t);
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE TRUNCATE ON reports.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION reports.refuse_change()', t || '_no_truncate', t);
    END LOOP;
END;
$$;
