//! The layer order of `src/`, read from the README's code map: every `crate::x` a folder (or
//! top-level file) of src names must be on a line below its own. Test code (`mod tests`
//! blocks, `tests.rs` files) may reach anywhere and is skipped.

mod common;

use regex::Regex;
use std::collections::BTreeMap;
use std::path::Path;

/// Module name → level (0 = top) from the first fenced block after "## Code map" that starts
/// with `main`.
fn layer_table(readme: &str) -> BTreeMap<String, usize> {
    let map = readme
        .split("## Code map")
        .nth(1)
        .expect("README.md has a `## Code map` section");
    let block = map
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| b.split_once('\n').map_or("", |(_, body)| body))
        .find(|body| body.trim_start().starts_with("main"))
        .expect("the code map has a fenced layer table whose first line is `main`");
    let mut table = BTreeMap::new();
    for (level, line) in block.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        for name in line.split_whitespace() {
            table.insert(name.to_string(), level);
        }
    }
    table
}

/// The top-level modules a file names through `crate::`, outside its test module and comments.
fn imports(text: &str) -> Vec<String> {
    let cut = Regex::new(r"#\[cfg\(test\)\]\s*mod tests").unwrap();
    let code = cut.split(text).next().unwrap_or("");
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let single = Regex::new(r"crate::(\w+)").unwrap();
    let grouped = Regex::new(r"crate::\{([^}]*)\}").unwrap();
    let mut out: Vec<String> = single
        .captures_iter(&code)
        .map(|c| c[1].to_string())
        .collect();
    for group in grouped.captures_iter(&code) {
        for item in group[1].split(',') {
            let head = item.trim().split("::").next().unwrap_or("").trim();
            if !head.is_empty() && head != "self" {
                out.push(head.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `file -> module` for every import that is not strictly below the file's own layer.
fn violations(src: &Path, table: &BTreeMap<String, usize>) -> Vec<String> {
    let mut bad = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy();
            if !name.ends_with(".rs") || name == "tests.rs" {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let top = rel.iter().next().unwrap().to_string_lossy();
            let top = top.trim_end_matches(".rs");
            if top == "lib" || top == "main" {
                continue;
            }
            let Some(&own) = table.get(top) else {
                bad.push(format!(
                    "{}: `{top}` is not in the layer table",
                    rel.display()
                ));
                continue;
            };
            let text = std::fs::read_to_string(&path).unwrap();
            for module in imports(&text) {
                match table.get(&module) {
                    Some(&level) if module != top && level <= own => {
                        bad.push(format!("{} -> {module}", rel.display()))
                    }
                    _ => {}
                }
            }
        }
    }
    bad.sort();
    bad
}

#[test]
fn every_crate_import_points_down_the_readme_layer_table() {
    let repo = common::repo();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let table = layer_table(&readme);
    for module in ["runner", "stages", "eval", "train", "results", "util"] {
        assert!(
            table.contains_key(module),
            "`{module}` missing from the layer table"
        );
    }
    let bad = violations(&repo.join("src"), &table);
    assert!(
        bad.is_empty(),
        "imports against the layer table in README.md (a folder imports only from lines below its own):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_sees_single_grouped_and_nested_imports() {
    let text = "//! crate::report in a comment is not an import\nuse crate::{data::chat, model};\nuse crate::train::loss;\nfn f() { crate::util::x(); }\n#[cfg(test)]\nmod tests { use crate::report; }\n";
    assert_eq!(imports(text), ["data", "model", "train", "util"]);
    let table = layer_table("## Code map\n```text\nmain\nreport\ntrain  data\nutil\n```\n");
    assert_eq!(table["report"], 1);
    assert_eq!(table["data"], 2);
}
