//! `docs/manifest.md` held to the parser. Every TOML block in it is marked `valid` or `invalid`:
//! a valid one loads through the loader `helix kernels check` and the manifests folder use (a
//! Wasm example with a real module put at its `module.path` and its sha256 written in), an
//! invalid one is refused with the message of the `text error` block after it. The field tables
//! name exactly the fields the parser accepts (asked of the parser itself: an unknown field is
//! refused with the list of the known ones), the full example uses every one of them, and the
//! admission table gives the errors jobs get.
//!
//! The Wasm module comes from `cargo xtask test`, which builds and stages the bundled kernels.

use helix_host::RouterConfig;
use helix_host::catalog::load_kernel;
use helix_host::manifest::Manifest;
use helix_host::wasm::{WasmEngine, sha256_hex};
use helix_math::{Params, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

mod support;
use support::{staged, temp_dir};

/// A fenced block of the document: its info string (`toml valid`), its text, the heading of the
/// `##` section it is in, and its first line's number (for messages).
struct Block {
    info: String,
    text: String,
    section: String,
    line: usize,
}

fn doc() -> String {
    let path = support::repo().join("docs/manifest.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        match &mut open {
            Some(_) if line == "```" => out.push(open.take().expect("open")),
            Some(b) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            None if line.starts_with("```") => {
                let info = line.trim_start_matches('`').trim().to_string();
                open = Some(Block { info, text: String::new(), section: section.clone(), line: i + 2 });
            }
            None => {
                if let Some(h) = line.strip_prefix("## ") {
                    section = h.trim().to_string();
                }
            }
        }
    }
    assert!(open.is_none(), "docs/manifest.md has an unclosed fenced block");
    out
}

/// The lines of `##` section `name` (up to the next `##` heading).
fn section<'a>(doc: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = doc.lines().skip_while(|l| l.strip_prefix("## ").map(str::trim) != Some(name));
    assert!(lines.next().is_some(), "docs/manifest.md has no section `## {name}`");
    lines.take_while(|l| !l.starts_with("## ")).collect()
}

fn engine() -> Arc<WasmEngine> {
    WasmEngine::new(RouterConfig::default().wasm).expect("the Wasm engine starts")
}

