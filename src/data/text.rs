//! Plain-text corpora for pretraining: `.txt` files and `.jsonl` files of `{"text": ...}`.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::open::data_extension;
use super::records::{for_each_record, keys_of, read_utf8, type_name};

/// One string per document: a `.txt` file is one document, a `.jsonl` file gives one
/// document per line (its `"text"` field). Empty documents are dropped; data with no
/// non-whitespace text at all is an error.
pub fn read_text_corpus(paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut documents = Vec::new();
    for path in paths {
        match data_extension(path) {
            Some("txt") => documents.push(read_utf8(path)?),
            Some("jsonl") => documents.extend(read_text_jsonl(path)?),
            _ => bail!(
                "{}: unsupported corpus file: expected a .txt or .jsonl file",
                path.display()
            ),
        }
    }
    documents.retain(|d| !d.is_empty());
    if documents.iter().all(|d| d.trim().is_empty()) {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        bail!("no text to train on in {}", names.join(", "));
    }
    Ok(documents)
}

/// The `"text"` of every record of a JSONL file.
fn read_text_jsonl(path: &Path) -> anyhow::Result<Vec<String>> {
    for_each_record(path, |record| match record.get("text") {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(other) => bail!(
            "expected \"text\" to be a string, found {}",
            type_name(other)
        ),
        None => bail!("expected {{\"text\": ...}}, found keys {}", keys_of(record)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gptlab-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(name: &str, contents: &[u8]) -> PathBuf {
        let path = dir().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn txt_is_one_document_and_jsonl_one_per_line() {
        let txt = write("one.txt", "第一行\n第二行\n".as_bytes());
        let jsonl = write(
            "many.jsonl",
            b"{\"text\": \"a\", \"source\": \"x\"}\n\n{\"text\": \"b\\nc\"}\n",
        );
        let docs = read_text_corpus(&[txt, jsonl]).unwrap();
        assert_eq!(docs, vec!["第一行\n第二行\n", "a", "b\nc"]);
    }

    #[test]
    fn invalid_utf8_names_file_line_and_offset() {
        let path = write("bad.txt", b"ok\nfine\nbro\xffken\n");
        let err = read_text_corpus(&[path]).unwrap_err().to_string();
        assert!(
            err.contains("bad.txt:3:") && err.contains("byte offset 11"),
            "{err}"
        );
    }

    #[test]
    fn empty_data_is_an_error_naming_the_files() {
        let a = write("blank.txt", b" \n\t\n");
        let b = write("blank.jsonl", b"{\"text\": \"  \"}\n");
        let err = read_text_corpus(&[a, b]).unwrap_err().to_string();
        assert!(
            err.contains("blank.txt") && err.contains("blank.jsonl"),
            "{err}"
        );
    }

    #[test]
    fn jsonl_without_text_field_names_the_line() {
        let path = write(
            "notext.jsonl",
            b"{\"text\": \"a\"}\n{\"prompt\": \"q\", \"completion\": \"a\"}\n",
        );
        let err = read_text_corpus(&[path]).unwrap_err().to_string();
        assert!(
            err.contains("notext.jsonl:2:") && err.contains("\"text\""),
            "{err}"
        );
        assert!(
            err.contains("[\"completion\", \"prompt\"]") || err.contains("completion"),
            "{err}"
        );
    }

    #[test]
    fn other_extensions_are_rejected() {
        let path = write("data.csv", b"a,b\n");
        let err = read_text_corpus(&[path]).unwrap_err().to_string();
        assert!(
            err.contains("data.csv") && err.contains(".txt or .jsonl"),
            "{err}"
        );
    }
}
