//! Asking a trained stage has one owner, `src/infer/`: no other code builds a chat prompt
//! (the template lives in `src/data/chat.rs`, which training also uses) or writes the rule of
//! which ids end an answer; and reading a data file has one owner, `src/data/open.rs`. Test
//! code may.

mod common;
use common::source_files;
use std::path::Path;

/// What building a prompt or a stop rule looks like in code.
const OWNED: [&str; 5] = [
    "encode_prompt(",
    "special(Special::EndOfTurn)",
    "Special::EndOfTurn.id()",
    "stop = vec!",
    "stop: vec![t",
];

/// The places allowed to: the inference layer, and the layers it is built from.
const OWNERS: [&str; 3] = ["infer/", "data/", "tokenizer/"];

/// `path: needle` for every owned construct found outside the owners, test code excluded.
fn strays(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, code) in source_files(src) {
        if OWNERS.iter().any(|o| rel.starts_with(o)) {
            continue;
        }
        found.extend(
            OWNED
                .iter()
                .filter(|needle| code.contains(*needle))
                .map(|needle| format!("src/{rel}: {needle}")),
        );
    }
    found.sort();
    found
}

#[test]
fn only_the_inference_layer_builds_prompts_and_stop_ids() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let strays = strays(&src);
    assert!(
        strays.is_empty(),
        "prompts and stop ids belong to src/infer/ (use infer::Prompt / infer::Ask):\n{}",
        strays.join("\n")
    );
}

#[test]
fn the_check_finds_a_stray_prompt_builder() {
    let dir = std::env::temp_dir().join(format!("gptlab-one-owner-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("serve")).unwrap();
    std::fs::create_dir_all(dir.join("infer")).unwrap();
    let stray = "fn f(tok: &Tokenizer) { let ids = encode_prompt(tok, &m); }\n";
    std::fs::write(dir.join("serve/x.rs"), stray).unwrap();
    std::fs::write(dir.join("infer/ok.rs"), stray).unwrap();
    std::fs::write(dir.join("serve/tests.rs"), stray).unwrap();
    assert_eq!(
        strays(&dir),
        vec!["src/serve/x.rs: encode_prompt(".to_string()]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reading a data file has one owner too, `src/data/open.rs`, which gunzips `NAME.gz`: a
/// reader that opened files itself would not find the shipped corpora. `src/data/` files
/// that open a file for reading outside their tests, and what they call.
fn data_readers(data: &Path) -> Vec<String> {
    const OPENS: [&str; 3] = ["fs::read(", "fs::read_to_string(", "File::open("];
    let mut found = Vec::new();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rs") || name == "open.rs" || name.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        found.extend(
            OPENS
                .iter()
                .filter(|needle| code.contains(*needle))
                .map(|needle| format!("src/data/{name}: {needle}")),
        );
    }
    found
}

#[test]
fn only_data_open_reads_data_files() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/data");
    let strays = data_readers(&data);
    assert!(
        strays.is_empty(),
        "data files are read through data::open (open_data / read_data):\n{}",
        strays.join("\n")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.rs"), "let b = std::fs::read(path)?;\n").unwrap();
    std::fs::write(dir.path().join("open.rs"), "std::fs::File::open(p)\n").unwrap();
    assert_eq!(data_readers(dir.path()), vec!["src/data/x.rs: fs::read("]);
}

/// `path: what` for each place outside its owner that builds sampling options or a judge by
/// hand: `SampleOptions` comes from `spec::SampleSettings` through `infer/sampling.rs` (the
/// model may build its own), and a judge from the spec through `Judge::declared`.
fn hand_built(src: &Path) -> Vec<String> {
    const BUILT: [(&str, &[&str]); 2] = [
        ("SampleOptions {", &["model/", "infer/sampling.rs"]),
        ("Judge::new(", &["eval/judge.rs"]),
    ];
    let mut found = Vec::new();
    for (rel, code) in source_files(src) {
        for (needle, owners) in BUILT {
            if code.contains(needle) && !owners.iter().any(|o| rel.starts_with(o)) {
                found.push(format!("src/{rel}: {needle}"));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn sampling_options_and_judges_come_from_the_spec_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = hand_built(&src);
    assert!(
        found.is_empty(),
        "use SampleSettings (spec/sampling.rs) .into() and Judge::declared:\n{}",
        found.join("\n")
    );
    let dir = std::env::temp_dir().join(format!("gptlab-one-way-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("runner")).unwrap();
    let stray = "fn f() { let o = SampleOptions { top_k: 1 }; let j = Judge::new(\"a\", &s); }\n";
    std::fs::write(dir.join("runner/x.rs"), stray).unwrap();
    assert_eq!(
        hand_built(&dir),
        [
            "src/runner/x.rs: Judge::new(",
            "src/runner/x.rs: SampleOptions {"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
