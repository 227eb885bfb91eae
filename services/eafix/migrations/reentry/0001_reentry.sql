-- reentry-matrix-svc (schema `reentry`): what opened each trade (its signal and order), the decision
-- ledger (one row per closed trade: classification, matrix tier, verdict; append-only: a trigger
-- refuses UPDATE, DELETE and TRUNCATE) and the scheduled re-entries (a due time that survives a
-- restart; marked once their signal is published). Chains are the decisions of one original trade.

CREATE SCHEMA IF NOT EXISTS reentry;

CREATE TABLE IF NOT EXISTS reentry.origins (
    signal_id       text        PRIMARY KEY,
    family          text        NOT NULL,
    timeframe       text        NOT NULL,
    confidence      double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    generation      text        NOT NULL CHECK (generation IN ('O', 'R1', 'R2')),
    parent_trade_id text,
    seen_at         timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS reentry.orders (
    client_order_id text        PRIMARY KEY,
    signal_id       text        NOT NULL,
    sl_pips         numeric     NOT NULL CHECK (sl_pips > 0),
    tp_pips         numeric     NOT NULL CHECK (tp_pips > 0),
    seen_at         timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS reentry.decisions (
    decision_id           text        PRIMARY KEY,
    trade_id              text        NOT NULL UNIQUE,
    original_trade_id     text        NOT NULL,
    symbol                text        NOT NULL CHECK (symbol ~ '^[A-Z]{6}$'),
    family                text        NOT NULL,
    generation            text        NOT NULL CHECK (generation IN ('O', 'R1', 'R2')),
    next_generation       text        CHECK (next_generation IN ('R1', 'R2')),
    outcome               text        NOT NULL CHECK (outcome ~ '^O[1-6]$'),
    duration              text        NOT NULL CHECK (duration IN ('FLASH', 'QUICK', 'LONG', 'EXTENDED')),
    proximity             text        NOT NULL CHECK (proximity IN ('IM', 'SH', 'LG', 'EX', 'CD', 'NONE')),
    action                text        NOT NULL,
    tier                  smallint    NOT NULL CHECK (tier BETWEEN 0 AND 4),
    parameter_set         text        NOT NULL,
    size_multiplier       numeric     NOT NULL,
    delay_minutes         integer     NOT NULL CHECK (delay_minutes >= 0),
    confidence_adjustment double precision NOT NULL,
    hybrid_id             text        NOT NULL,
    refusal               text,
    approved              boolean     NOT NULL,
    decided_at            timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS decisions_chain_idx ON reentry.decisions (original_trade_id, decided_at);
CREATE INDEX IF NOT EXISTS decisions_approved_idx ON reentry.decisions (decided_at) WHERE approved;

CREATE TABLE IF NOT EXISTS reentry.scheduled (
    signal_id         text        PRIMARY KEY,
    decision_id       text        NOT NULL REFERENCES reentry.decisions (decision_id),
    payload           jsonb       NOT NULL,  -- the ReentrySignal, as the engine restores it
    due_at            timestamptz NOT NULL,
    published_at      timestamptz
);

CREATE INDEX IF NOT EXISTS scheduled_due_idx ON reentry.scheduled (due_at) WHERE published_at IS NULL;

CREATE OR REPLACE FUNCTION reentry.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE OR REPLACE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON reentry.decisions
    FOR EACH ROW EXECUTE FUNCTION reentry.refuse_change();
CREATE OR REPLACE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON reentry.decisions
    FOR EACH STATEMENT EXECUTE FUNCTION reentry.refuse_change();
