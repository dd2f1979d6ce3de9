-- taskhost DatabaseBackend, PostgreSQL, version 5: storage settings for a table that is a queue.
--
-- fillfactor 50: inserts fill half of each page, so a row's claim and its completion (two
-- updates) usually write their new version on the row's own page instead of at the end of the
-- table: a fifth less WAL per task and a third of the table growth during a drain. Only pages
-- written from now on get the room; existing rows stay where they are (no rewrite).
-- Autovacuum from 1,000 dead rows plus 1 % of the table (PostgreSQL's defaults: 50 plus 20 %):
-- every claim walks past the dead entries earlier claims left at the front of the claim index
-- until VACUUM removes them, so vacuum must not wait until a fifth of a large results table is
-- dead. A setting already made on the table (by its owner) is kept.
-- See docs/decisions/015-postgres-drain-storage.md.
DO $$
DECLARE
    wanted text[] := ARRAY[
        'fillfactor=50',
        'autovacuum_vacuum_threshold=1000',
        'autovacuum_vacuum_scale_factor=0.01',
        'autovacuum_analyze_threshold=1000',
        'autovacuum_analyze_scale_factor=0.02'
    ];
    present text[];
    setting text;
BEGIN
    SELECT COALESCE(reloptions, '{}') INTO present FROM pg_class
        WHERE oid = 'taskhost_tasks'::regclass;
    FOREACH setting IN ARRAY wanted LOOP
        IF NOT EXISTS (
            SELECT 1 FROM unnest(present) AS p
            WHERE split_part(p, '=', 1) = split_part(setting, '=', 1)
        ) THEN
            EXECUTE format('ALTER TABLE taskhost_tasks SET (%s)', setting);
        END IF;
    END LOOP;
END;
$$;
