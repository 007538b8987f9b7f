//! The crate's layout holds: every module of `host/src` sits in one layer of `LAYERS`, and
//! imports only from layers above its own, so the import graph has no cycle; inside each folder
//! the files import each other without a cycle too. A new module must be placed in the table,
//! and an import that points the wrong way fails here with its file and line.
//!
//! Read from the source text: `crate::NAME` (and `crate::{A, B}`) paths in the library,
//! `helix_host::NAME` in the binary's `cli/`, and `super::NAME` between the files of a folder.
//! Comments and inline `#[cfg(test)] mod tests` blocks are not read: a unit test may reach up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top to bottom; the same order as the crate docs and the README's Layout table.
const LAYERS: &[&[&str]] = &[
    &["job", "machine", "quarantine", "wasm"],
    &["manifest", "policy", "request"],
    &["outcome", "config", "admission", "precision"],
    &["metrics"],
    &["registry"],
    &["execute", "catalog"],
    &["lanes"],
    &["router"],
    &["serve", "load", "bench"],
    &["replica"],
    &["fleet"],
    &["soak"],
    &["cli"],
];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// One reference to a module: the file and line it is on, and the module it names.
struct Import {
    file: String,
    line: usize,
    target: String,
}

/// The `.rs` files of a top-level module: `NAME.rs`, or every file under `NAME/`.
fn files_of(dir: &Path, module: &str) -> Vec<PathBuf> {
    let file = dir.join(format!("{module}.rs"));
    if file.is_file() {
        return vec![file];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(module))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files
}

/// The modules directly under `dir`: its `.rs` files (but `lib`, `main`, `mod`) and folders.
fn modules_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_string();
            let is_module = p.is_dir() || p.extension().is_some_and(|x| x == "rs");
            (is_module && !["lib", "main", "mod"].contains(&name.as_str())).then_some(name)
        })
        .collect()
}

/// The code of a file without comments and without its inline test module.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = Vec::new();
    let mut previous_was_cfg_test = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if previous_was_cfg_test && trimmed.starts_with("mod tests") && trimmed.ends_with('{') {
            break;
        }
        previous_was_cfg_test = trimmed == "#[cfg(test)]";
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        lines.push((i + 1, code.to_string()));
    }
    lines
}

/// Every name a path starting at `prefix` reaches first: `prefix::a` gives `a`, and
/// `prefix::{a::b, c}` gives `a` and `c`.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        let word: String =
                            group[i..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        names.push(word);
                        item_start = false;
                    }
                    c if c.is_whitespace() => {}
                    _ => item_start = false,
                }
            }
        } else {
            names.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    names
}

fn imports(files: &[PathBuf], prefix: &str) -> Vec<Import> {
    let mut found = Vec::new();
    for file in files {
        let shown = file.strip_prefix(src()).unwrap_or(file).display().to_string();
        for (line, code) in code_lines(file) {
            for target in names_after(&code, prefix) {
                found.push(Import { file: shown.clone(), line, target });
            }
        }
    }
    found
}

#[test]
fn every_module_imports_only_from_the_layers_above_it() {
    let dir = src();
    let modules = modules_in(&dir);
    let mut problems = Vec::new();
    for m in &modules {
        if layer_of(m).is_none() {
            problems.push(format!("module `{m}` is in no layer: place it in LAYERS (and the README's Layout)"));
        }
    }
    for layer in LAYERS {
        for m in *layer {
            if !modules.contains(*m) {
                problems.push(format!("LAYERS names `{m}`, which host/src does not have"));
            }
        }
    }
    for m in &modules {
        let Some(own) = layer_of(m) else { continue };
        let prefix = if m == "cli" { "helix_host::" } else { "crate::" };
        for i in imports(&files_of(&dir, m), prefix) {
            // The crate root re-exports for library users; inside the crate, the module shows.
            if prefix == "crate::" && i.target.starts_with(char::is_uppercase) {
                let fix = "name the module it comes from";
                problems.push(format!("{}:{}: `{prefix}{}` hides a dependency: {fix}", i.file, i.line, i.target));
                continue;
            }
            let Some(theirs) = layer_of(&i.target) else { continue };
            if theirs >= own && i.target != *m {
                problems.push(format!(
                    "{}:{}: `{m}` (layer {}) imports `{}` (layer {}): a module imports only from earlier layers",
                    i.file,
                    i.line,
                    own + 1,
                    i.target,
                    theirs + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "the layout is broken:\n{}", problems.join("\n"));
}

/// Each module says its layer in its first doc line, so a reader of any file knows what it
/// may depend on: `//! Layer N: ...`, N as in `LAYERS`.
#[test]
fn every_module_names_its_layer_in_its_first_doc_line() {
    let dir = src();
    let mut problems = Vec::new();
    for m in modules_in(&dir) {
        let Some(layer) = layer_of(&m) else { continue };
        let file = [dir.join(format!("{m}.rs")), dir.join(&m).join("mod.rs")].into_iter().find(|f| f.is_file());
        let first = file.and_then(|f| std::fs::read_to_string(f).ok()?.lines().next().map(str::to_string));
        let want = format!("//! Layer {}: ", layer + 1);
        if !first.as_deref().is_some_and(|l| l.starts_with(&want)) {
            problems.push(format!("`{m}` should open with `{want}...`, not {first:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Tarjan's strongly connected components with more than one member.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in &s.edges[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

#[test]
fn the_files_of_each_folder_import_each_other_without_a_cycle() {
    let dir = src();
    let mut problems = Vec::new();
    for folder in modules_in(&dir).into_iter().filter(|m| dir.join(m).is_dir()) {
        let children = modules_in(&dir.join(&folder));
        let mut edges: BTreeMap<String, BTreeSet<String>> =
            children.iter().map(|c| (c.clone(), BTreeSet::new())).collect();
        for child in &children {
            let files = [dir.join(&folder).join(format!("{child}.rs"))];
            let mut found = imports(&files, "super::");
            found.extend(imports(&files, &format!("crate::{folder}::")));
            for i in found.into_iter().filter(|i| children.contains(&i.target) && i.target != *child) {
                edges.get_mut(child).unwrap().insert(i.target);
            }
        }
        for cycle in cycles(&edges) {
            problems.push(format!("{folder}/: {} import each other in a circle", cycle.join(", ")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checks must be able to fail: a cycle and a wrong-way import written here are found.
#[test]
fn the_checks_find_a_cycle_and_a_grouped_import() {
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
            .collect();
    assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    let code = "use crate::{router::Router, policy::{self, Decision}, job};  let x = other_crate::lanes::X;";
    assert_eq!(names_after(code, "crate::"), ["router", "policy", "job"]);
    assert_eq!(names_after("crate::lanes::CpuLane::start(", "crate::"), ["lanes"]);
}
