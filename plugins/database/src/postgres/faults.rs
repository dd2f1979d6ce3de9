//! Test-only faults for `PgStore` writes: the server ends the session just before
//! the first attempt of a write, or just after it committed (the client then cannot tell
//! whether it did), once, for the store of one schema.

use parking_lot::Mutex;

/// When the connection is lost.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Loss {
    /// Before anything is sent: nothing is written.
    BeforeWrite,
    /// After the commit, before the answer is read.
    AfterCommit,
}

/// A planned loss: the schema, when, and SQL run just before (what other clients do
/// meanwhile).
type Plan = (String, Loss, &'static str);

static PLANNED: Mutex<Vec<Plan>> = Mutex::new(Vec::new());

/// Lose the connection of the next idempotent write on `schema`, at `when`.
pub fn plan(schema: &str, when: Loss) {
    plan_with(schema, when, "");
}

/// [`plan`], running `meanwhile` (SQL) on the connection just before it is lost.
pub fn plan_with(schema: &str, when: Loss, meanwhile: &'static str) {
    PLANNED.lock().push((schema.to_string(), when, meanwhile));
}

fn take(schema: &str, when: Loss) -> Option<&'static str> {
    let mut planned = PLANNED.lock();
    let at = planned
        .iter()
        .position(|(s, w, _)| s == schema && *w == when)?;
    Some(planned.remove(at).2)
}

/// Ends this session on the server: the error is what a lost connection gives.
fn lose(client: &mut postgres::Client, meanwhile: &str) -> Result<(), postgres::Error> {
    client.batch_execute(meanwhile)?;
    client.batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
}

/// Before the first attempt.
pub fn before(schema: &str, client: &mut postgres::Client) -> Result<(), postgres::Error> {
    match take(schema, Loss::BeforeWrite) {
        Some(meanwhile) => lose(client, meanwhile),
        None => Ok(()),
    }
}

/// After the first attempt committed.
pub fn after(schema: &str, client: &mut postgres::Client) -> Result<(), postgres::Error> {
    match take(schema, Loss::AfterCommit) {
        Some(meanwhile) => lose(client, meanwhile),
        None => Ok(()),
    }
}
