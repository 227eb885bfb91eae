-- execution-engine: the transactional outbox. The envelopes of the events an engine call produced
-- (ExecutionReport, TradeClosed) are inserted in the same transaction as the orders, fills, positions
-- and trades that call changed, published afterwards, and then marked (published_at). A relay
-- publishes the rows still unmarked, in id order: at start, after a lease takeover, and every few
-- seconds. At least once: a row published but not marked goes out again (consumers are idempotent).

CREATE TABLE IF NOT EXISTS orders.outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           text,
    envelope      jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

-- the relay's query: unpublished rows in id order
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON orders.outbox (id) WHERE published_at IS NULL;
