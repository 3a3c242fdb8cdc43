//! Every dataset shipped in `datasets/` (the gzipped corpora and the demo set) loads, through
//! the readers that training uses.

use std::path::{Path, PathBuf};

use super::open::{data_extension, read_data};
use super::*;

fn datasets_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

fn non_blank_lines(path: &Path) -> usize {
    String::from_utf8(read_data(path).unwrap())
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn every_shipped_dataset_loads() {
    let root = datasets_root();
    let files = expand_paths(&[root.join("*/*.jsonl"), root.join("*/*.txt")]).unwrap();
    assert!(!files.is_empty());
    for file in files {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let start = std::time::Instant::now();
        let (kind, count) = match data_extension(&file) {
            Some("txt") => (
                "text",
                read_text_corpus(std::slice::from_ref(&file)).unwrap().len(),
            ),
            _ => match sniff_jsonl_kind(&file).unwrap() {
                JsonlKind::Text => (
                    "text",
                    read_text_corpus(std::slice::from_ref(&file)).unwrap().len(),
                ),
                JsonlKind::Sft => {
                    let sft = read_sft(&file).unwrap();
                    assert_eq!(
                        read_prompts(&file).unwrap().len(),
                        sft.len(),
                        "{name} as prompts"
                    );
                    // Question and answer, or a conversation of such pairs (chat_*.jsonl).
                    assert!(
                        sft.iter().all(|e| e.messages.len() >= 2
                            && e.messages.len() % 2 == 0
                            && e.task.is_some()),
                        "{name}"
                    );
                    ("sft", sft.len())
                }
                JsonlKind::Preference => ("preference", read_preferences(&file).unwrap().len()),
                JsonlKind::Prompts => ("prompts", read_prompts(&file).unwrap().len()),
            },
        };
        if kind != "text" || name.ends_with(".jsonl") {
            assert_eq!(count, non_blank_lines(&file), "{name}: one record per line");
        }
        println!(
            "{name}: {count} {kind} records in {:.0} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
}
