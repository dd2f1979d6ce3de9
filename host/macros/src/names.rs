//! The queue-name rule, checked at compile time for a `queue_name = "…"` literal.
//!
//! A copy of the host's rule in `host/src/validation.rs` (this crate cannot depend on the host),
//! with the same message; the host's tests compare the two through `tests/ui/bad_queue_name`.

/// The longest queue name, in bytes (`taskhost::MAX_QUEUE_NAME_BYTES`).
const MAX_QUEUE_NAME_BYTES: usize = 255;

/// How many characters of a faulty name a message shows (then `…`).
const SHOWN_CHARS: usize = 64;

/// The host's message for a queue name that breaks the rule, or `None` when it keeps it.
pub(crate) fn queue_name_error(name: &str) -> Option<String> {
    let fault = queue_name_fault(name)?;
    Some(format!(
        "Invalid queue name '{}': a queue name must be 1 to {MAX_QUEUE_NAME_BYTES} bytes \
         without control characters, commas or leading or trailing whitespace, and not '*' \
         ({fault}).",
        shown(name)
    ))
}

fn queue_name_fault(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_string());
    }
    if name.len() > MAX_QUEUE_NAME_BYTES {
        return Some(format!("it is {} bytes", name.len()));
    }
    if let Some((at, c)) = name.char_indices().find(|&(_, c)| is_unsafe_to_print(c)) {
        return Some(format!(
            "it has the control character {} at byte offset {at}",
            escape(c.encode_utf8(&mut [0; 4]))
        ));
    }
    if name.contains(',') {
        return Some("it has a comma, which separates queue names in --queue".to_string());
    }
    if name.starts_with(char::is_whitespace) {
        return Some("it starts with whitespace".to_string());
    }
    if name.ends_with(char::is_whitespace) {
        return Some("it ends with whitespace".to_string());
    }
    if name == "*" {
        return Some("'*' means every queue in --queue".to_string());
    }
    None
}

fn is_unsafe_to_print(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if is_unsafe_to_print(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

fn shown(name: &str) -> String {
    match name.char_indices().nth(SHOWN_CHARS) {
        None => escape(name),
        Some((cut, _)) => format!("{}…", escape(&name[..cut])),
    }
}
