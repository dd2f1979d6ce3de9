use super::api::*;
use super::harness::{Kind, TestDb};
use crate::row::NewTask;
use std::time::Instant;
use taskhost_plugin_api::{abi_stable::std_types::RStr, Backend};

#[test]
#[ignore]
fn profile_sqlite_insert() {
    const ROWS: usize = 200_000;
    let db = TestDb::new(Kind::Sqlite).unwrap();
    let (b, host) = db.backend();
    host.set_wants_signals(false);
    let requests: Vec<_> = (0..ROWS).map(|i| task("t::bench", "default", (i % 3) as i32, None)).collect();
    let t = Instant::now();
    let json: Vec<String> = requests.chunks(10_000).map(|c| serde_json::to_string(c).unwrap()).collect();
    eprintln!("encode requests: {:?}", t.elapsed());
    let t = Instant::now();
    let decoded: Vec<Vec<taskhost_plugin_api::wire::EnqueueRequest>> = json.iter().map(|j| serde_json::from_str(j).unwrap()).collect();
    eprintln!("decode requests: {:?}", t.elapsed());
    let t = Instant::now();
    let tasks: Vec<Vec<NewTask>> = decoded.into_iter().map(|c| c.into_iter().map(|r| NewTask { id: uuid::Uuid::try_parse(&r.id).unwrap(), request: r, enqueued_at: db.now() }).collect()).collect();
    eprintln!("new tasks: {:?}", t.elapsed());
    let t = Instant::now();
    for chunk in &tasks { b.store.enqueue(chunk).unwrap(); }
    eprintln!("store.enqueue: {:?} = {:.0}/s", t.elapsed(), ROWS as f64 / t.elapsed().as_secs_f64());
    let t = Instant::now();
    for j in &json { let _ = b.enqueue_many(RStr::from_str(j)); }
    eprintln!("(dupes) full path error: {:?}", t.elapsed());
}

