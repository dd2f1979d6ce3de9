-- taskhost DatabaseBackend, PostgreSQL, version 8: who waits for results
-- (`taskhost.wait_finished`).
--
-- A process that waits for results registers the backend pid of its LISTEN connection here
-- (after its LISTEN, before it reads its rows). A completion asks `taskhost_waiting()` once
-- its UPDATE has locked every row it finishes, and announces the finished ids (one NOTIFY on
-- `taskhost_finished`, after its commit) only when someone waits: a worker fleet nobody waits
-- on pays no NOTIFY. UNLOGGED: waits do not outlive the server. See
-- docs/decisions/023-waiting-for-results.md.
CREATE UNLOGGED TABLE taskhost_waiters (
    pid   integer PRIMARY KEY,
    since timestamptz NOT NULL DEFAULT now()
);

-- PL/pgSQL, VOLATILE: never inlined into the calling statement, and its query takes a fresh
-- snapshot, so it sees a registration committed after the statement began (READ COMMITTED).
CREATE FUNCTION taskhost_waiting() RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM taskhost_waiters);
END;
$$;
