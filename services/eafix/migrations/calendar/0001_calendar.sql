-- calendar-ingestor (schema `calendar`): the economic events (one row per cal8; a later import of
-- the same event updates it), the report of every import (accepted or not, with its skipped and
-- rejected rows) and the events' lifecycle transitions (append-only: a trigger refuses UPDATE,
-- DELETE and TRUNCATE). A restart rebuilds the calendar from the events and their latest state.

CREATE SCHEMA IF NOT EXISTS calendar;

CREATE TABLE IF NOT EXISTS calendar.events (
    cal8         text        PRIMARY KEY CHECK (cal8 ~ '^CAL8-[0-9]{8}-[0-9]{4}-[A-Z]{3}-[0-9]{3}$'),
    cal5         text        NOT NULL CHECK (cal5 ~ '^[0-9]{5}$'),
    kind         text        NOT NULL CHECK (kind = 'ECONOMIC'),
    title        text        NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    impact       text        NOT NULL CHECK (impact IN ('HIGH', 'MEDIUM', 'LOW')),
    scheduled_at timestamptz NOT NULL,
    event_type   text        NOT NULL CHECK (event_type IN ('CPI', 'NFP', 'PMI', 'RATE', 'GDP', 'DEFAULT')),
    signal_type  text        NOT NULL,
    quality      smallint    NOT NULL CHECK (quality BETWEEN 0 AND 100),
    forecast     text,
    previous     text,
    url          text,
    source       text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS events_time_idx ON calendar.events (scheduled_at);

CREATE TABLE IF NOT EXISTS calendar.imports (
    import_id   text        PRIMARY KEY,
    source      text        NOT NULL,
    sha256      text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    imported_at timestamptz NOT NULL,
    accepted    boolean     NOT NULL,
    rows        integer     NOT NULL CHECK (rows >= 0),
    new         integer     NOT NULL CHECK (new >= 0),
    updated     integer     NOT NULL CHECK (updated >= 0),
    unchanged   integer     NOT NULL CHECK (unchanged >= 0),
    skipped     jsonb       NOT NULL,
    rejected    jsonb       NOT NULL,
    CHECK (accepted OR jsonb_array_length(rejected) > 0)
);

CREATE INDEX IF NOT EXISTS imports_digest_idx ON calendar.imports (sha256);

CREATE TABLE IF NOT EXISTS calendar.state_transitions (
    id       bigserial   PRIMARY KEY,
    cal8     text        NOT NULL REFERENCES calendar.events (cal8),
    previous text,
    state    text        NOT NULL CHECK (state IN ('SCHEDULED', 'ANTICIPATION_8HR', 'ANTICIPATION_1HR', 'ACTIVE',
                                                   'COOLDOWN', 'EXPIRED')),
    at       timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS transitions_event_idx ON calendar.state_transitions (cal8, id);

CREATE OR REPLACE FUNCTION calendar.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE OR REPLACE TRIGGER transitions_append_only BEFORE UPDATE OR DELETE ON calendar.state_transitions
    FOR EACH ROW EXECUTE FUNCTION calendar.refuse_change();
CREATE OR REPLACE TRIGGER transitions_no_truncate BEFORE TRUNCATE ON calendar.state_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION calendar.refuse_change();
