//! The rules taskhost holds the names a task carries to: a queue name and a task path, with the
//! messages that say what is wrong, and the escaping that makes any name safe to print. One
//! source for the host (`taskhost`, which refuses a bad name at enqueue as `InvalidTask`) and
//! for the `#[task]` attribute (`taskhost-macros`, which refuses a bad literal at compile time).
//!
//! Django checks neither; taskhost does, because stores and tools cannot take every string:
//! PostgreSQL refuses NUL bytes and NOTIFY payloads of 8,000 bytes, a terminal acts on the
//! escape sequences a name could carry, and the worker's `--queue a,b` can only name a queue
//! without commas or surrounding whitespace.
//! - A **queue name** is 1 to [`MAX_QUEUE_NAME_BYTES`] bytes, without control characters (C0,
//!   DEL, C1, and the Unicode bidirectional controls), commas, or leading or trailing whitespace,
//!   and is not `*` (which `--queue` reads as every queue): [`queue_name_error`].
//! - A **task path** is at most [`MAX_TASK_PATH_BYTES`] bytes of at least two `::`-separated Rust
//!   identifiers (`my_app::tasks::send`): letters, digits (not first) and `_`, optionally `r#`:
//!   [`task_path_error`].
//!
//! Messages show the name escaped ([`escape_for_display`]), at most [`SHOWN_CHARS`] characters.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The longest queue name, in bytes (taskhost's limit; Django core sets none, django-tasks-db's
/// column holds 32 characters). Well under PostgreSQL's 8,000-byte NOTIFY payload, which carries
/// the queue name, and its ~2,700-byte btree index entries.
pub const MAX_QUEUE_NAME_BYTES: usize = 255;
/// The longest task path (`my_app::tasks::send`), in bytes.
pub const MAX_TASK_PATH_BYTES: usize = 1024;

/// How many characters of a faulty name a message shows (then `…`).
pub const SHOWN_CHARS: usize = 64;

/// The message for a queue name that breaks the rule, or `None` when it keeps it, e.g.
/// `Invalid queue name 'a\0b': a queue name must be 1 to 255 bytes without control characters,
/// commas or leading or trailing whitespace, and not '*' (it has the control character \0 at
/// byte offset 1).`
pub fn queue_name_error(name: &str) -> Option<String> {
    let fault = queue_name_fault(name)?;
    Some(format!(
        "Invalid queue name '{}': a queue name must be 1 to {MAX_QUEUE_NAME_BYTES} bytes \
         without control characters, commas or leading or trailing whitespace, and not '*' \
         ({fault}).",
        shown(name)
    ))
}

/// The message for a task path that breaks the rule, or `None` when it keeps it.
pub fn task_path_error(path: &str) -> Option<String> {
    let fault = task_path_fault(path)?;
    Some(format!(
        "Invalid task path '{}': a task path must be at least two '::'-separated Rust \
         identifiers (e.g. my_app::tasks::send), at most {MAX_TASK_PATH_BYTES} bytes ({fault}).",
        shown(path)
    ))
}

/// What is wrong with a queue name, if anything.
fn queue_name_fault(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_string());
    }
    if name.len() > MAX_QUEUE_NAME_BYTES {
        return Some(format!("it is {} bytes", name.len()));
    }
    // The common case, printable ASCII, in one pass over the bytes.
    let plain = name
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b',');
    if !plain {
        if let Some((at, c)) = name.char_indices().find(|&(_, c)| is_unsafe_to_print(c)) {
            return Some(format!(
                "it has the control character {} at byte offset {at}",
                escape_for_display(c.encode_utf8(&mut [0; 4]))
            ));
        }
        if name.contains(',') {
            return Some("it has a comma, which separates queue names in --queue".to_string());
        }
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

/// What is wrong with a task path, if anything.
fn task_path_fault(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("it is empty".to_string());
    }
    if path.len() > MAX_TASK_PATH_BYTES {
        return Some(format!("it is {} bytes", path.len()));
    }
    if is_plain_path(path.as_bytes()) {
        return None;
    }
    identifier_path_fault(path)
}

