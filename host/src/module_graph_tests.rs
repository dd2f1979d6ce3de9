//! The host library's modules form layers: no module imports, directly or through others, a
//! module that imports it. Read from the sources: every `crate::…` and `super::…` path outside
//! `#[cfg(test)]` code and comments is an edge to the module it names (a name a directory's
//! `mod.rs` re-exports from a submodule counts as that submodule). A directory module and its
//! own submodules may refer to each other (that is one room); siblings and everything else may
//! not form a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every module file under `src/` (but `lib.rs` and `*_tests.rs`), by module path, with its
/// non-test, non-comment text.
fn modules(dir: &Path, prefix: &Module, out: &mut BTreeMap<Module, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut inner = prefix.clone();
            inner.push(name);
            modules(&path, &inner, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs")
            || name.ends_with("_tests")
            || (prefix.is_empty() && name == "lib")
        {
            continue;
        }
        let mut module = prefix.clone();
        if name != "mod" {
            module.push(name);
        }
        out.insert(module, code_of(&std::fs::read_to_string(&path).unwrap()));
    }
}

/// The text before the first `#[cfg(test)]`, without comment lines and trailing comments.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths after each `crate::` / `super::` in `code`, resolved to absolute module paths
/// (segments, the module part and what follows it alike).
fn paths(code: &str, module: &Module) -> Vec<Module> {
    let mut found = Vec::new();
    for anchor in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(anchor) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + anchor.len()..];
            if before.is_some_and(|c| is_ident(c) || c == '$') {
                continue;
            }
            // `super` of `d/e.rs` (module `d::e`) and of `d/mod.rs` (module `d`) alike is the
            // module path without its last segment.
            let base: Module = if anchor == "crate::" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            for segments in expand(rest) {
                let mut path = base.clone();
                path.extend(segments);
                found.push(path);
            }
        }
    }
    found
}

/// The paths `text` starts with: `a::b::C` is one, `a::{b::C, d, self}` three (`a::b::C`,
/// `a::d`, `a`), nested groups alike.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut tail = text;
    loop {
        if let Some(group) = tail.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(at, _)| at);
            let (mut items, mut start, mut depth) = (Vec::new(), 0, 0);
            for (at, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&group[start..at]);
                        start = at + 1;
                    }
                    _ => {}
                }
            }
            items.push(&group[start..end]);
            return items
                .into_iter()
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .flat_map(|item| {
                    expand(item).into_iter().map(|inner| {
                        let mut path = segments.clone();
                        path.extend(inner.into_iter().filter(|s| s != "self"));
                        path
                    })
                })
                .collect();
        }
        let ident: String = tail.chars().take_while(|&c| is_ident(c)).collect();
        if ident.is_empty() {
            break;
        }
        tail = &tail[ident.len()..];
        segments.push(ident);
        match tail.strip_prefix("::") {
            Some(more) => tail = more,
            None => break,
        }
    }
    vec![segments]
}

/// `pub use sub::{A, B};` lines of a directory's `mod.rs`: name → submodule.
fn reexports(code: &str, children: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in code.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((sub, items)) = rest.split_once("::") else {
            continue;
        };
        if !children.contains(sub) {
            continue;
        }
        for item in items
            .split(|c: char| !is_ident(c))
            .filter(|s| !s.is_empty())
        {
            map.insert(item.to_string(), sub.to_string());
        }
    }
    map
}

/// The module graph of `src/`: module → the modules it refers to.
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = BTreeMap::new();
    modules(src, &Vec::new(), &mut files);
    let dirs: BTreeSet<Module> = files
        .keys()
        .filter(|m| files.keys().any(|o| o.len() > m.len() && o.starts_with(m)))
        .cloned()
        .collect();
    let resolve = |path: &Module| -> Option<Module> {
        let mut best = (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| files.contains_key(prefix))?;
        if dirs.contains(&best) && path.len() > best.len() {
            let children = files
                .keys()
                .filter(|m| m.len() == best.len() + 1 && m.starts_with(&best))
                .map(|m| m.last().unwrap().clone())
                .collect();
            if let Some(sub) = reexports(&files[&best], &children).get(&path[best.len()]) {
                best.push(sub.clone());
            }
        }
        Some(best)
    };
    let mut graph = BTreeMap::new();
    for (module, code) in &files {
        let edges = paths(code, module)
            .iter()
            .filter_map(resolve)
            .filter(|to| !to.starts_with(module) && !module.starts_with(to))
            .collect();
        graph.insert(module.clone(), edges);
    }
    graph
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        done: &mut BTreeSet<Module>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = stack.iter().position(|m| m == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn show(cycle: &[Module]) -> String {
    cycle
        .iter()
        .map(|m| m.join("::"))
        .collect::<Vec<_>>()
        .join(" → ")
}

#[test]
fn module_graph_is_acyclic() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.len() > 20, "{:?}", graph.keys());
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the host's modules import each other in a circle: {}",
            show(&cycle)
        );
    }
}

#[test]
fn the_check_finds_a_cycle() {
    let dir = std::env::temp_dir().join(format!("taskhost-module-graph-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("d")).unwrap();
    let write = |file: &str, text: &str| std::fs::write(dir.join(file), text).unwrap();
    write("lib.rs", "mod a; mod b; mod c; mod d;");
    write("a.rs", "use crate::b::B;\n#[cfg(test)]\nuse crate::c::C;");
    write(
        "b.rs",
        "// crate::a::A in a comment is no edge\npub struct B;",
    );
    write("c.rs", "use crate::{d::{self, D}, a::A as _};");
    write("d/mod.rs", "mod e; mod f;\npub use e::D;");
    write("d/e.rs", "use super::f::F; pub struct D;");
    write("d/f.rs", "pub struct F; fn g() -> crate::a::A { todo!() }");
    let layered = graph(&dir);
    let module = |s: &str| s.split("::").map(String::from).collect::<Module>();
    assert_eq!(layered[&module("a")], BTreeSet::from([module("b")]));
    assert_eq!(
        layered[&module("c")],
        BTreeSet::from([module("a"), module("d"), module("d::e")])
    );
    assert!(find_cycle(&layered).is_none(), "{layered:?}");
    // b → c closes a → b → c → a (and a → b → c → d::e → d::f → a).
    write("b.rs", "use crate::c::C;");
    let cycle = find_cycle(&graph(&dir)).expect("a cycle");
    assert_eq!(show(&cycle), "a → b → c → a");
    write("c.rs", "use crate::d::D;");
    let cycle = find_cycle(&graph(&dir)).expect("a cycle");
    assert_eq!(show(&cycle), "a → b → c → d::e → d::f → a");
    let _ = std::fs::remove_dir_all(&dir);
}
