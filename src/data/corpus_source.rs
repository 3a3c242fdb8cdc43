//! The sources of a pretraining mixture, read: plain text (`.txt`, `{"text"}` JSONL), and
//! conversations (`{"prompt","completion"}` / `{"messages"}` JSONL) that pretraining reads
//! through the chat template, as nanochat's midtraining does.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::jsonl::{read_sft, sniff_jsonl_kind, JsonlKind, SftExample};
use super::open::data_extension;
use super::paths::expand_paths;
use super::split::HeldOut;
use super::text::read_text_corpus;
use super::verse;
use crate::spec::Source;

/// One source of a pretraining mixture: its text documents, and its conversations split into
/// training and held-out ones (text is held out later, as the end of its token stream).
#[derive(Debug, Clone)]
pub struct CorpusSource {
    pub name: String,
    pub share: f64,
    pub text: Vec<String>,
    /// The held-out share of this source: of its text's tokens, and of its conversations.
    pub val_fraction: f64,
    pub chats: Vec<SftExample>,
    pub val_chats: Vec<SftExample>,
}

/// Reads `source`'s files. Conversations are held out as `held_out` says (with a `val_group`,
/// whole groups, so questions about a held-out poem stay out of pretraining too when the SFT
/// stage holds out the same groups with the same seed).
pub fn read_corpus_source(source: &Source, held_out: &HeldOut) -> Result<CorpusSource> {
    let held_out = HeldOut {
        fraction: source.val_fraction.unwrap_or(held_out.fraction),
        ..held_out.clone()
    };
    let (mut text_files, mut chat_files) = (Vec::new(), Vec::new());
    for file in expand_paths(&source.paths)? {
        let is_chat =
            data_extension(&file) == Some("jsonl") && sniff_jsonl_kind(&file)? == JsonlKind::Sft;
        match is_chat {
            true => chat_files.push(file),
            false => text_files.push(file),
        }
    }
    let mut text = match text_files.is_empty() {
        true => vec![],
        false => read_text_corpus(&text_files)?,
    };
    if let Some(transform) = source.transform {
        text = text.iter().map(|t| verse::apply(transform, t)).collect();
    }
    let (chats, val_chats) = read_chats(&chat_files, &held_out)?;
    Ok(CorpusSource {
        name: source.name.clone(),
        share: source.share,
        text,
        val_fraction: held_out.fraction,
        chats,
        val_chats,
    })
}

fn read_chats(files: &[PathBuf], held_out: &HeldOut) -> Result<(Vec<SftExample>, Vec<SftExample>)> {
    if files.is_empty() {
        return Ok((vec![], vec![]));
    }
    let mut all = Vec::new();
    for file in files {
        all.extend(read_sft(file)?);
    }
    held_out
        .split(all, files)
        .context("holding out conversations (val_fraction, val_group)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Transform;

    #[test]
    fn a_source_reads_text_and_conversations_and_holds_out_whole_groups() {
        let dir = tempfile::tempdir().unwrap();
        let poems = dir.path().join("poems.txt");
        std::fs::write(&poems, "《相思》 王维\n红豆生南国，春来发几枝。\n").unwrap();
        let qa = dir.path().join("qa.jsonl");
        let lines: String = (0..40)
            .map(|i| {
                format!(
                    "{{\"prompt\": \"q{i}\", \"completion\": \"a{i}\", \"group\": \"g{}\"}}\n",
                    i % 10
                )
            })
            .collect();
        std::fs::write(&qa, lines).unwrap();
        let source = Source {
            name: "mix".into(),
            share: 1.0,
            paths: vec![poems, qa],
            transform: Some(Transform::ReverseClauses),
            val_fraction: None,
        };
        let held_out = HeldOut {
            fraction: 0.2,
            seed: 3,
            group: Some("group".into()),
        };
        let read = read_corpus_source(&source, &held_out).unwrap();
        assert_eq!(read.text, vec!["《相思》 王维\n春来发几枝，红豆生南国。\n"]);
        assert_eq!((read.chats.len(), read.val_chats.len()), (32, 8));
        let group = |e: &SftExample| e.messages[0].content[1..].parse::<usize>().unwrap() % 10;
        let val: std::collections::HashSet<usize> = read.val_chats.iter().map(group).collect();
        assert!(read.chats.iter().all(|e| !val.contains(&group(e))));
    }
}
