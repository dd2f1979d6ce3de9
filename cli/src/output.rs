//! How the listings print: aligned plain-ASCII tables (no borders, columns two spaces apart) for
//! people, `--format json` (one JSON document on stdout) for scripts.

use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use taskhost_names::is_unsafe_to_print;

/// What became of stdout: [`OPEN`], [`CLOSED`] by the reader, or [`FAILED`] otherwise.
static STDOUT: AtomicU8 = AtomicU8::new(OPEN);
const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const FAILED: u8 = 2;

/// Write to stdout, for every command that prints (through `outln!` / `out!`).
///
/// `println!` panics when stdout is a pipe whose reader has gone (`taskhost plugin test | head`:
/// Rust ignores SIGPIPE, so the write fails with EPIPE). Here a closed stdout ends the output
/// quietly: this and every later write are dropped, and the command finishes with the status
/// it would have had. Another write error (a full disk) is reported once on stderr and the
/// command exits 1.
///
/// Why not restore SIGPIPE's default action at the start of `cli::main`, as many Unix tools do:
/// the CLI is mounted in applications, and `worker` runs their task code in this process; with
/// SIGPIPE at its default, a task writing to a socket its peer closed would kill the whole
/// worker instead of getting an error. Signal state is the application's; output is ours.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    if STDOUT.load(Ordering::Relaxed) != OPEN {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT.store(CLOSED, Ordering::Relaxed);
        } else {
            STDOUT.store(FAILED, Ordering::Relaxed);
            eprintln!("error: cannot write to stdout: {e}");
        }
    }
}

/// Whether writing to stdout failed for another reason than its reader closing it.
pub(crate) fn stdout_failed() -> bool {
    STDOUT.load(Ordering::Relaxed) == FAILED
}

/// `rows` under `header`, each column as wide as its widest cell; the columns whose index is in
/// `right` are right-aligned (numbers). Cells are printed as given: escape names first.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>, right: &[usize]) -> String {
    let mut table = Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        // Never wrap: a listing is read by grep and cut as much as by eyes.
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        // No padding on the left of the first column; two spaces between columns.
        column.set_padding((u16::from(i > 0), 1));
        column.set_constraint(ColumnConstraint::ContentWidth);
        if right.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table.trim_fmt()
}

/// `value` as pretty JSON, safe for a terminal: serde_json escapes C0 controls in strings, and
/// [`json_escaped`] the rest; parsed back, every string is the real one.
pub(crate) fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let json = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    Ok(json_escaped(&json).into_owned())
}

/// `json` (as serde_json writes it: C0 controls in strings already escaped) with the other
/// characters a terminal may act on (DEL, C1, bidirectional controls) escaped too (`\u009b`).
pub(crate) fn json_escaped(json: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| u32::from(c) >= 0x7f && is_unsafe_to_print(c);
    if !json.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if unsafe_char(c) {
            // Every such character is in the Basic Multilingual Plane: one \uXXXX.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_right_align_numbers() {
        let rows = vec![
            vec!["default".to_string(), "READY".to_string(), "3".to_string()],
            vec![
                "emails".to_string(),
                "SUCCESSFUL".to_string(),
                "12345".to_string(),
            ],
        ];
        assert_eq!(
            table(&["QUEUE", "STATUS", "COUNT"], rows, &[2]),
            "QUEUE    STATUS      COUNT\n\
             default  READY           3\n\
             emails   SUCCESSFUL  12345"
        );
    }

    #[test]
    fn json_output_escapes_what_serde_json_leaves_for_a_terminal() {
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "queue_name": "a\u{1b}[31mred\u{7f}\u{9b}\u{202e}é"
        }))
        .unwrap();
        let shown = json_escaped(&json);
        assert_eq!(
            shown,
            "{\n  \"queue_name\": \"a\\u001b[31mred\\u007f\\u009b\\u202eé\"\n}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["queue_name"], "a\u{1b}[31mred\u{7f}\u{9b}\u{202e}é");
        assert!(matches!(
            json_escaped("{\"a\": 1}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