/// What is wrong with a path of at most [`MAX_TASK_PATH_BYTES`] bytes, if anything, by the whole
/// rule (Unicode and raw identifiers included).
fn identifier_path_fault(path: &str) -> Option<String> {
    let mut segments = 0;
    for (i, segment) in path.split("::").enumerate() {
        segments += 1;
        if segment.is_empty() {
            return Some(format!("segment {} is empty", i + 1));
        }
        if !is_identifier(segment) {
            return Some(format!(
                "segment {} '{}' is not an identifier",
                i + 1,
                shown(segment)
            ));
        }
    }
    (segments < 2).then(|| "it has no '::'".to_string())
}

/// The common case in one pass over the bytes (every enqueue checks its task's path): at least
/// two `::`-separated ASCII identifiers, none of them `_` alone. Anything else (Unicode or raw
/// identifiers, and every faulty path) is left to the full check, which also says what is wrong.
fn is_plain_path(path: &[u8]) -> bool {
    let (mut segments, mut len, mut lone_underscore) = (1, 0, false);
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        match PATH_BYTE[usize::from(b)] {
            LETTER => lone_underscore = len == 0 && b == b'_',
            DIGIT if len > 0 => lone_underscore = false,
            COLON if len > 0 && !lone_underscore && path.get(i + 1) == Some(&b':') => {
                (segments, len, i) = (segments + 1, 0, i + 2);
                continue;
            }
            _ => return false,
        }
        len += 1;
        i += 1;
    }
    segments >= 2 && len > 0 && !lone_underscore
}

/// The classes of [`PATH_BYTE`].
const OTHER: u8 = 0;
const LETTER: u8 = 1;
const DIGIT: u8 = 2;
const COLON: u8 = 3;

/// Each byte's class in a plain path: an ASCII letter or `_`, a digit, `:`, or anything else.
static PATH_BYTE: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => LETTER,
            b'0'..=b'9' => DIGIT,
            b':' => COLON,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// A Rust identifier: a letter or `_`, then letters, digits or `_` (Unicode letters and digits
/// too, as Rust allows), optionally raw (`r#`); not `_` alone.
fn is_identifier(text: &str) -> bool {
    let text = text.strip_prefix("r#").unwrap_or(text);
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first == '_' || first.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && text != "_"
}

/// Characters a terminal may act on, or that reorder the text around them: the control
/// characters (C0, DEL, C1) and the Unicode bidirectional controls.
pub fn is_unsafe_to_print(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` safe to print on a terminal: each character of [`is_unsafe_to_print`] in Rust's
/// `escape_debug` form (`\t`, `\n`, `\r`, `\0`, else `\u{1b}`), and `\` as `\\` so the
/// escapes are unambiguous; everything else (quotes included) as it is.
pub fn escape_for_display(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || is_unsafe_to_print(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if is_unsafe_to_print(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A name as messages show it: escaped, at most [`SHOWN_CHARS`] characters, then `…`.
pub fn shown(name: &str) -> String {
    match name.char_indices().nth(SHOWN_CHARS) {
        None => escape_for_display(name).into_owned(),
        Some((cut, _)) => format!("{}…", escape_for_display(&name[..cut])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass check of plain paths accepts exactly what the whole rule accepts, for every
    /// string of up to 7 characters over `a`, `_`, `1` and `:`.
    #[test]
    fn the_fast_path_check_agrees_with_the_whole_rule() {
        let alphabet = ['a', '_', '1', ':'];
        let mut checked = 0;
        for len in 1..=7u32 {
            for n in 0..4usize.pow(len) {
                let path: String = (0..len).map(|i| alphabet[n / 4usize.pow(i) % 4]).collect();
                assert_eq!(
                    is_plain_path(path.as_bytes()),
                    identifier_path_fault(&path).is_none(),
                    "{path:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 21_844);
    }

    #[test]
    fn display_escaping_leaves_printable_text_alone() {
        assert!(matches!(
            escape_for_display("emails 'é' \"x\""),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_for_display("a\u{1b}[31mred\t\\\r\n\0\u{85}\u{2066}"),
            "a\\u{1b}[31mred\\t\\\\\\r\\n\\0\\u{85}\\u{2066}"
        );
        // For control characters, the same text as Rust's own escape_debug.
        for c in ['\u{1b}', '\u{7f}', '\u{9b}', '\t', '\0', '\\'] {
            let text = c.to_string();
            assert_eq!(escape_for_display(&text), text.escape_debug().to_string());
        }
    }
}
