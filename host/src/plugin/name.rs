//! Backend names (`package.module.ClassName`) and the library file names they map to.
//!
//! A backend name is checked here, as text, before anything touches the filesystem: every
//! dot-separated segment must be an identifier (`[A-Za-z_][A-Za-z0-9_]*`), so a name can never
//! smuggle a path (`..`, `/`, `\`, NUL, …) into the library file name built from it.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::fmt;

/// What a segment must look like, for error messages.
const IDENTIFIER: &str = "[A-Za-z_][A-Za-z0-9_]*";

/// What a whole backend name looks like, for error messages.
const EXAMPLE: &str = "`package.module.ClassName`";

/// A parsed backend name: `a.b.c.ClassName` -> module path `a.b.c`, class `ClassName`.
///
/// The library that provides it is the module path with `.` replaced by `_`, with the platform's
/// library prefix and suffix: `liba_b_c.so` on Linux, `liba_b_c.dylib` on macOS, `a_b_c.dll` on
/// Windows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendName {
    module_path: String,
    class: String,
}

impl BackendName {
    /// The longest accepted backend name, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates `name` and splits it into module path and class.
    ///
    /// The error is a reason string (the caller wraps it in its own error type) that quotes the
    /// offending part, escaped so it is printable, and says what is allowed.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.len() > Self::MAX_LEN {
            return Err(format!(
                "invalid backend name: {} bytes, at most {}",
                name.len(),
                Self::MAX_LEN
            ));
        }
        if name.is_empty() {
            return Err(format!(
                "invalid backend name: the name is empty; a backend name looks like {EXAMPLE}"
            ));
        }
        let Some((module_path, class)) = name.rsplit_once('.') else {
            return Err(format!(
                "invalid backend name: '{}' has no module path; a backend name looks like \
                 {EXAMPLE}",
                name.escape_debug()
            ));
        };
        let segments: Vec<&str> = name.split('.').collect();
        let last = segments.len() - 1;
        // Empty segments first, so `a/../b.C` is reported for its `..`.
        if let Some(i) = segments.iter().position(|s| s.is_empty()) {
            let what = if i == 0 && !name.starts_with("..") {
                "leading '.'"
            } else if i == last && !name.ends_with("..") {
                "trailing '.'"
            } else {
                "'..'"
            };
            return Err(format!(
                "invalid backend name: empty segment ({what} in '{}'); every segment must be an \
                 identifier ({IDENTIFIER})",
                name.escape_debug()
            ));
        }
        for segment in &segments {
            if let Some(problem) = identifier_problem(segment) {
                return Err(format!(
                    "invalid backend name: segment '{}' is not an identifier ({IDENTIFIER}): \
                     {problem}",
                    segment.escape_debug()
                ));
            }
        }
        Ok(Self {
            module_path: module_path.to_owned(),
            class: class.to_owned(),
        })
    }

    /// The backend name a class argument stands for (`taskhost plugin test --class`,
    /// `taskhost_testkit::Conformance::new`), given the module path and classes the
    /// library under test declares in its manifest.
    ///
    /// `given` is either the full dotted name (`acme.memo.MemoBackend`, parsed as it is) or a
    /// class name alone (`MemoBackend`), completed with `module_path` when `classes` holds it.
    /// A class name the library does not export is an error that lists the classes on offer.
    pub fn complete(given: &str, module_path: &str, classes: &[String]) -> Result<Self, String> {
        if given.contains('.') {
            return Self::parse(given);
        }
        if let Some(problem) = identifier_problem(given) {
            return Err(format!(
                "invalid class name '{}': {problem}; give a class the library exports or a full \
                 backend name like {EXAMPLE}",
                given.escape_debug()
            ));
        }
        if given.is_empty() {
            return Self::parse(given);
        }
        if !classes.iter().any(|c| c == given) {
            let offer = match classes.first() {
                Some(first) => format!(
                    "it exports: {}; give one of them, alone or in full (e.g. '{module_path}.{first}')",
                    classes.join(", ")
                ),
                None => "it exports no class at all".to_string(),
            };
            return Err(format!(
                "module '{module_path}' has no class '{given}'; {offer}"
            ));
        }
        Self::parse(&format!("{module_path}.{given}"))
    }

    /// The module path: `a.b.c` for `a.b.c.ClassName`.
    pub fn module_path(&self) -> &str {
        &self.module_path
    }

    /// The class: `ClassName` for `a.b.c.ClassName`.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The whole name, as written in the config: `a.b.c.ClassName`.
    pub fn full(&self) -> String {
        format!("{}.{}", self.module_path, self.class)
    }

    /// The library's name without platform prefix and suffix: `a_b_c` for `a.b.c.ClassName`
    /// (what a plugin crate sets as `[lib] name`).
    pub fn library_stem(&self) -> String {
        self.module_path.replace('.', "_")
    }

    /// The library's file name on this platform: `liba_b_c.so` on Linux, `liba_b_c.dylib` on
    /// macOS, `a_b_c.dll` on Windows.
    pub fn library_file_name(&self) -> String {
        library_file_name(&self.library_stem())
    }
}

