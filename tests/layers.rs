//! The layer order of `src/`, read from the README's code map: every `crate::x` a folder (or
//! top-level file) of src names must be on a line below its own. Inside one folder, the files
//! must not import each other in a cycle. Test code (`mod tests` blocks, `tests.rs` files) may
//! reach anywhere and is skipped.

mod common;

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
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

/// A file's code without its test module and comment lines.
fn code_of(text: &str) -> String {
    let cut = Regex::new(r"#\[cfg\(test\)\]\s*mod tests").unwrap();
    let code = cut.split(text).next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file names through `crate::`, outside its test module and comments.
fn imports(text: &str) -> Vec<String> {
    let code = code_of(text);
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

// Import cycles inside one folder. The nodes of a folder are its files and subfolders; its
// module file (`mod.rs`, or `x.rs` beside `x/`) stands for the folder itself. `mod` lines and
// `pub use` re-exports in a module file are no uses of their own: a path through a re-export
// counts as a use of the module it points into.

/// A module's path from the crate root: `report/html.rs` -> `[report, html]`; `report/mod.rs`
/// and `runner.rs` (beside `runner/`) -> their folder's own path.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    let root = parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main");
    if root || parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// `raw` (`super::x::Y`, `crate::a`, `self::b`, `child::c`) made absolute, seen from module
/// `own`; `None` for paths that leave the crate (`std::…`) or name no child of `own`.
fn absolute(raw: &[&str], own: &[String], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let mut path: Vec<String> = match raw[0] {
        "crate" => Vec::new(),
        "self" => own.to_vec(),
        "super" => own[..own.len().saturating_sub(1)].to_vec(),
        child if children.contains(child) => [own, &[child.to_string()]].concat(),
        _ => return None,
    };
    for seg in &raw[1..] {
        match *seg {
            "super" => {
                path.pop();
            }
            "self" | "*" => {}
            name => path.push(name.to_string()),
        }
    }
    Some(path)
}

/// The items of the `{…}` list that opens at `code[open]`, split at its top-level commas.
fn group_items(code: &str, open: usize) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, open + 1, Vec::new());
    for (i, ch) in code[open..].char_indices().map(|(i, c)| (open + i, c)) {
        match ch {
            '{' => depth += 1,
            '}' if depth == 1 => {
                items.push(&code[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 1 => {
                items.push(&code[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// Every module path `code` names, made absolute: `crate::`, `super::`, `self::` paths and
/// bare paths into `own`'s children; a `{…}` list gives one path per item (`a::{b, c::{D}}`
/// names `a::b` and `a::c::D`).
fn named_paths(code: &str, own: &[String], children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let path = Regex::new(r"(?:^|[^\w:])(\w+(?:::\w+)*)(::\{|::\*)?").unwrap();
    let (mut out, mut group_end) = (Vec::new(), 0);
    for c in path.captures_iter(code) {
        if c.get(0).unwrap().start() < group_end {
            continue; // an item of a list already read
        }
        let raw: Vec<&str> = c[1].split("::").collect();
        let Some(base) = absolute(&raw, own, children) else {
            continue;
        };
        match c.get(2) {
            Some(glob) if glob.as_str() == "::*" => out.push(base),
            Some(group) => {
                let items = group_items(code, group.end() - 1);
                group_end = group.end() + items.iter().map(|i| i.len() + 1).sum::<usize>();
                for item in items {
                    list_item(item, &base, &mut out);
                }
            }
            None if raw.len() > 1 => out.push(base),
            None => {}
        }
    }
    out
}

/// The paths one item of a `{…}` list after `base` names (`self`, `x::Y`, `x::{self, Y}`, `*`).
fn list_item(item: &str, base: &[String], out: &mut Vec<Vec<String>>) {
    let lead = Regex::new(r"^\s*(\w+(?:::\w+)*|\*)(::\{)?").unwrap();
    let Some(m) = lead.captures(item) else {
        return;
    };
    let mut path = base.to_vec();
    let segments = m[1].split("::").filter(|s| *s != "self" && *s != "*");
    path.extend(segments.map(String::from));
    match m.get(2) {
        Some(group) => {
            for sub in group_items(item, group.end() - 1) {
                list_item(sub, &path, out);
            }
        }
        None => out.push(path),
    }
}

/// One file of `src/`: its module path and the module paths its code names.
struct SrcFile {
    rel: String,
    module: Vec<String>,
    paths: Vec<Vec<String>>,
}

/// Reads `(path under src, text)` pairs: the modules they name, with re-exports followed and
/// test-only modules (`#[cfg(test)] mod x;`) left out.
fn parse_files(files: &[(String, String)]) -> Vec<SrcFile> {
    let modules: Vec<Vec<String>> = files.iter().map(|(rel, _)| module_path(rel)).collect();
    let test_only =
        Regex::new(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;").unwrap();
    let reexport = Regex::new(r"\bpub(?:\([^)]*\))?\s+use\s[^;]*;").unwrap();
    let mut skipped: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut reexports: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    let mut parsed = Vec::new();
    for ((rel, text), own) in files.iter().zip(&modules) {
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| m.len() > own.len() && m.starts_with(own))
            .map(|m| m[own.len()].clone())
            .collect();
        for c in test_only.captures_iter(text) {
            skipped.insert([own.as_slice(), &[c[1].to_string()]].concat());
        }
        let mut code = code_of(text);
        if !children.is_empty() {
            for stmt in reexport.find_iter(&code) {
                for target in named_paths(stmt.as_str(), own, &children) {
                    let name = target.last().cloned().unwrap_or_default();
                    reexports.insert([own.as_slice(), &[name]].concat(), target);
                }
            }
            code = reexport.replace_all(&code, ";").into_owned();
        }
        let paths = named_paths(&code, own, &children);
        parsed.push(SrcFile {
            rel: rel.clone(),
            module: own.clone(),
            paths,
        });
    }
    parsed.retain(|f| !skipped.iter().any(|s| f.module.starts_with(s)));
    for file in &mut parsed {
        for p in &mut file.paths {
            *p = through_reexports(p, &reexports);
        }
    }
    parsed
}

/// `path` with every re-exported prefix replaced by what it re-exports.
fn through_reexports(
    path: &[String],
    reexports: &BTreeMap<Vec<String>, Vec<String>>,
) -> Vec<String> {
    let mut path = path.to_vec();
    for _ in 0..8 {
        let hit = (1..=path.len())
            .rev()
            .find_map(|k| reexports.get(&path[..k]).map(|t| (k, t)));
        match hit {
            Some((k, target)) if target[..] != path[..k] => {
                path = [target.as_slice(), &path[k..]].concat();
            }
            _ => break,
        }
    }
    path
}

/// The file-level import graph of every folder of `src/` (the crate root aside: the layer
/// table orders it): folder -> node -> nodes it imports, a node named by its file.
fn folder_graphs(files: &[SrcFile]) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let file_of = |module: &[String]| {
        files
            .iter()
            .find(|f| f.module == module)
            .map_or_else(|| format!("{}/", module.join("/")), |f| f.rel.clone())
    };
    let mut graphs = BTreeMap::new();
    let folders: BTreeSet<&[String]> = files
        .iter()
        .filter(|f| f.module.len() > 1)
        .map(|f| &f.module[..f.module.len() - 1])
        .collect();
    for folder in folders {
        let node = |module: &[String]| -> Option<String> {
            if !module.starts_with(folder) {
                return None;
            }
            let child = module
                .get(folder.len())
                .map(|c| [folder, std::slice::from_ref(c)].concat());
            match child {
                Some(c) if files.iter().any(|f| f.module.starts_with(&c)) => Some(file_of(&c)),
                _ => Some(file_of(folder)),
            }
        };
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let Some(from) = node(&file.module) else {
                continue;
            };
            let edges = graph.entry(from.clone()).or_default();
            for to in file.paths.iter().filter_map(|p| node(p)) {
                if to != from {
                    edges.insert(to);
                }
            }
        }
        graphs.insert(folder.join("/"), graph);
    }
    graphs
}

/// The shortest cycle through `start`, as `start -> … -> start`, if there is one.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                let mut cycle = vec![start.to_string(), at.to_string()];
                let mut n = at;
                while n != start {
                    n = parent[n];
                    cycle.push(n.to_string());
                }
                cycle.reverse();
                cycle.dedup();
                return Some(cycle);
            }
            if !parent.contains_key(next.as_str()) {
                parent.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    None
}

/// One line per import cycle between the files of one folder, naming them in order.
fn folder_cycles(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (folder, graph) in folder_graphs(&parse_files(files)) {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for start in graph.keys() {
            if seen.contains(start) {
                continue;
            }
            if let Some(cycle) = cycle_through(&graph, start) {
                seen.extend(cycle.iter().cloned());
                out.push(format!("{folder}/: {}", cycle.join(" -> ")));
            }
        }
    }
    out
}

/// Every `.rs` file under `src` but `tests.rs`, as (path under src, text).
fn src_files(src: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".rs") && name != "tests.rs" {
                let rel = path.strip_prefix(src).unwrap();
                let rel: Vec<String> = rel
                    .iter()
                    .map(|s| s.to_string_lossy().to_string())
                    .collect();
                files.push((rel.join("/"), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
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

#[test]
fn no_folder_of_src_has_an_import_cycle_between_its_files() {
    let cycles = folder_cycles(&src_files(&common::repo().join("src")));
    assert!(
        cycles.is_empty(),
        "import cycles between the files of a folder (move what both sides share into a file below them):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_cycle_checker_refuses_a_cycle_and_passes_a_chain() {
    let file = |rel: &str, text: &str| (rel.to_string(), text.to_string());
    let tangled = [
        file("lib.rs", "pub mod a;\n"),
        file("a/mod.rs", "mod x;\nmod y;\npub use x::X;\n"),
        file("a/x.rs", "use super::y::Y;\npub struct X;\n"),
        file("a/y.rs", "pub struct Y;\nfn f() { crate::a::x::X; }\n"),
    ];
    assert_eq!(folder_cycles(&tangled), ["a/: a/x.rs -> a/y.rs -> a/x.rs"]);

    // Through a re-export, through a group, through the module file, and from a subfolder.
    let tangled = [
        file(
            "a/mod.rs",
            "mod x;\nmod y;\nmod z;\npub use x::X;\nfn g() { y::f(); }\n",
        ),
        file("a/x.rs", "pub struct X;\n"),
        file("a/y.rs", "use crate::{a::{z::Z}, util};\npub fn f() {}\n"),
        file("a/z/mod.rs", "mod deep;\n"),
        file("a/z/deep.rs", "use super::super::g;\n"),
    ];
    assert_eq!(
        folder_cycles(&tangled),
        ["a/: a/mod.rs -> a/y.rs -> a/z/mod.rs -> a/mod.rs"]
    );

    // The same files with the cycle broken: a re-export in mod.rs is no use of its own, test
    // code is skipped, and a use of a re-exported name counts against the file that defines it.
    let chain = [
        file(
            "a/mod.rs",
            "mod x;\nmod y;\n#[cfg(test)]\nmod fixture;\npub use y::Y;\nfn g() { x::X; }\n",
        ),
        file(
            "a/x.rs",
            "use super::Y;\npub struct X;\n#[cfg(test)]\nmod tests { use super::super::x; }\n",
        ),
        file("a/y.rs", "pub struct Y;\n// super::x::X in a comment\n"),
        file("a/fixture.rs", "use super::g;\n"),
    ];
    assert!(
        folder_cycles(&chain).is_empty(),
        "{:?}",
        folder_cycles(&chain)
    );
    let graph = &folder_graphs(&parse_files(&chain))["a"];
    assert_eq!(graph["a/mod.rs"], BTreeSet::from(["a/x.rs".to_string()]));
    assert_eq!(graph["a/x.rs"], BTreeSet::from(["a/y.rs".to_string()]));
}
