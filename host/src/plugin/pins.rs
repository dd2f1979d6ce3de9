//! Integrity pins: the SHA-256 digest each plugin file must have (`[plugin_pins]` in
//! `tasks.toml`, decision 009).
//!
//! ```toml
//! [plugin_pins]
//! "libtaskhost_backends_database.so" = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```
//!
//! When the table is present, every plugin file the host opens must be listed under its file
//! name (the entry's name in the plugin dir) and have that digest, or it is refused before the
//! dynamic loader sees it. The file is hashed through one open handle; its device, inode, size,
//! modification and change times are compared before and after the library is opened, so a file
//! replaced or rewritten in between is refused too (see docs/plugin-trust.md for what this does
//! not cover).

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// The text before the hex digits of a pin.
const PREFIX: &str = "sha256:";

/// A SHA-256 digest, written `sha256:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PinDigest([u8; 32]);

impl PinDigest {
    /// Parses `sha256:<64 hex digits>` (upper- or lowercase hex); the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(hex) = text.strip_prefix(PREFIX) else {
            return Err(format!(
                "a pin must start with '{PREFIX}' (the only digest supported), e.g. \
                 \"{PREFIX}{}\"",
                "0".repeat(64)
            ));
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "a pin must be '{PREFIX}' followed by 64 hex digits, found {} character(s) \
                 after '{PREFIX}'{}",
                hex.chars().count(),
                if hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    ""
                } else {
                    " that are not all hex digits"
                }
            ));
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|e| format!("a pin's hex digits do not parse: {e}"))?;
        }
        Ok(Self(bytes))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for PinDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PinDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The `[plugin_pins]` table: library file name → the digest that file must have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginPins {
    pins: BTreeMap<String, PinDigest>,
}

impl PluginPins {
    /// No pins (with pins configured, that refuses every plugin file).
    pub fn new() -> Self {
        Self::default()
    }

    /// Pin `file_name` (e.g. `libacme_redis.so`) to `digest`.
    pub fn insert(&mut self, file_name: impl Into<String>, digest: PinDigest) {
        self.pins.insert(file_name.into(), digest);
    }

    /// The pin of `file_name`, if it has one.
    pub fn get(&self, file_name: &str) -> Option<&PinDigest> {
        self.pins.get(file_name)
    }

    /// The pins, by file name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PinDigest)> {
        self.pins.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many files are pinned.
    pub fn len(&self) -> usize {
        self.pins.len()
    }

    /// Whether no file is pinned.
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }

    /// The table as `tasks.toml` text: a `[plugin_pins]` header and one line per file.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("[plugin_pins]\n");
        for (file, digest) in &self.pins {
            // JSON string escapes are valid TOML basic-string escapes.
            let key = serde_json::to_string(file).unwrap_or_else(|_| format!("{file:?}"));
            out.push_str(&format!("{key} = \"{digest}\"\n"));
        }
        out
    }
}

/// The dotted config key of the pin for `file_name`, as messages name it.
pub(crate) fn pin_key(file_name: &str) -> String {
    let key = serde_json::to_string(file_name).unwrap_or_else(|_| format!("{file_name:?}"));
    format!("plugin_pins.{key}")
}

/// What identifies the file that was hashed: compared again once the library is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileIdentity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                dev: metadata.dev(),
                ino: metadata.ino(),
                len: metadata.len(),
                mtime: (metadata.mtime(), metadata.mtime_nsec()),
                ctime: (metadata.ctime(), metadata.ctime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let since = |t: std::io::Result<std::time::SystemTime>| {
                t.ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or((0, 0), |d| {
                        (d.as_secs() as i64, i64::from(d.subsec_nanos()))
                    })
            };
            Self {
                dev: 0,
                ino: 0,
                len: metadata.len(),
                mtime: since(metadata.modified()),
                ctime: since(metadata.created()),
            }
        }
    }
}

/// A file whose digest matched its pin, and how to tell it is still the same file.
#[derive(Debug)]
pub(crate) struct Verified {
    path: std::path::PathBuf,
    identity: FileIdentity,
    /// The digest the file had.
    pub(crate) digest: PinDigest,
}

impl Verified {
    /// Whether the path still names the file that was hashed, unchanged (same device, inode,
    /// size, modification and change time); the error names the file.
    pub(crate) fn still_the_same(&self) -> Result<(), String> {
        let now = std::fs::metadata(&self.path).map(|m| FileIdentity::of(&m));
        match now {
            Ok(identity) if identity == self.identity => Ok(()),
            Ok(_) => Err(format!(
                "'{}' changed while it was being opened (after its digest was checked against \
                 its pin); refusing it — make sure nothing writes to the plugin dir while hosts \
                 load plugins, then try again",
                self.path.display()
            )),
            Err(e) => Err(format!(
                "cannot inspect '{}' again after opening it: {e}",
                self.path.display()
            )),
        }
    }
}

