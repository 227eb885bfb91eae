-- gui-gateway (schema `gateway`): the operator audit. One row per emergency control, login and
-- refused authentication: who, when, what, reason, result, correlation id. Append-only without
-- exception: UPDATE, DELETE and TRUNCATE are refused (an operator's trail is never pruned here).

CREATE SCHEMA IF NOT EXISTS gateway;

CREATE TABLE IF NOT EXISTS gateway.operator_audit (
    id             bigserial   PRIMARY KEY,
    recorded_at    timestamptz NOT NULL,
    actor          text        NOT NULL,
    roles          text        NOT NULL,
    action         text        NOT NULL,
    reason         text,
    result         text        NOT NULL,
    correlation_id text        NOT NULL,
    source         text        NOT NULL,
    detail         jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX IF NOT EXISTS operator_audit_recorded_idx ON gateway.operator_audit (recorded_at);
CREATE INDEX IF NOT EXISTS operator_audit_action_idx ON gateway.operator_audit (action, id);

CREATE OR REPLACE FUNCTION gateway.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE OR REPLACE TRIGGER operator_audit_append_only BEFORE UPDATE OR DELETE ON gateway.operator_audit
    FOR EACH ROW EXECUTE FUNCTION gateway.refuse_change();
CREATE OR REPLACE TRIGGER operator_audit_no_truncate BEFORE TRUNCATE ON gateway.operator_audit
    FOR EACH STATEMENT EXECUTE FUNCTION gateway.refuse_change();
