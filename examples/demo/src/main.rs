//! The Quick start demo, and an application binary with the `taskhost` commands mounted.
//!
//! `taskhost-demo` with no arguments: enqueue a batch of tasks into an embedded SQLite queue
//! store (`target/taskhost-demo/tasks.db`), run a worker over them, and print what happened;
//! then show the Immediate and Dummy backends and a transaction scope.
//!
//! `taskhost-demo <command>`: the `taskhost` command line, with this binary's tasks — e.g.
//! `taskhost-demo --config examples/demo/tasks.toml worker --queue '*' --concurrency 4`.

use std::path::{Path, PathBuf};
use taskhost::{atomic, signals, task, task_backends, Config, TaskOptions, Worker, WorkerOptions};

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

/// Counts the words of a text, taking its time like real work.
#[task]
async fn count_words(text: String) -> usize {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    text.split_whitespace().count()
}

fn config(db: &Path) -> String {
    format!(
        r#"
[tasks.default]
backend = "taskhost.backends.database.DatabaseBackend"
queues = ["default", "emails"]
[tasks.default.options]
url = "sqlite://{}"

[tasks.now]
backend = "taskhost.backends.immediate.ImmediateBackend"
queues = []

[tasks.later]
backend = "taskhost.backends.dummy.DummyBackend"
queues = []
"#,
        db.display()
    )
}

fn demo_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    target.join("taskhost-demo")
}

fn main() -> std::process::ExitCode {
    if std::env::args_os().len() > 1 {
        return taskhost_cli::cli_main!();
    }
    match demo() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let dir = demo_dir();
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("tasks.db");
    for stale in ["tasks.db", "tasks.db-wal", "tasks.db-shm"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    task_backends().configure(Config::from_toml_str(&config(&db), None, &dir)?);
    println!("Queue store: SQLite at {}", db.display());

    println!("\n1. Enqueue a batch: 100 additions, 20 word counts, 3 emails (one will fail).");
    let sums = add.enqueue_many((0..100).map(|i| (i, i * 2)))?;
    let words =
        count_words.enqueue_many((0..20).map(|i| (format!("task number {i} of twenty"),)))?;
    let mails = ["ada@example.com", "full@example.com", "grace@example.com"]
        .map(|to| send_email.enqueue(to.to_string()));
    println!(
        "   {} results stored, all {:?}",
        sums.len() + words.len() + mails.len(),
        sums[0].status()
    );

    println!("\n2. Run a worker over every queue until nothing is left (4 at a time).");
    let runtime = tokio::runtime::Runtime::new()?;
    let mut options = WorkerOptions::new();
    options.queues = taskhost::worker::QueueSelection::All { exclude: vec![] };
    options.concurrency = 4;
    options.batch = true;
    let report = runtime.block_on(async { Worker::new(options)?.run().await })?;
    println!(
        "   worker: {} claimed, {} successful, {} failed",
        report.claimed, report.successful, report.failed
    );

    println!("\n3. What happened:");
    let sum = add.get_result(sums[99].id())?;
    println!(
        "   add(99, 198) -> {:?}, return value {}",
        sum.status(),
        sum.return_value()?
    );
    let count = count_words.get_result(words[3].id())?;
    println!(
        "   count_words(..) -> {} words after {} attempt(s)",
        count.return_value()?,
        count.attempts()
    );
    for mail in mails {
        let mail = send_email.get_result(mail?.id())?;
        match mail.status() {
            taskhost::TaskResultStatus::Failed => println!(
                "   send_email -> FAILED: {}",
                mail.errors()[0].traceback.trim_end()
            ),
            status => println!(
                "   send_email -> {status:?}, {} characters",
                mail.return_value()?
            ),
        }
    }

    println!("\n4. Other backends: Immediate runs at once, Dummy only stores.");
    let id = signals::task_finished.connect(|e| {
        println!(
            "   [signal task_finished] {} on {}: {}",
            e.task_result.task().path,
            e.sender,
            e.task_result.status()
        );
    });
    let now = add
        .using(TaskOptions::new().backend("now"))?
        .enqueue(2, 3)?;
    println!(
        "   Immediate: {:?}, return value {}",
        now.status(),
        now.return_value()?
    );
    signals::task_finished.disconnect(id);
    let later = add.using(TaskOptions::new().backend("later"))?;
    let _ = atomic(|| -> Result<(), taskhost::Error> {
        later.enqueue(1, 1)?;
        Err(taskhost::Error::InvalidTask(
            "rolled back on purpose".into(),
        ))
    });
    atomic(|| later.enqueue(4, 4).map(|_| ()))?;
    println!(
        "   Dummy: after one rolled-back and one committed transaction scope, {} stored result(s)",
        task_backends().get("later")?.results()?.len()
    );
    println!(
        "\nInspect the store: cargo run -p taskhost-cli -- --config <file> results list   (see README)"
    );
    Ok(())
}
