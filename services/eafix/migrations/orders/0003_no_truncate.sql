-- The ledgers refuse TRUNCATE too (0001 refuses UPDATE and DELETE row by row; TRUNCATE bypasses
-- row triggers), as risk's ledgers do.

CREATE OR REPLACE TRIGGER transitions_no_truncate BEFORE TRUNCATE ON orders.transitions
    FOR EACH STATEMENT EXECUTE FUNCTION orders.refuse_change();
CREATE OR REPLACE TRIGGER fills_no_truncate BEFORE TRUNCATE ON orders.fills
    FOR EACH STATEMENT EXECUTE FUNCTION orders.refuse_change();
