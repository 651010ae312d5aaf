//! Keeps the layering of the crate docs (`lib.rs`): reads every file under
//! `src/`, builds the graph of `crate::<module>` references between
//! top-level modules, and fails naming the cycle if there is one, or the
//! module other than `serve` (which wires the server together) that uses
//! an edge (`api`, `realtime`).
//!
//! Test code (`#[cfg(test)] mod ...`, inline or in its own file) is left
//! out: tests may use any fixture. A reference must name its module
//! (`crate::state::AppState`, not a re-export such as `crate::AppState`),
//! so that every dependency is visible here; the test says so when one
//! does not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::testing::source::{Literals, is_ident_byte, strip_comments};

/// The server's two edges, which only [`WIRING`] may use.
const EDGES: [&str; 2] = ["api", "realtime"];
/// The module that starts the server: it attaches the edges.
const WIRING: &str = "serve";

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `code` (comments stripped, literals blanked) without its test modules:
/// inline `#[cfg(test)] mod x { .. }` blocks are cut out, and the names of
/// `#[cfg(test)] mod x;` (test modules in their own file) are returned.
fn without_tests(code: &str) -> (String, Vec<String>) {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut files = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = rest[at + MARK.len()..].trim_start();
        let Some(item) = after.strip_prefix("mod ") else {
            // Another kind of test-only item: kept (the attribute goes).
            rest = &rest[at + MARK.len()..];
            continue;
        };
        let name_len = item.bytes().take_while(|&c| is_ident_byte(c)).count();
        let name = &item[..name_len];
        let tail = item[name_len..].trim_start();
        if let Some(next) = tail.strip_prefix(';') {
            files.push(name.to_owned());
            rest = next;
        } else if tail.starts_with('{') {
            rest = &tail[block_len(tail)..];
        } else {
            panic!("`#[cfg(test)] mod {name}` is followed by neither `;` nor a block");
        }
    }
    out.push_str(rest);
    (out, files)
}

/// The length of the `{ .. }` block `code` starts with.
fn block_len(code: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in code.bytes().enumerate() {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces in a test module");
}

/// The first path segment of every `crate::` path in `code`, including
/// each item of a `crate::{a, b::c}` group and `$crate::` in macros.
fn crate_refs(code: &str) -> Vec<String> {
    let b = code.as_bytes();
    let mut refs = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find("crate::") {
        let at = from + pos;
        from = at + "crate::".len();
        if at > 0 && is_ident_byte(b[at - 1]) {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..block_len(rest) - 2];
            let mut depth = 0usize;
            let mut item_start = 0;
            for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        push_first_segment(&inner[item_start..i], &mut refs);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            push_first_segment(rest, &mut refs);
        }
    }
    refs
}

fn push_first_segment(path: &str, refs: &mut Vec<String>) {
    let path = path.trim_start();
    let len = path.bytes().take_while(|&c| is_ident_byte(c)).count();
    if len > 0 {
        refs.push(path[..len].to_owned());
    }
}

/// The `.rs` files of a module: `src/NAME.rs`, or every file under
/// `src/NAME/`, without the files of its test modules.
fn module_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    let mut test_files = BTreeSet::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files.extend(module_files(&entry));
        } else if entry.extension().is_some_and(|x| x == "rs") {
            files.push(entry);
        }
    }
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        let (_, tests) = without_tests(&strip_comments(&text, Literals::Blank));
        let dir = file.parent().expect("a file has a folder");
        for name in tests {
            test_files.insert(dir.join(format!("{name}.rs")));
            test_files.insert(dir.join(name));
        }
    }
    files.retain(|f| !test_files.iter().any(|t| f.starts_with(t)));
    files
}

/// Every top-level module (but the test-only ones) and the modules it
/// references; panics on a `crate::NAME` that is not a module.
fn graph() -> Graph {
    let src = src_dir();
    let root = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let (_, test_modules) = without_tests(&strip_comments(&root, Literals::Blank));
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src/") {
        let path = entry.expect("directory entry").path();
        let name = match path.file_stem().and_then(|s| s.to_str()) {
            Some(name) if path.is_dir() || path.extension().is_some_and(|x| x == "rs") => {
                name.to_owned()
            }
            _ => continue,
        };
        if name == "lib" || name == "main" || test_modules.contains(&name) {
            continue;
        }
        modules.insert(name, path);
    }
    let mut graph = Graph::new();
    for (name, path) in &modules {
        let used = graph.entry(name.clone()).or_default();
        for file in module_files(path) {
            let text = std::fs::read_to_string(&file).expect("readable source");
            let (code, _) = without_tests(&strip_comments(&text, Literals::Blank));
            for target in crate_refs(&code) {
                assert!(
                    modules.contains_key(&target),
                    "{} uses `crate::{target}`, which is no module: write its module's path \
                     (`crate::MODULE::{target}`) so that the layering test sees the dependency",
                    file.display()
                );
                if target != *name {
                    used.insert(target);
                }
            }
        }
    }
    graph
}

/// A cycle of `graph` as `a -> b -> .. -> a`, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        graph: &'a Graph,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|&n| n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|n| n.to_string()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn show(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, used)| {
            format!(
                "  {m} -> {}",
                Vec::from_iter(used.iter().cloned()).join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_cycle_between_modules() {
    let graph = graph();
    assert!(
        graph.len() >= 10 && graph.values().any(|used| !used.is_empty()),
        "found too little; is the scanner broken?\n{}",
        show(&graph)
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle between server modules: {}\nthe graph:\n{}",
            cycle.join(" -> "),
            show(&graph)
        );
    }
}

#[test]
fn nothing_uses_the_edges() {
    let graph = graph();
    for edge in EDGES {
        assert!(
            graph.get(WIRING).is_some_and(|used| used.contains(edge)),
            "`{WIRING}` does not use `{edge}`: is the scanner broken?\n{}",
            show(&graph)
        );
        let users: Vec<&String> = graph
            .iter()
            .filter(|(m, used)| *m != WIRING && used.contains(edge))
            .map(|(m, _)| m)
            .collect();
        assert!(
            users.is_empty(),
            "{users:?} use the edge module `{edge}`: move what they need below it \
             (outbound socket operations belong in `sockets`)\nthe graph:\n{}",
            show(&graph)
        );
    }
}

#[test]
fn the_scanner_sees_every_form_and_finds_cycles() {
    let src = "use crate::state::AppState;\n\
               use crate::{api, store::{self, Room}};\n\
               // crate::commented\n\
               let s = \"crate::quoted\";\n\
               $crate::cluster::Io;\n\
               my_crate::not_ours();\n\
               #[cfg(test)]\n\
               mod tests { use crate::testing::x; fn f() { if a { } } }\n\
               #[cfg(test)]\n\
               mod more_tests;\n\
               crate::sockets::close_room(st, r)";
    let (code, test_files) = without_tests(&strip_comments(src, Literals::Blank));
    assert_eq!(
        crate_refs(&code),
        ["state", "api", "store", "cluster", "sockets"]
    );
    assert_eq!(test_files, ["more_tests"]);

    let edges = |pairs: &[(&str, &str)]| -> Graph {
        let mut g = Graph::new();
        for (a, b) in pairs {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(
        find_cycle(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&edges(&[("a", "b"), ("b", "c"), ("c", "b")])),
        Some(vec!["b".to_owned(), "c".to_owned(), "b".to_owned()])
    );
}
