//! The records a stage reads: its training and validation split (`val_data`, else a held-out
//! fraction of records or of their groups; weighted sources split and resampled each on its
//! own), and their texts, which the tokenizer is trained on. Both the stage dispatch in
//! `mod.rs` and the RLHF methods in `rlhf/` read through it.

use crate::data::mixture::{resample_by_share, SourceSize};
use crate::data::{self, PreferenceRecord, PromptExample};
use crate::spec::{sources_of, Stage};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Training and validation records: `val_data` when written, else `val_fraction` of the data
/// (of its records, or of its groups of records with `val_group`).
pub struct Split<'a> {
    pub stage: &'a Stage,
    pub seed: u64,
    pub locate: &'a dyn Fn(&str) -> String,
}

impl Split<'_> {
    pub(super) fn read<T>(
        &self,
        paths: &[PathBuf],
        key: &str,
        read: fn(&Path) -> Result<Vec<T>>,
    ) -> Result<(Vec<T>, Vec<T>)> {
        let all = read_many(paths, read).with_context(|| (self.locate)(key))?;
        match &self.stage.val_data {
            Some(_) => Ok((all, self.read_val_data(read)?)),
            None => self.split(all, paths, self.stage.val_fraction),
        }
    }

    /// The stage's `data` records; for weighted entries, each source read and split on its
    /// own (by its `val_fraction`, else the stage's), then resampled so that each holds its
    /// share of the training records.
    pub(super) fn read_mixture<T: Clone>(
        &self,
        read: fn(&Path) -> Result<Vec<T>>,
    ) -> Result<(Vec<T>, Vec<T>, Vec<SourceSize>)> {
        let Some(sources) = sources_of(&self.stage.data) else {
            let (train, val) = self.read(&self.stage.data_paths(), "data", read)?;
            return Ok((train, val, vec![]));
        };
        let (mut trains, mut val, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for source in &sources {
            let all = read_many(&source.paths, read).with_context(|| (self.locate)("data"))?;
            let train = match &self.stage.val_data {
                Some(_) => all,
                None => {
                    let fraction = source.val_fraction.unwrap_or(self.stage.val_fraction);
                    let (train, v) = self.split(all, &source.paths, fraction)?;
                    val.extend(v);
                    train
                }
            };
            sizes.push(SourceSize {
                name: source.name.clone(),
                share: source.share,
                size: train.len(),
            });
            trains.push(train);
        }
        if self.stage.val_data.is_some() {
            val = self.read_val_data(read)?;
        }
        let shares: Vec<f64> = sources.iter().map(|s| s.share).collect();
        let train = resample_by_share(trains, &shares, self.seed);
        Ok((train, val, sizes))
    }

    pub(super) fn read_val_data<T>(&self, read: fn(&Path) -> Result<Vec<T>>) -> Result<Vec<T>> {
        let paths = self.stage.val_data.as_slice();
        read_many(paths, read).with_context(|| (self.locate)("val_data"))
    }

    /// `(train, val)` of `items` read from `paths`, holding out `fraction` of them (or of
    /// their groups, with `val_group`).
    pub(super) fn split<T>(
        &self,
        items: Vec<T>,
        paths: &[PathBuf],
        fraction: f64,
    ) -> Result<(Vec<T>, Vec<T>)> {
        self.held_out(fraction)
            .split(items, paths)
            .with_context(|| (self.locate)("val_group"))
    }

    pub(super) fn held_out(&self, fraction: f64) -> data::HeldOut {
        data::HeldOut {
            fraction,
            seed: self.seed,
            group: self.stage.val_group.clone(),
        }
    }
}

/// The messages of preference pairs and of 👍/👎 answers.
pub(super) fn preference_texts<'a>(
    train: &'a [PreferenceRecord],
    val: &'a [PreferenceRecord],
) -> Vec<&'a str> {
    train
        .iter()
        .chain(val)
        .flat_map(|r| match r {
            PreferenceRecord::Pair(p) => p
                .prompt
                .iter()
                .chain(&p.chosen)
                .chain(&p.rejected)
                .collect::<Vec<_>>(),
            PreferenceRecord::Feedback(f) => f.prompt.iter().chain(&f.completion).collect(),
        })
        .map(|m| m.content.as_str())
        .collect()
}

/// The prompts' messages and their references.
pub(super) fn prompt_texts<'a>(
    train: &'a [PromptExample],
    val: &'a [PromptExample],
) -> Vec<&'a str> {
    train
        .iter()
        .chain(val)
        .flat_map(|p| {
            p.prompt
                .iter()
                .map(|m| m.content.as_str())
                .chain(p.reference.as_deref())
        })
        .collect()
}

fn read_many<T>(paths: &[PathBuf], read: fn(&Path) -> Result<Vec<T>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for p in data::expand_paths(paths)? {
        out.extend(read(&p)?);
    }
    Ok(out)
}