#[test]
#[ignore]
fn profile_sqlite_variants() {
    const ROWS: usize = 100_000;
    let variants: [(&str, &str); 6] = [
        ("as is", ""),
        ("no claim idx", "DROP INDEX taskhost_tasks_claim_idx;"),
        ("claim idx w/o id", "DROP INDEX taskhost_tasks_claim_idx; CREATE INDEX c2 ON taskhost_tasks (backend_name, priority DESC, COALESCE(run_after, 253370764800000000), enqueued_at) WHERE status = 'READY';"),
        ("claim idx w/o id+backend", "DROP INDEX taskhost_tasks_claim_idx; CREATE INDEX c2 ON taskhost_tasks (priority DESC, COALESCE(run_after, 253370764800000000), enqueued_at) WHERE status = 'READY';"),
        ("no indexes at all", "DROP INDEX taskhost_tasks_claim_idx; DROP INDEX taskhost_tasks_lease_idx; DROP INDEX taskhost_tasks_finished_idx;"),
        ("as is again", ""),
    ];
    for (name, setup) in variants {
        let db = TestDb::new(Kind::Sqlite).unwrap();
        let (b, _) = db.backend();
        drop(b);
        let mut conn = db.sqlite();
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;").unwrap();
        conn.execute_batch(setup).unwrap();
        let requests: Vec<_> = (0..ROWS).map(|i| task("t::bench", "default", (i % 3) as i32, None)).collect();
        let args: Vec<(String, String)> = requests.iter().map(|r| (serde_json::to_string(&r.args).unwrap(), serde_json::to_string(&r.kwargs).unwrap())).collect();
        let t = Instant::now();
        let mut n = 0i64;
        for (chunk, args) in requests.chunks(10_000).zip(args.chunks(10_000)) {
            let tx = conn.transaction().unwrap();
            {
                let mut st = tx.prepare_cached("INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, status, args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, timeout_secs) VALUES (?1, ?2, ?3, ?4, ?5, 'READY', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)").unwrap();
                for (r, (a, k)) in chunk.iter().zip(args) {
                    n += 1;
                    st.execute(rusqlite::params![r.id, r.task.path, r.task.queue_name, r.task.priority, "default", a, k, false, false, None::<i64>, 1_700_000_000_000_000i64 + n, None::<i64>, None::<f64>]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        eprintln!("{name}: {:.0}/s", ROWS as f64 / t.elapsed().as_secs_f64());
    }
}

#[test]
#[ignore]
fn profile_sqlite_multirow() {
    const ROWS: usize = 100_000;
    for per in [1usize, 20, 50, 100, 1, 50] {
        let db = TestDb::new(Kind::Sqlite).unwrap();
        let (b, _) = db.backend();
        drop(b);
        let mut conn = db.sqlite();
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;").unwrap();
        let requests: Vec<_> = (0..ROWS).map(|i| task("t::bench", "default", (i % 3) as i32, None)).collect();
        let args: Vec<(String, String)> = requests.iter().map(|r| (serde_json::to_string(&r.args).unwrap(), serde_json::to_string(&r.kwargs).unwrap())).collect();
        let row = "(?, ?, ?, ?, ?, 'READY', ?, ?, ?, ?, ?, ?, ?, ?)";
        let sql = format!("INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, status, args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, timeout_secs) VALUES {}", vec![row; per].join(", "));
        let t = Instant::now();
        let mut n = 0i64;
        for (chunk, args) in requests.chunks(10_000).zip(args.chunks(10_000)) {
            let tx = conn.transaction().unwrap();
            {
                let mut st = tx.prepare_cached(&sql).unwrap();
                for (rs, ars) in chunk.chunks(per).zip(args.chunks(per)) {
                    let mut i = 1;
                    for (r, (a, k)) in rs.iter().zip(ars) {
                        n += 1;
                        st.raw_bind_parameter(i, &r.id).unwrap();
                        st.raw_bind_parameter(i + 1, &r.task.path).unwrap();
                        st.raw_bind_parameter(i + 2, &r.task.queue_name).unwrap();
                        st.raw_bind_parameter(i + 3, r.task.priority).unwrap();
                        st.raw_bind_parameter(i + 4, "default").unwrap();
                        st.raw_bind_parameter(i + 5, a).unwrap();
                        st.raw_bind_parameter(i + 6, k).unwrap();
                        st.raw_bind_parameter(i + 7, false).unwrap();
                        st.raw_bind_parameter(i + 8, false).unwrap();
                        st.raw_bind_parameter(i + 9, None::<i64>).unwrap();
                        st.raw_bind_parameter(i + 10, 1_700_000_000_000_000i64 + n).unwrap();
                        st.raw_bind_parameter(i + 11, None::<i64>).unwrap();
                        st.raw_bind_parameter(i + 12, None::<f64>).unwrap();
                        i += 13;
                    }
                    st.raw_execute().unwrap();
                }
            }
            tx.commit().unwrap();
        }
        eprintln!("{per} rows per statement: {:.0}/s", ROWS as f64 / t.elapsed().as_secs_f64());
    }
}

#[test]
#[ignore]
fn profile_sqlite_tables() {
    const ROWS: usize = 100_000;
    let base = include_str!("../../migrations/sqlite/0001_tasks.sql");
    let idx = include_str!("../../migrations/sqlite/0002_indexes.sql");
    let variants = [
        ("rowid + text pk", base.to_string()),
        ("without rowid", base.replace("    lease_expires_at  INTEGER\n) STRICT;", "    lease_expires_at  INTEGER\n) STRICT, WITHOUT ROWID;")),
        ("no pk (upper bound)", base.replace("id                TEXT    NOT NULL PRIMARY KEY", "id TEXT NOT NULL")),
        ("rowid + text pk", base.to_string()),
        ("without rowid", base.replace("    lease_expires_at  INTEGER\n) STRICT;", "    lease_expires_at  INTEGER\n) STRICT, WITHOUT ROWID;")),
    ];
    for (name, ddl) in variants {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;").unwrap();
        conn.execute_batch(&ddl).unwrap();
        conn.execute_batch(idx).unwrap();
        let requests: Vec<_> = (0..ROWS).map(|i| task("t::bench", "default", (i % 3) as i32, None)).collect();
        let args: Vec<(String, String)> = requests.iter().map(|r| (serde_json::to_string(&r.args).unwrap(), serde_json::to_string(&r.kwargs).unwrap())).collect();
        let t = Instant::now();
        let mut n = 0i64;
        for (chunk, args) in requests.chunks(10_000).zip(args.chunks(10_000)) {
            let tx = conn.transaction().unwrap();
            {
                let mut st = tx.prepare_cached("INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, status, args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, timeout_secs) VALUES (?1, ?2, ?3, ?4, ?5, 'READY', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)").unwrap();
                for (r, (a, k)) in chunk.iter().zip(args) {
                    n += 1;
                    st.execute(rusqlite::params![r.id, r.task.path, r.task.queue_name, r.task.priority, "default", a, k, false, false, None::<i64>, 1_700_000_000_000_000i64 + n, None::<i64>, None::<f64>]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        eprintln!("{name}: {:.0}/s", ROWS as f64 / t.elapsed().as_secs_f64());
    }
}

#[test]
#[ignore]
fn profile_sqlite_baseline() {
    const ROWS: i64 = 100_000;
    for ddl in ["CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c TEXT, d INTEGER, e TEXT, f TEXT, g TEXT, h INTEGER, i INTEGER, j INTEGER, k INTEGER, l INTEGER, m REAL)"] {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;").unwrap();
        conn.execute_batch(ddl).unwrap();
        let t = Instant::now();
        let tx = conn.transaction().unwrap();
        {
            if ddl.contains(" m REAL") {
                let mut st = tx.prepare("INSERT INTO t (a,b,c,d,e,f,g,h,i,j,k,l,m) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)").unwrap();
                for n in 0..ROWS { st.execute(rusqlite::params!["01a21019-8b04-72b2-a51f-223a7e396e0c", "t::bench", "default", 1, "default", "[1,\"two\"]", "{\"three\":3.5}", false, false, None::<i64>, n, None::<i64>, None::<f64>]).unwrap(); }
            } else {
                let mut st = tx.prepare("INSERT INTO t (a) VALUES (?1)").unwrap();
                for _ in 0..ROWS { st.execute(["x"]).unwrap(); }
            }
        }
        tx.commit().unwrap();
        eprintln!("{ddl:.40}: {:.0}/s", ROWS as f64 / t.elapsed().as_secs_f64());
    }
}

#[test]
#[ignore]
fn profile_sqlite_steps() {
    const ROWS: usize = 100_000;
    let base = include_str!("../../migrations/sqlite/0001_tasks.sql");
    let claim = "CREATE INDEX taskhost_tasks_claim_idx ON taskhost_tasks (backend_name, priority DESC, COALESCE(run_after, 253370764800000000), enqueued_at, id) WHERE status = 'READY';";
    let claim_no_coalesce = "CREATE INDEX taskhost_tasks_claim_idx ON taskhost_tasks (backend_name, priority DESC, run_after, enqueued_at, id) WHERE status = 'READY';";
    let claim_full = "CREATE INDEX taskhost_tasks_claim_idx ON taskhost_tasks (backend_name, priority DESC, COALESCE(run_after, 253370764800000000), enqueued_at, id);";
    let variants = [
        ("table only", base.to_string()),
        ("+claim idx", format!("{base}{claim}")),
        ("+claim idx no coalesce", format!("{base}{claim_no_coalesce}")),
        ("+claim idx not partial", format!("{base}{claim_full}")),
        ("table only", base.to_string()),
        ("+claim idx", format!("{base}{claim}")),
    ];
    for (name, ddl) in variants {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;").unwrap();
        conn.execute_batch(&ddl).unwrap();
        let requests: Vec<_> = (0..ROWS).map(|i| task("t::bench", "default", (i % 3) as i32, None)).collect();
        let args: Vec<(String, String)> = requests.iter().map(|r| (serde_json::to_string(&r.args).unwrap(), serde_json::to_string(&r.kwargs).unwrap())).collect();
        let t = Instant::now();
        let mut n = 0i64;
        let tx = conn.transaction().unwrap();
        {
            let mut st = tx.prepare_cached("INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, status, args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, timeout_secs) VALUES (?1, ?2, ?3, ?4, ?5, 'READY', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)").unwrap();
            for (r, (a, k)) in requests.iter().zip(&args) {
                n += 1;
                st.execute(rusqlite::params![r.id, r.task.path, r.task.queue_name, r.task.priority, "default", a, k, false, false, None::<i64>, 1_700_000_000_000_000i64 + n, None::<i64>, None::<f64>]).unwrap();
            }
        }
        tx.commit().unwrap();
        eprintln!("{name}: {:.0}/s", ROWS as f64 / t.elapsed().as_secs_f64());
    }
}

#[test]
#[ignore]
fn profile_sqlite_pk() {
    const ROWS: usize = 100_000;
    let cols = "task_path TEXT, queue_name TEXT, priority INTEGER, backend_name TEXT, status TEXT, args TEXT, kwargs TEXT, takes_context INTEGER, is_async INTEGER, run_after INTEGER, enqueued_at INTEGER, max_attempts INTEGER, timeout_secs REAL";
    let variants = [
        ("int pk, id col", format!("CREATE TABLE taskhost_tasks (rid INTEGER PRIMARY KEY, id TEXT, {cols})")),
        ("text pk", format!("CREATE TABLE taskhost_tasks (id TEXT PRIMARY KEY, {cols})")),
        ("text pk strict", format!("CREATE TABLE taskhost_tasks (id TEXT PRIMARY KEY, {cols}) STRICT")),
        ("int pk, id col", format!("CREATE TABLE taskhost_tasks (rid INTEGER PRIMARY KEY, id TEXT, {cols})")),
        ("text pk", format!("CREATE TABLE taskhost_tasks (id TEXT PRIMARY KEY, {cols})")),
    ];
    for (name, ddl) in variants {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;").unwrap();
        conn.execute_batch(&ddl).unwrap();
        let requests: Vec<_> = (0..ROWS).map(|i| task("t::bench", "default", (i % 3) as i32, None)).collect();
        let args: Vec<(String, String)> = requests.iter().map(|r| (serde_json::to_string(&r.args).unwrap(), serde_json::to_string(&r.kwargs).unwrap())).collect();
        let t = Instant::now();
        let mut n = 0i64;
        let tx = conn.transaction().unwrap();
        {
            let mut st = tx.prepare_cached("INSERT INTO taskhost_tasks (id, task_path, queue_name, priority, backend_name, status, args, kwargs, takes_context, is_async, run_after, enqueued_at, max_attempts, timeout_secs) VALUES (?1, ?2, ?3, ?4, ?5, 'READY', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)").unwrap();
            for (r, (a, k)) in requests.iter().zip(&args) {
                n += 1;
                st.execute(rusqlite::params![r.id, r.task.path, r.task.queue_name, r.task.priority, "default", a, k, false, false, None::<i64>, 1_700_000_000_000_000i64 + n, None::<i64>, None::<f64>]).unwrap();
            }
        }
        tx.commit().unwrap();
        eprintln!("{name}: {:.0}/s", ROWS as f64 / t.elapsed().as_secs_f64());
    }
}
