//! The codemap's invariants, checked on the source itself: the module graph of `src/` has no
//! cycle, and its edges point the pipeline's way — a stage depends only on the stages before it
//! and on the shared layers below them. The graph is read from `crate::` and `super::` paths
//! (also inside `use crate::{a, b::c}` groups), leaving out each file's `#[cfg(test)]` tail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src/` by its path (`scan::fetch`), with its source up to its tests.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix("src").unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap().to_string();
            out.insert(parts.join("::"), code);
        }
    }
    let mut out = BTreeMap::new();
    walk(Path::new("src"), &mut out);
    out
}

/// The paths a use tree starting at `s` names: `a::b`, `a::{b, c::d}` → `a::b`, `a::c::d`.
/// Returns how much of `s` the tree took.
fn use_paths(s: &str, prefix: &str, out: &mut Vec<String>) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    let mut path = prefix.to_string();
    loop {
        if b.get(i) == Some(&b'{') {
            i += 1;
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return i + 1;
                }
                i += use_paths(&s[i..], &path, out);
            }
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i > start {
            if !path.is_empty() {
                path.push_str("::");
            }
            path.push_str(&s[start..i]);
        }
        if s[i..].starts_with("::") {
            i += 2;
            continue;
        }
        if !path.is_empty() {
            out.push(path);
        }
        return i.max(1);
    }
}

/// Module → the other modules of the crate it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|m| mods.contains_key(m))
    };
    let mut out = BTreeMap::new();
    for (name, code) in &mods {
        let mut deps = BTreeSet::new();
        let parent: Vec<&str> = name.split("::").collect();
        for (root, base) in [
            ("crate::", String::new()),
            (
                "super::",
                parent[..parent.len().saturating_sub(1)].join("::"),
            ),
        ] {
            for (at, _) in code.match_indices(root) {
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut paths = Vec::new();
                use_paths(&code[at + root.len()..], &base, &mut paths);
                for p in paths {
                    if let Some(m) = resolve(&p) {
                        // A module and its own submodules are one unit here.
                        let inside = m == *name
                            || m.starts_with(&format!("{name}::"))
                            || name.starts_with(&format!("{m}::"));
                        if !inside {
                            deps.insert(m);
                        }
                    }
                }
            }
        }
        out.insert(name.clone(), deps);
    }
    out
}

/// The top-level module a module belongs to.
fn top(m: &str) -> &str {
    m.split("::").next().unwrap()
}

/// The layers, bottom up: a module may depend on its own layer's earlier entries' modules and
/// on lower layers, never on a later stage. The order of the stages is the pipeline's.
const LAYERS: &[&[&str]] = &[
    &["model"],
    &["config", "aws", "interrupt", "progress"],
    &["archive"],
    &["inventory"],
    &["tracking"],
    &["trails"],
    &["plan"],
    &["scan"],
    &["checkpoint"],
    &["integrity"],
    &["lookup"],
    &["dependents"],
    &["correlate"],
    &["report"],
    &["pipeline", "bench", "synth", ""],
];

fn layer(m: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&top(m)))
        .unwrap_or_else(|| panic!("module {m} is in no layer of tests/it/architecture.rs"))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let g = graph();
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit<'g>(
        m: &'g str,
        g: &'g BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) {
        if let Some(at) = stack.iter().position(|s| *s == m) {
            panic!("import cycle: {} -> {m}", stack[at..].join(" -> "));
        }
        if done.contains(m) {
            return;
        }
        stack.push(m);
        for d in &g[m] {
            visit(d, g, stack, done);
        }
        stack.pop();
        done.insert(m);
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        visit(m, &g, &mut Vec::new(), &mut done);
    }
    assert!(g.len() > 20, "the graph was read: {} modules", g.len());
}

#[test]
fn stages_depend_only_on_what_comes_before_them() {
    let g = graph();
    let mut wrong = Vec::new();
    for (m, deps) in &g {
        for d in deps {
            if top(d) != top(m) && layer(d) > layer(m) {
                wrong.push(format!("{m} -> {d}"));
            }
        }
    }
    assert!(wrong.is_empty(), "edges against the pipeline: {wrong:?}");
    // The check can fail: the pipeline names every stage, so it sits above all of them.
    assert!(g["pipeline"].contains("correlate") && g["pipeline"].contains("inventory"));
}

#[test]
fn use_trees_are_read_whole() {
    let mut out = Vec::new();
    use_paths("{a, b::{c, d::E}, f::g};", "", &mut out);
    assert_eq!(out, ["a", "b::c", "b::d::E", "f::g"]);
}
