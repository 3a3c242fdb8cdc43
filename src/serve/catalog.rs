//! The stages a `gptlab serve` offers: the finished stages of one run folder, read from its
//! `meta.json`. Clients choose among these names; no request can name a file or a path.

use crate::infer::is_chat;
use crate::results::{done_marker, read_meta};
use crate::spec::StageKind;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One stage a client may ask for (`model` in the API).
#[derive(Clone, Debug, serde::Serialize)]
pub struct StageInfo {
    pub name: String,
    /// None when the run does not say.
    pub kind: Option<StageKind>,
    pub preset: String,
    /// The context it was trained with: prompt plus answer must fit in it.
    pub context: usize,
    #[serde(skip)]
    pub dir: PathBuf,
}

impl StageInfo {
    pub fn is_chat(&self) -> bool {
        is_chat(self.kind)
    }
}

/// The run's finished stages: those named in `only` (in that order), else every one that
/// generates text (reward models score answers; they are not offered unless named).
pub fn load_catalog(run: &Path, only: &[String]) -> Result<Vec<StageInfo>> {
    let meta = read_meta(run).with_context(|| {
        format!(
            "{} is not a gptlab run folder (no readable {})",
            run.display(),
            crate::results::META_FILE
        )
    })?;
    let finished: Vec<StageInfo> = meta
        .stages
        .iter()
        .filter(|s| done_marker(&run.join(&s.name)).is_file())
        .map(|s| StageInfo {
            name: s.name.clone(),
            kind: s.kind,
            preset: meta.preset.clone(),
            context: meta.block_size,
            dir: run.join(&s.name),
        })
        .collect();
    let names = || {
        finished
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if only.is_empty() {
        let stages: Vec<StageInfo> = finished
            .iter()
            .filter(|s| !matches!(s.kind, Some(StageKind::Reward | StageKind::Feedback)))
            .cloned()
            .collect();
        if stages.is_empty() {
            bail!(
                "{} has no finished stage to serve (finished: {})",
                run.display(),
                names()
            );
        }
        return Ok(stages);
    }
    only.iter()
        .map(|name| match finished.iter().find(|s| &s.name == name) {
            Some(s) => Ok(s.clone()),
            None => bail!(
                "--stages: `{name}` is not a finished stage of {}; finished: {}",
                run.display(),
                names()
            ),
        })
        .collect()
}