/// The digest of the file at `path`, read through one handle, and that handle's identity.
fn hash_file(path: &Path) -> Result<(PinDigest, FileIdentity), String> {
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read '{shown}': {e}"))?;
    let before = file
        .metadata()
        .map_err(|e| format!("cannot inspect '{shown}': {e}"))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read '{shown}': {e}")),
        }
    }
    let after = file
        .metadata()
        .map_err(|e| format!("cannot inspect '{shown}': {e}"))?;
    let identity = FileIdentity::of(&before);
    if FileIdentity::of(&after) != identity {
        return Err(format!(
            "'{shown}' changed while its digest was being computed; refusing it — make sure \
             nothing writes to the plugin dir while hosts load plugins, then try again"
        ));
    }
    Ok((PinDigest(hasher.finalize().into()), identity))
}

/// The SHA-256 digest of the file at `path` (what `taskhost plugin pin` writes).
pub fn digest_file(path: &Path) -> Result<PinDigest, String> {
    hash_file(path).map(|(digest, _)| digest)
}

/// Checks the file at `path`, listed in its plugin dir as `file_name`, against `pins`: refused
/// when it has no pin or another digest. The reasons name the file, both digests and the key.
pub(crate) fn verify(pins: &PluginPins, file_name: &str, path: &Path) -> Result<Verified, String> {
    let (digest, identity) = hash_file(path)?;
    let key = pin_key(file_name);
    match pins.get(file_name) {
        Some(expected) if *expected == digest => Ok(Verified {
            path: path.to_path_buf(),
            identity,
            digest,
        }),
        Some(expected) => Err(format!(
            "'{}' does not match its pin: {key} expects {expected}, but the file has {digest}; \
             refusing to open it — if the file was replaced on purpose, update {key} (taskhost \
             plugin pin --write)",
            path.display()
        )),
        None => Err(format!(
            "'{}' has no pin, and [plugin_pins] is configured, so every plugin file needs one; \
             refusing to open it — if the file is trusted, add {key} = \"{digest}\" (taskhost \
             plugin pin --write)",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_known_input() {
        assert_eq!(PinDigest::of(b"").to_string(), EMPTY);
        assert_eq!(
            PinDigest::of(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_round_trips_and_accepts_uppercase_hex() {
        assert_eq!(PinDigest::parse(EMPTY).unwrap().to_string(), EMPTY);
        let upper = format!("sha256:{}", EMPTY[7..].to_uppercase());
        assert_eq!(PinDigest::parse(&upper).unwrap().to_string(), EMPTY);
    }

    #[test]
    fn parse_refuses_bad_pins() {
        let e = PinDigest::parse(&EMPTY[7..]).unwrap_err();
        assert!(e.starts_with("a pin must start with 'sha256:'"), "{e}");
        let e = PinDigest::parse("sha256:abc").unwrap_err();
        assert_eq!(
            e,
            "a pin must be 'sha256:' followed by 64 hex digits, found 3 character(s) after \
             'sha256:'"
        );
        let e = PinDigest::parse(&format!("sha256:{}", "g".repeat(64))).unwrap_err();
        assert!(e.ends_with("that are not all hex digits"), "{e}");
        let e = PinDigest::parse(&format!("sha256:{}", "é".repeat(32))).unwrap_err();
        assert!(e.ends_with("that are not all hex digits"), "{e}");
    }

    #[test]
    fn verify_accepts_the_pinned_file_and_refuses_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libacme_x.so");
        std::fs::write(&path, b"abc").unwrap();
        let mut pins = PluginPins::new();
        pins.insert("libacme_x.so", PinDigest::of(b"abc"));
        let verified = verify(&pins, "libacme_x.so", &path).unwrap();
        verified.still_the_same().unwrap();

        // A different size: timestamps alone have the kernel's coarse granularity.
        std::fs::write(&path, b"abcd").unwrap();
        let err = verify(&pins, "libacme_x.so", &path).unwrap_err();
        assert_eq!(
            err,
            format!(
                "'{}' does not match its pin: plugin_pins.\"libacme_x.so\" expects {}, but the \
                 file has {}; refusing to open it — if the file was replaced on purpose, update \
                 plugin_pins.\"libacme_x.so\" (taskhost plugin pin --write)",
                path.display(),
                PinDigest::of(b"abc"),
                PinDigest::of(b"abcd")
            )
        );
        // Rewritten after the check: the identity differs.
        assert!(verified
            .still_the_same()
            .unwrap_err()
            .contains("changed while it was being opened"));

        let err = verify(&PluginPins::new(), "libacme_x.so", &path).unwrap_err();
        assert!(
            err.contains("has no pin, and [plugin_pins] is configured"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "add plugin_pins.\"libacme_x.so\" = \"{}\"",
                PinDigest::of(b"abcd")
            )),
            "{err}"
        );
    }

    #[test]
    fn to_toml_lists_every_pin() {
        let mut pins = PluginPins::new();
        pins.insert("libb.so", PinDigest::of(b"b"));
        pins.insert("liba.so", PinDigest::of(b"a"));
        let text = pins.to_toml();
        assert_eq!(
            text,
            format!(
                "[plugin_pins]\n\"liba.so\" = \"{}\"\n\"libb.so\" = \"{}\"\n",
                PinDigest::of(b"a"),
                PinDigest::of(b"b")
            )
        );
        let parsed: toml::Table = text.parse().unwrap();
        assert_eq!(parsed["plugin_pins"].as_table().unwrap().len(), 2);
    }
}
