//! The Quick start demo: define tasks, enqueue them on the Immediate and Dummy backends, watch
//! signals, and use a transaction scope. Run with `cargo run -p taskhost-demo` after
//! `cargo build --workspace` (which builds the plugin files next to the demo binary).

use std::path::Path;
use taskhost::{atomic, signals, task, task_backends, Config, TaskOptions};

/// Adds two numbers.
#[task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Why sending can fail.
#[derive(Debug, thiserror::Error)]
#[error("mailbox {0} is full")]
struct MailboxFull(String);

/// Sends a message, or fails when the mailbox is full.
#[task(queue_name = "emails", priority = 10)]
fn send_email(to: String) -> Result<usize, MailboxFull> {
    if to.starts_with("full@") {
        return Err(MailboxFull(to));
    }
    Ok(to.len())
}

const CONFIG: &str = r#"
[tasks.default]
backend = "taskhost.backends.immediate.ImmediateBackend"
queues = []

[tasks.later]
backend = "taskhost.backends.dummy.DummyBackend"
queues = ["default", "emails"]
"#;

fn main() -> Result<(), taskhost::Error> {
    let config = Config::from_toml_str(CONFIG, None, Path::new("."))?;
    task_backends().configure(config);
    signals::task_finished.connect(|e| {
        println!(
            "  [signal] task_finished from {}: {} is {}",
            e.sender,
            e.task_result.task().path,
            e.task_result.status()
        );
    });

    println!("1. The Immediate backend runs a task at once:");
    let sum = add.enqueue(2, 3)?;
    println!(
        "   {} -> {:?}, return value {}",
        sum.id(),
        sum.status(),
        sum.return_value()?
    );

    println!("2. A task that returns an error is FAILED, and the caller carries on:");
    let failed = send_email.enqueue("full@example.com".into())?;
    println!(
        "   status {:?}; error {}",
        failed.status(),
        failed.errors()[0].traceback.trim_end()
    );

    println!("3. The Dummy backend stores tasks without running them:");
    let later = send_email.using(TaskOptions::new().backend("later"))?;
    let stored = later.enqueue("ada@example.com".into())?;
    let fetched = later.get_result(stored.id())?;
    println!(
        "   {} is {:?}; stored results: {}",
        fetched.id(),
        fetched.status(),
        task_backends().get("later")?.results()?.len()
    );

    println!("4. Inside a transaction scope, an enqueue waits for the commit:");
    let _ = atomic(|| -> Result<(), taskhost::Error> {
        later.enqueue("rolled@back.example".into())?;
        Err(taskhost::Error::InvalidTask(
            "rolled back on purpose".into(),
        ))
    });
    atomic(|| later.enqueue("grace@example.com".into()).map(|_| ()))?;
    println!(
        "   after one rollback and one commit: {} stored results",
        task_backends().get("later")?.results()?.len()
    );
    Ok(())
}
