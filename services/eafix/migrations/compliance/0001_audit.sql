-- compliance-monitor (schema `compliance`): the audit trail of every alert received, decision taken,
-- action done and approval given. Append-only: UPDATE and TRUNCATE are always refused; DELETE only of
-- rows older than the retention in force (default 7 years), which is what compliance.prune_audit() does
-- (SECURITY DEFINER, so a role that may not delete can be granted EXECUTE on it alone). The retention is
-- itself an append-only history: the newest row of compliance.retention is in force.

CREATE SCHEMA IF NOT EXISTS compliance;

CREATE TABLE IF NOT EXISTS compliance.audit (
    id          bigserial   PRIMARY KEY,
    recorded_at timestamptz NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('alert', 'decision', 'action', 'approval')),
    subject     text        NOT NULL,
    actor       text        NOT NULL,
    detail      jsonb       NOT NULL
);

CREATE INDEX IF NOT EXISTS audit_recorded_idx ON compliance.audit (recorded_at);

CREATE TABLE IF NOT EXISTS compliance.retention (
    id         bigserial   PRIMARY KEY,
    keep       interval    NOT NULL CHECK (keep >= interval '1 day'),
    set_by     text        NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now()
);

INSERT INTO compliance.retention (keep, set_by)
    SELECT interval '7 years', 'migration 0001' WHERE NOT EXISTS (SELECT 1 FROM compliance.retention);

CREATE OR REPLACE FUNCTION compliance.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END;
$$;

-- DELETE passes only for a row past the retention in force; anything younger is refused.
CREATE OR REPLACE FUNCTION compliance.refuse_young_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.recorded_at < now() - (SELECT keep FROM compliance.retention ORDER BY id DESC LIMIT 1) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '%.% is append-only: DELETE refused (row % is within the retention)',
        TG_TABLE_SCHEMA, TG_TABLE_NAME, OLD.id;
END;
$$;

CREATE OR REPLACE TRIGGER audit_no_update BEFORE UPDATE ON compliance.audit
    FOR EACH ROW EXECUTE FUNCTION compliance.refuse_change();
CREATE OR REPLACE TRIGGER audit_delete_expired_only BEFORE DELETE ON compliance.audit
    FOR EACH ROW EXECUTE FUNCTION compliance.refuse_young_delete();
CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON compliance.audit
    FOR EACH STATEMENT EXECUTE FUNCTION compliance.refuse_change();
CREATE OR REPLACE TRIGGER retention_append_only BEFORE UPDATE OR DELETE ON compliance.retention
    FOR EACH ROW EXECUTE FUNCTION compliance.refuse_change();
CREATE OR REPLACE TRIGGER retention_no_truncate BEFORE TRUNCATE ON compliance.retention
    FOR EACH STATEMENT EXECUTE FUNCTION compliance.refuse_change();

-- The pruning job: deletes the rows past the retention in force; returns how many.
CREATE OR REPLACE FUNCTION compliance.prune_audit() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pruned bigint;
BEGIN
    DELETE FROM compliance.audit
        WHERE recorded_at < now() - (SELECT keep FROM compliance.retention ORDER BY id DESC LIMIT 1);
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN pruned;
END;
$$;
