//! About 1,000 generated bad plugin files, each loaded through the host: the process never
//! crashes and every one is an `InvalidTaskBackend` whose message names the file.
//!
//! The files are generated deterministically (a seeded xorshift): truncated copies of a real
//! plugin, copies with bytes flipped in the ELF header and the section header table (never in
//! code: a corrupted but loadable library would run corrupted code), random bytes, an empty
//! file, hand-written headers for other classes, byte orders and architectures, a real shared
//! library without the plugin symbol, symlinks leading out of the plugin dir, and files
//! writable by other users. Every file has its own name and module path
//! (`acme.bad_<n>.BadBackend` → `libacme_bad_<n>.so`), since a library path is opened once per
//! process.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use taskhost::{Error, TaskBackends};
use taskhost_e2e::{config_text, config_with, plugin_file, stripped_plugin_bytes, Rng};

/// Generates, loads and tallies the bad files.
struct Suite {
    dir: tempfile::TempDir,
    next: usize,
    /// Files generated, by kind.
    kinds: BTreeMap<&'static str, usize>,
    /// Refusals, by the reason's key phrase.
    reasons: BTreeMap<&'static str, usize>,
}

const REASONS: [&str; 9] = [
    "is a dangling symlink",
    "is empty (0 bytes)",
    "is not a loadable shared library",
    "is a shared library but not a taskhost plugin",
    "declares module path",
    "is a symlink that leads outside its plugin dir",
    "is writable by other users",
    "is not a regular file",
    "abi_stable",
];

impl Suite {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            next: 0,
            kinds: BTreeMap::new(),
            reasons: BTreeMap::new(),
        }
    }

    /// Makes one file with `make` at its unique path, loads it, checks and tallies the error,
    /// then removes the file (copies of a plugin are large).
    fn case(&mut self, kind: &'static str, make: impl FnOnce(&Path)) {
        let n = self.next;
        self.next += 1;
        let file_name = format!("libacme_bad_{n}.so");
        let path = self.dir.path().join(&file_name);
        make(&path);
        let backend = format!("acme.bad_{n}.BadBackend");
        let config = config_with(&config_text(self.dir.path(), "bad", &backend, ""));
        match TaskBackends::new(config).get("bad") {
            Err(Error::InvalidTaskBackend { message, .. }) => {
                assert!(
                    message.contains(&file_name),
                    "{kind} #{n}: the message does not name the file: {message}"
                );
                let reason = REASONS
                    .iter()
                    .find(|r| message.contains(*r))
                    .unwrap_or_else(|| panic!("{kind} #{n}: unexpected reason: {message}"));
                *self.reasons.entry(reason).or_default() += 1;
            }
            Err(other) => panic!("{kind} #{n}: expected InvalidTaskBackend, got {other:?}"),
            Ok(b) => panic!("{kind} #{n}: a bad file loaded: {b:?}"),
        }
        *self.kinds.entry(kind).or_default() += 1;
        let _ = fs::remove_file(&path);
    }
}

fn u16_at(b: &[u8], i: usize) -> usize {
    usize::from(u16::from_le_bytes([b[i], b[i + 1]]))
}

fn u64_at(b: &[u8], i: usize) -> usize {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(x) as usize
}