/// The platform's file name of the library whose stem (`[lib] name`) is `stem`:
/// `lib<stem>.so` on Linux, `lib<stem>.dylib` on macOS, `<stem>.dll` on Windows.
pub fn library_file_name(stem: &str) -> String {
    format!("{DLL_PREFIX}{stem}{DLL_SUFFIX}")
}

impl fmt::Display for BackendName {
    /// Writes the whole name, `a.b.c.ClassName`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module_path, self.class)
    }
}

/// Why `segment` (non-empty) is not an identifier, or `None` when it is one.
fn identifier_problem(segment: &str) -> Option<String> {
    let mut chars = segment.chars();
    let first = chars.next()?;
    if first.is_ascii_digit() {
        return Some(format!(
            "it starts with a digit ('{}')",
            first.escape_debug()
        ));
    }
    std::iter::once(first)
        .chain(chars)
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map(|c| {
            format!(
                "'{}' is not allowed (only ASCII letters, digits and '_')",
                c.escape_debug()
            )
        })
}

/// The library stem a library file name stands for, if it has the platform's library prefix and
/// suffix: `liba_b_c.so` -> `Some("a_b_c")` on Linux. The dots of the module path cannot be
/// recovered from it.
///
/// `None` also when the stem is one no backend name could map to: empty, or not an identifier
/// (`libfoo-bar.so`, `lib.so`).
pub fn library_stem_of(file_name: &str) -> Option<&str> {
    let stem = file_name
        .strip_prefix(DLL_PREFIX)?
        .strip_suffix(DLL_SUFFIX)?;
    if stem.is_empty() || identifier_problem(stem).is_some() {
        return None;
    }
    Some(stem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason(name: &str) -> String {
        BackendName::parse(name).expect_err(name)
    }

    #[test]
    fn splits_module_path_and_class() {
        let name = BackendName::parse("taskhost.backends.immediate.ImmediateBackend").unwrap();
        assert_eq!(name.module_path(), "taskhost.backends.immediate");
        assert_eq!(name.class(), "ImmediateBackend");
        assert_eq!(name.full(), "taskhost.backends.immediate.ImmediateBackend");
        assert_eq!(name.to_string(), name.full());
        assert_eq!(name.library_stem(), "taskhost_backends_immediate");
        assert_eq!(
            name.library_file_name(),
            format!("{DLL_PREFIX}taskhost_backends_immediate{DLL_SUFFIX}")
        );
    }

    #[test]
    fn two_segments_are_enough() {
        let name = BackendName::parse("_m.C_1").unwrap();
        assert_eq!(name.module_path(), "_m");
        assert_eq!(name.class(), "C_1");
        assert_eq!(name.library_stem(), "_m");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_file_name() {
        let name = BackendName::parse("a.b.c.ClassName").unwrap();
        assert_eq!(name.library_file_name(), "liba_b_c.so");
        assert_eq!(library_stem_of("liba_b_c.so"), Some("a_b_c"));
    }

    #[test]
    fn refuses_dot_dot() {
        let r = reason("..");
        assert!(r.contains("'..'"), "{r}");
        assert!(r.contains("empty segment"), "{r}");
        assert!(r.contains(IDENTIFIER), "{r}");
    }

    #[test]
    fn refuses_slash() {
        let r = reason("a/b.C");
        assert!(r.contains("segment 'a/b' is not an identifier"), "{r}");
        assert!(r.contains("'/' is not allowed"), "{r}");
        assert!(r.contains(IDENTIFIER), "{r}");
    }

    #[test]
    fn refuses_backslash() {
        let r = reason("a\\b.C");
        assert!(r.contains(r"segment 'a\\b' is not an identifier"), "{r}");
        assert!(r.contains(r"'\\' is not allowed"), "{r}");
    }

    #[test]
    fn refuses_path_traversal() {
        let r = reason("a/../b.C");
        assert!(r.contains("'..'"), "{r}");
        let r = reason("x.../etc/passwd.C");
        assert!(r.contains("'..'"), "{r}");
    }

    #[test]
    fn refuses_double_dot_inside() {
        let r = reason("a..C");
        assert_eq!(
            r,
            "invalid backend name: empty segment ('..' in 'a..C'); every segment must be an \
             identifier ([A-Za-z_][A-Za-z0-9_]*)"
        );
    }

    #[test]
    fn refuses_leading_dot() {
        let r = reason(".a.C");
        assert!(r.contains("empty segment (leading '.' in '.a.C')"), "{r}");
    }

    #[test]
    fn refuses_trailing_dot() {
        let r = reason("a.C.");
        assert!(r.contains("empty segment (trailing '.' in 'a.C.')"), "{r}");
    }

    #[test]
    fn refuses_nul_and_escapes_it() {
        let r = reason("a\0b.C");
        assert!(!r.contains('\0'), "{r:?}");
        assert!(r.contains(r"segment 'a\0b' is not an identifier"), "{r}");
        assert!(r.contains(r"'\0' is not allowed"), "{r}");
    }

    #[test]
    fn escapes_control_characters() {
        let r = reason("a\nb\x1b.C");
        assert!(!r.chars().any(char::is_control), "{r:?}");
        assert!(r.contains(r"'a\nb\u{1b}'"), "{r}");
    }

    #[test]
    fn refuses_too_long() {
        let name = format!("{}.C", "a".repeat(298));
        assert_eq!(name.len(), 300);
        assert_eq!(
            reason(&name),
            "invalid backend name: 300 bytes, at most 255"
        );
        let ok = format!("{}.C", "a".repeat(253));
        assert_eq!(ok.len(), BackendName::MAX_LEN);
        assert!(BackendName::parse(&ok).is_ok());
    }

    #[test]
    fn refuses_no_dot() {
        let r = reason("NoDot");
        assert!(r.contains("'NoDot'"), "{r}");
        assert!(r.contains("`package.module.ClassName`"), "{r}");
    }

    #[test]
    fn refuses_empty() {
        let r = reason("");
        assert!(r.contains("empty"), "{r}");
        assert!(r.contains("`package.module.ClassName`"), "{r}");
    }

    #[test]
    fn refuses_leading_digit() {
        let r = reason("1a.C");
        assert!(r.contains("segment '1a' is not an identifier"), "{r}");
        assert!(r.contains("starts with a digit ('1')"), "{r}");
        let r = reason("a.9C");
        assert!(r.contains("segment '9C'"), "{r}");
    }

    #[test]
    fn refuses_dash() {
        let r = reason("a-b.C");
        assert!(r.contains("segment 'a-b' is not an identifier"), "{r}");
        assert!(r.contains("'-' is not allowed"), "{r}");
    }

    #[test]
    fn refuses_space() {
        let r = reason("a b.C");
        assert!(r.contains("segment 'a b'"), "{r}");
        assert!(r.contains("' ' is not allowed"), "{r}");
        let r = reason(" a.C");
        assert!(r.contains("segment ' a'"), "{r}");
    }

    #[test]
    fn refuses_non_ascii() {
        let r = reason("café.C");
        assert!(r.contains("segment 'café' is not an identifier"), "{r}");
        assert!(r.contains("'é' is not allowed"), "{r}");
        assert!(r.contains("ASCII"), "{r}");
        // Invisible characters are escaped, not printed raw.
        let r = reason("a\u{200b}.C");
        assert!(r.contains(r"\u{200b}"), "{r}");
    }

    #[test]
    fn refuses_bad_class() {
        let r = reason("a.b.Class-Name");
        assert!(r.contains("segment 'Class-Name'"), "{r}");
    }

    fn classes(names: &[&str]) -> Vec<String> {
        names.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn a_class_name_alone_is_completed_with_the_declared_module_path() {
        let name =
            BackendName::complete("MemoBackend", "acme.memo", &classes(&["MemoBackend"])).unwrap();
        assert_eq!(name.full(), "acme.memo.MemoBackend");
        assert_eq!(name.library_stem(), "acme_memo");
    }

    #[test]
    fn a_full_name_is_taken_as_given() {
        let name = BackendName::complete("acme.memo.MemoBackend", "other.path", &[]).unwrap();
        assert_eq!(name.full(), "acme.memo.MemoBackend");
        assert_eq!(
            BackendName::complete("a..C", "acme.memo", &[]).unwrap_err(),
            reason("a..C")
        );
    }

    #[test]
    fn a_class_name_the_library_does_not_export_lists_those_it_does() {
        let err = BackendName::complete(
            "NoteBackend",
            "acme.memo",
            &classes(&["MemoBackend", "ListBackend"]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "module 'acme.memo' has no class 'NoteBackend'; it exports: MemoBackend, ListBackend; \
             give one of them, alone or in full (e.g. 'acme.memo.MemoBackend')"
        );
        assert_eq!(
            BackendName::complete("NoteBackend", "acme.memo", &[]).unwrap_err(),
            "module 'acme.memo' has no class 'NoteBackend'; it exports no class at all"
        );
    }

    #[test]
    fn a_class_name_that_is_not_an_identifier_is_refused() {
        let err = BackendName::complete("Memo-Backend", "acme.memo", &classes(&["MemoBackend"]))
            .unwrap_err();
        assert_eq!(
            err,
            "invalid class name 'Memo-Backend': '-' is not allowed (only ASCII letters, digits \
             and '_'); give a class the library exports or a full backend name like \
             `package.module.ClassName`"
        );
        assert_eq!(
            BackendName::complete("", "acme.memo", &[]).unwrap_err(),
            reason("")
        );
    }

    #[test]
    fn stem_of_file_names() {
        let file = |stem: &str| format!("{DLL_PREFIX}{stem}{DLL_SUFFIX}");
        assert_eq!(library_stem_of(&file("a_b_c")), Some("a_b_c"));
        assert_eq!(library_stem_of(&file("_x")), Some("_x"));
        assert_eq!(library_stem_of(&file("")), None);
        assert_eq!(library_stem_of(&file("foo-bar")), None);
        assert_eq!(library_stem_of(&file("1abc")), None);
        assert_eq!(library_stem_of(&format!("{}.txt", file("abc"))), None);
        assert_eq!(library_stem_of("abc.txt"), None);
        assert_eq!(library_stem_of(""), None);
        if cfg!(not(windows)) {
            assert_eq!(library_stem_of(&format!("abc{DLL_SUFFIX}")), None);
        }
    }

    fn identifier() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,12}"
    }

    fn valid_name() -> impl Strategy<Value = String> {
        proptest::collection::vec(identifier(), 2..6).prop_map(|segments| segments.join("."))
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = BackendName::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_name_like_text(s in "[A-Za-z0-9_./\\\\ \\x00-]{0,40}") {
            match BackendName::parse(&s) {
                Ok(name) => prop_assert_eq!(name.full(), s),
                Err(r) => {
                    prop_assert!(r.starts_with("invalid backend name: "));
                    prop_assert!(!r.contains('\0'));
                }
            }
        }

        #[test]
        fn errors_are_printable(s in any::<String>()) {
            if let Err(r) = BackendName::parse(&s) {
                prop_assert!(!r.chars().any(char::is_control), "{:?}", r);
            }
        }

        #[test]
        fn full_round_trips(s in valid_name()) {
            let name = BackendName::parse(&s).unwrap();
            prop_assert_eq!(name.full(), s.clone());
            prop_assert_eq!(BackendName::parse(&name.full()).unwrap(), name.clone());
            prop_assert_eq!(format!("{}.{}", name.module_path(), name.class()), s);
            let (file, stem) = (name.library_file_name(), name.library_stem());
            prop_assert_eq!(library_stem_of(&file), Some(stem.as_str()));
        }

        #[test]
        fn accepted_names_map_to_plain_file_names(s in any::<String>()) {
            if let Ok(name) = BackendName::parse(&s) {
                let file = name.library_file_name();
                prop_assert!(!file.contains(['/', '\\', '\0']));
                prop_assert!(!file.contains(".."));
            }
        }
    }
}
