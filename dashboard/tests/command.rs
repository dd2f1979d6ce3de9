//! `taskhost dashboard`, the real command: its refusals, and a served page until SIGTERM.

mod common;

use common::Store;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn taskhost(store: &Store) -> Command {
    let mut command = Command::new(taskhost_e2e::taskhost_bin());
    command
        .arg("--config")
        .arg(store.dir.path().join("tasks.toml"))
        .env_remove("TASKHOST_DASHBOARD_TOKEN");
    command
}

#[test]
fn a_non_loopback_bind_without_a_token_is_refused_with_the_fix() {
    let store = Store::new();
    let out = taskhost(&store)
        .args(["dashboard", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: refusing to serve the dashboard on 0.0.0.0:0 without a token")
            && stderr.contains("--token"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn the_command_serves_until_sigterm_then_exits_cleanly() {
    let store = Store::new();
    store.enqueue(2, "emails", "app::send_email");
    let mut child = taskhost(&store)
        .args(["dashboard", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("taskhost dashboard on http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("the address, first: {line:?}"))
        .to_string();

    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /?live=0 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(">emails<"), "{page}");

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean exit on SIGTERM");
}