/// A minimal ELF header by hand: `class` 1 (32-bit) or 2 (64-bit), `data` 1 (LE) or 2 (BE).
fn elf_header(class: u8, data: u8, kind: u16, machine: u16) -> Vec<u8> {
    let size = if class == 1 { 52 } else { 64 };
    let mut h = vec![0u8; size];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = class;
    h[5] = data;
    h[6] = 1;
    let put16 = |h: &mut [u8], i: usize, v: u16| {
        let b = if data == 2 {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        h[i..i + 2].copy_from_slice(&b);
    };
    put16(&mut h, 16, kind);
    put16(&mut h, 18, machine);
    h[20] = if data == 2 { 0 } else { 1 };
    h[23] = if data == 2 { 1 } else { 0 };
    // e_ehsize
    put16(&mut h, if class == 1 { 40 } else { 52 }, size as u16);
    // Padding to a plausible small file.
    h.resize(4096, 0);
    h
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    fs::write(path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    target_endian = "little"
))]
#[test]
fn a_thousand_bad_plugin_files_are_refused_and_none_crashes() {
    let work = tempfile::tempdir().unwrap();
    let real = stripped_plugin_bytes("taskhost_backends_immediate", work.path());
    let len = real.len();
    let mut rng = Rng::new(0x7a5c_0ffe_e15b_ad00);
    let mut suite = Suite::new();

    // Truncations: every length of the ELF header, then lengths spread over the whole file.
    for l in 0..=64 {
        suite.case("truncated", |p| write_mode(p, &real[..l], 0o644));
    }
    for i in 0..235 {
        let l = if i % 2 == 0 {
            (len as u64 * i / 235) as usize
        } else {
            rng.below(len as u64) as usize
        };
        suite.case("truncated", |p| write_mode(p, &real[..l.max(1)], 0o644));
    }

    // Bytes flipped in the ELF header only.
    for _ in 0..250 {
        let mut bytes = real.clone();
        for _ in 0..=rng.below(3) {
            let i = rng.below(64) as usize;
            bytes[i] ^= rng.byte() | 1;
        }
        suite.case("ELF header flipped", |p| write_mode(p, &bytes, 0o644));
    }

    // Bytes flipped in the section header table, which the dynamic loader does not read.
    let (shoff, shentsize, shnum) = (u64_at(&real, 40), u16_at(&real, 58), u16_at(&real, 60));
    assert!(shoff + shentsize * shnum <= len);
    for _ in 0..200 {
        let mut bytes = real.clone();
        for _ in 0..=rng.below(8) {
            let i = shoff + rng.below((shentsize * shnum) as u64) as usize;
            bytes[i] ^= rng.byte() | 1;
        }
        suite.case("section headers flipped", |p| write_mode(p, &bytes, 0o644));
    }

    // Random bytes, some starting with the ELF magic.
    for i in 0..206 {
        let mut bytes: Vec<u8> = (0..1 + rng.below(8192)).map(|_| rng.byte()).collect();
        if i % 3 == 0 && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(b"\x7fELF");
        }
        suite.case("random bytes", |p| write_mode(p, &bytes, 0o644));
    }
    suite.case("empty", |p| write_mode(p, b"", 0o644));

    // Hand-written headers: 32-bit, big-endian, other architectures, not a shared object.
    let headers = [
        elf_header(1, 1, 3, 3),   // 32-bit x86 shared object
        elf_header(1, 1, 3, 40),  // 32-bit ARM
        elf_header(1, 2, 3, 8),   // 32-bit big-endian MIPS
        elf_header(2, 2, 3, 21),  // 64-bit big-endian PowerPC
        elf_header(2, 2, 3, 22),  // 64-bit big-endian s390
        elf_header(2, 1, 3, 183), // 64-bit AArch64
        elf_header(2, 1, 3, 243), // 64-bit RISC-V
        elf_header(2, 1, 3, 62),  // 64-bit x86-64, but no program headers
        elf_header(2, 1, 2, 62),  // an executable, not a shared object
        elf_header(2, 1, 1, 62),  // a relocatable object
        elf_header(2, 1, 4, 62),  // a core file
        elf_header(3, 1, 3, 62),  // an invalid class
    ];
    for h in &headers {
        suite.case("other ELF header", |p| write_mode(p, h, 0o644));
    }

    // A real shared library without the plugin symbol (built once).
    let source = work.path().join("plain.c");
    fs::write(&source, "int plain_function(void) { return 42; }\n").unwrap();
    let plain = work.path().join("libplain.so");
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&plain)
        .arg(&source)
        .status()
        .expect("a C compiler (cc) is needed to build a non-plugin shared library");
    assert!(status.success());
    let plain = fs::read(&plain).unwrap();
    suite.case("shared library, no plugin symbol", |p| {
        write_mode(p, &plain, 0o755)
    });

    // Symlinks leading out of the plugin dir, to good and bad files.
    let outside: Vec<PathBuf> = vec![
        plugin_file("taskhost_backends_dummy"),
        plugin_file("taskhost_backends_immediate"),
        work.path().join("plain.c"),
        work.path().join("missing.so"),
        PathBuf::from("/"),
    ];
    for _ in 0..4 {
        for target in &outside {
            suite.case("symlink out of the dir", |p| {
                std::os::unix::fs::symlink(target, p).unwrap()
            });
        }
    }

    // Files writable by other users (checked before anything is opened).
    for mode in [
        0o666, 0o646, 0o664, 0o777, 0o775, 0o757, 0o622, 0o602, 0o620, 0o672,
    ] {
        suite.case("writable by others", |p| write_mode(p, &plain, mode));
    }

    let total: usize = suite.kinds.values().sum();
    eprintln!("bad plugin files by kind: {:#?}", suite.kinds);
    eprintln!("refusals by reason: {:#?}", suite.reasons);
    assert_eq!(total, 1000);
    assert_eq!(suite.reasons.values().sum::<usize>(), total);
    let count = |k: &str| suite.kinds[k];
    assert_eq!(count("truncated"), 300);
    assert_eq!(count("ELF header flipped"), 250);
    assert_eq!(count("section headers flipped"), 200);
    assert_eq!(count("random bytes"), 206);
    assert_eq!(count("other ELF header"), headers.len());
    assert_eq!(count("symlink out of the dir"), 20);
    assert_eq!(count("writable by others"), 10);
    let reason = |r: &str| suite.reasons.get(r).copied().unwrap_or(0);
    assert_eq!(reason("is a symlink that leads outside its plugin dir"), 16);
    assert_eq!(reason("is a dangling symlink"), 4);
    assert_eq!(reason("is writable by other users"), 10);
    assert_eq!(reason("is a shared library but not a taskhost plugin"), 1);
}