/// Writes `text` as a manifest in a folder of its own and loads it as the manifests folder and
/// `helix kernels check` do. A plain `module.path` gets a real component (a bundled kernel's);
/// with `pin`, the manifest's sha256 is replaced by that file's, so only the manifest is judged.
fn load(tag: &str, text: &str, pin: bool, engine: &Arc<WasmEngine>) -> Result<String, String> {
    let dir = temp_dir(tag);
    let mut text = text.to_string();
    let parsed: Option<toml::Table> = text.parse().ok();
    let module = parsed.as_ref().and_then(|t| t.get("module")).and_then(|m| m.as_table());
    if let Some(path) = module.and_then(|m| m.get("path")).and_then(|p| p.as_str())
        && !path.contains('/')
        && !path.is_empty()
    {
        let bytes = std::fs::read(staged("basket-option.wasm")).unwrap();
        std::fs::write(dir.join(path), &bytes).unwrap();
        if pin {
            let written = module.and_then(|m| m.get("sha256")).and_then(|s| s.as_str()).expect("a module has a sha256");
            text = text.replace(written, &sha256_hex(&bytes));
        }
    }
    let path = dir.join("kernel.toml");
    std::fs::write(&path, &text).unwrap();
    let loaded = load_kernel(&path, Some(engine)).map(|k| k.manifest.name.clone()).map_err(|e| e.message);
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

#[test]
fn every_example_loads_or_is_refused_as_the_reference_says() {
    let doc = doc();
    let blocks = blocks(&doc);
    let engine = engine();
    let (mut valid, mut invalid) = (0, 0);
    for (i, b) in blocks.iter().enumerate() {
        match b.info.as_str() {
            "toml valid" => {
                Manifest::parse(&b.text, "docs").unwrap_or_else(|e| panic!("line {}: {e}", b.line));
                let loaded = load(&format!("ref-valid-{i}"), &b.text, true, &engine);
                assert!(loaded.is_ok(), "the example at line {} does not load: {}", b.line, loaded.unwrap_err());
                valid += 1;
            }
            "toml invalid" => {
                let expected = blocks.get(i + 1).filter(|e| e.info == "text error").unwrap_or_else(|| {
                    panic!("the invalid example at line {} has no `text error` block after it", b.line)
                });
                let refused = load(&format!("ref-invalid-{i}"), &b.text, false, &engine);
                let message = refused.expect_err(&format!("the invalid example at line {} loads", b.line));
                assert!(
                    message.contains(expected.text.trim()),
                    "the example at line {} is refused with\n{message}\nnot with the message the reference shows:\n{}",
                    b.line,
                    expected.text.trim()
                );
                invalid += 1;
            }
            info if info.starts_with("toml") => {
                panic!("the TOML block at line {} is marked neither `valid` nor `invalid` ({info:?})", b.line)
            }
            _ => {}
        }
    }
    // The minimal native and Wasm examples and the full one; a refusal for each rule.
    assert!(valid >= 3, "{valid} valid examples");
    assert!(invalid >= 25, "{invalid} invalid examples");
}

/// The fields the parser accepts in the table `manifest` puts `zzz_unknown` into: its refusal
/// lists them.
fn known_fields(manifest: &str) -> Vec<String> {
    let e = Manifest::parse(manifest, "probe").expect_err("an unknown field is refused");
    let line = e
        .message
        .lines()
        .find_map(|l| l.split_once("unknown field `zzz_unknown`, expected ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("the refusal does not list the known fields: {e}"));
    backticked(line)
}

/// The values the parser accepts where `manifest` has `"zzz_unknown"`.
fn known_variants(manifest: &str) -> Vec<String> {
    let e = Manifest::parse(manifest, "probe").expect_err("an unknown variant is refused");
    let line = e
        .message
        .lines()
        .find_map(|l| l.split_once("unknown variant `zzz_unknown`, expected ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("the refusal does not list the known values: {e}"));
    backticked(line)
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

const HEAD: &str = "name = \"probe\"\nversion = \"1\"\nruntime = \"native\"\n";
const COST: &str = "[cost]\nfixed_us = 1.0\nper_unit_ns = 1.0\n";
const MODULE: &str =
    "[module]\npath = \"k.wasm\"\nsha256 = \"0d6a2c3e5a1f7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e\"\n";

/// Every field the parser knows, as the reference names it (`units.block`, `params.NAME.type`).
fn parser_fields() -> BTreeSet<String> {
    let unknown = "zzz_unknown = 1\n";
    let wasm_head = HEAD.replace("native", "wasm");
    let tables = [
        ("", format!("{unknown}{HEAD}{COST}")),
        ("module.", format!("{wasm_head}{MODULE}{unknown}{COST}")),
        ("units.", format!("{HEAD}[units]\nparam = \"n\"\n{unknown}{COST}")),
        ("cost.", format!("{HEAD}{COST}{unknown}")),
        ("batch.", format!("{HEAD}{COST}[batch]\nmax_size = 2\nmax_delay_ms = 1\nshare_when_equal = []\n{unknown}")),
        ("params.NAME.", format!("{HEAD}{COST}[params.x]\ntype = \"number\"\n{unknown}")),
    ];
    let mut fields = BTreeSet::new();
    for (prefix, manifest) in tables {
        let known = known_fields(&manifest);
        assert!(known.len() >= 2, "{prefix}: {known:?}");
        fields.extend(known.into_iter().map(|f| format!("{prefix}{f}")));
    }
    fields
}

#[test]
fn the_field_tables_name_exactly_the_fields_the_parser_accepts() {
    let doc = doc();
    let documented: BTreeSet<String> = section(&doc, "Fields")
        .iter()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| l.split_once('`').expect("a closing backtick").0.to_string())
        .collect();
    let known = parser_fields();
    let undocumented: Vec<&String> = known.difference(&documented).collect();
    let stale: Vec<&String> = documented.difference(&known).collect();
    assert!(undocumented.is_empty(), "fields the parser accepts that docs/manifest.md does not list: {undocumented:?}");
    assert!(stale.is_empty(), "fields docs/manifest.md lists that the parser does not accept: {stale:?}");

    // Every runtime and parameter type, as written in a manifest.
    let fields = section(&doc, "Fields").join("\n");
    let runtimes = known_variants(&format!("{}{COST}", HEAD.replace("\"native\"", "\"zzz_unknown\"")));
    let types = known_variants(&format!("{HEAD}{COST}[params.x]\ntype = \"zzz_unknown\"\n"));
    assert_eq!(runtimes, ["native", "wasm"]);
    assert_eq!(types.len(), 4, "{types:?}");
    for value in runtimes.iter().chain(&types) {
        assert!(fields.contains(&format!("`\"{value}\"`")), "the Fields section does not list the value {value:?}");
    }
}

#[test]
fn the_full_example_uses_every_field() {
    let doc = doc();
    let blocks = blocks(&doc);
    let full = blocks
        .iter()
        .find(|b| b.section == "A full example" && b.info == "toml valid")
        .expect("a valid example under `## A full example`");
    let table: toml::Table = full.text.parse().unwrap();
    let mut used = BTreeSet::new();
    for (key, value) in &table {
        used.insert(key.clone());
        let Some(inner) = value.as_table() else { continue };
        for (field, rule) in inner {
            match (key.as_str(), rule.as_table()) {
                ("params", Some(rule)) => used.extend(rule.keys().map(|k| format!("params.NAME.{k}"))),
                _ => {
                    used.insert(format!("{key}.{field}"));
                }
            }
        }
    }
    // `entry` is native-only, and the full example is a Wasm kernel.
    let missing: Vec<String> = parser_fields().into_iter().filter(|f| f != "entry" && !used.contains(f)).collect();
    assert!(missing.is_empty(), "the full example leaves out {missing:?}");
}

fn params_of(json: &serde_json::Value) -> Params {
    let value = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap()),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(|x| x.as_f64().expect("a number")).collect()),
        other => panic!("no parameter value is {other}"),
    };
    Params(json.as_object().expect("params are an object").iter().map(|(k, v)| (k.clone(), value(v))).collect())
}

#[test]
fn the_admission_table_gives_the_errors_jobs_get() {
    let doc = doc();
    let full = blocks(&doc)
        .into_iter()
        .find(|b| b.section == "A full example" && b.info == "toml valid")
        .expect("a valid example under `## A full example`");
    let manifest = Manifest::parse(&full.text, "full example").unwrap();
    let mut rows = 0;
    for line in section(&doc, "At admission") {
        let Some(row) = line.strip_prefix("| `{") else { continue };
        let (json, error) = row.split_once("}` | ").expect("| `PARAMS` | ERROR |");
        let params: serde_json::Value = serde_json::from_str(&format!("{{{json}}}")).expect("the params are JSON");
        let error = error.trim_end_matches('|').trim();
        let got =
            helix_host::admission::admit_wasm(&manifest, params_of(&params)).map(|_| ()).map_err(|e| e.to_string());
        match error.strip_prefix("`` ").and_then(|e| e.strip_suffix(" ``")) {
            Some(expected) => assert_eq!(got, Err(expected.to_string()), "{line}"),
            None => {
                assert_eq!(error, "none: accepted", "{line}");
                assert_eq!(got, Ok(()), "{line}");
            }
        }
        rows += 1;
    }
    assert!(rows >= 8, "{rows} rows in the admission table");
}
