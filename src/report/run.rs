//! Everything a report shows, read from one results run folder. Every file is optional:
//! a missing file leaves its part empty, a malformed one is an error naming file and line.

use super::metrics::{read_metrics_csv, MetricsTable};
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `meta.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Meta {
    pub name: String,
    pub run_id: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub complete: bool,
    pub git_rev: Option<String>,
    pub host: Option<String>,
    pub device: Option<String>,
    pub preset: Option<String>,
    pub params: Option<f64>,
    pub stages: Vec<StageMeta>,
}

/// One entry of `meta.json`'s `stages`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StageMeta {
    pub name: String,
    pub kind: String,
    pub tokens: Option<f64>,
    pub wall_s: Option<f64>,
    pub tok_per_sec: Option<f64>,
    pub steps: Option<f64>,
}

/// A line of `samples.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub stage: String,
    pub prompt: String,
    pub completion: String,
}

/// A line of `probes.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Probe {
    pub stage: String,
    pub prompt: String,
    #[serde(default)]
    pub top: Vec<TokenProb>,
    #[serde(default)]
    pub candidates: Vec<CandidateProb>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenProb {
    pub token: String,
    pub prob: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CandidateProb {
    pub text: String,
    pub prob: f64,
}

/// A stage as the report sees it.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    /// `pretrain`, `sft`, ... (empty when neither meta.json nor spec.toml says).
    pub kind: String,
    pub metrics: Option<MetricsTable>,
    pub cost: Option<StageMeta>,
}

#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub spec_text: Option<String>,
    pub spec: Option<toml::Table>,
    pub meta: Option<Meta>,
    /// `summary.json`: stage → metric → final value.
    pub summary: BTreeMap<String, BTreeMap<String, f64>>,
    /// In the order they ran (meta.json), then any other stage folders by name.
    pub stages: Vec<Stage>,
    pub samples: Vec<Sample>,
    pub probes: Vec<Probe>,
}

impl RunData {
    pub fn load(dir: &Path) -> Result<RunData> {
        if !dir.is_dir() {
            anyhow::bail!("{} is not a folder", dir.display());
        }
        let spec_text = read_optional(&dir.join("spec.toml"))?;
        let spec =
            match &spec_text {
                Some(text) => Some(toml::from_str::<toml::Table>(text).with_context(|| {
                    format!("{}: not valid TOML", dir.join("spec.toml").display())
                })?),
                None => None,
            };
        let meta: Option<Meta> = read_json(&dir.join("meta.json"))?;
        let summary = read_json::<BTreeMap<String, BTreeMap<String, Option<f64>>>>(
            &dir.join("summary.json"),
        )?
        .unwrap_or_default()
        .into_iter()
        .map(|(stage, m)| {
            (
                stage,
                m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect(),
            )
        })
        .collect();
        let stages = load_stages(dir, meta.as_ref(), spec.as_ref())?;
        let samples = read_jsonl(&dir.join("samples.jsonl"))?;
        let probes = read_jsonl(&dir.join("probes.jsonl"))?;
        Ok(RunData {
            dir: dir.to_path_buf(),
            spec_text,
            spec,
            meta,
            summary,
            stages,
            samples,
            probes,
        })
    }

    /// The experiment name: meta.json, else spec.toml, else the folder's parent's name.
    pub fn name(&self) -> String {
        self.meta
            .as_ref()
            .map(|m| m.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| self.spec_str("name"))
            .or_else(|| {
                self.dir
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_default()
    }

    /// The run id: meta.json, else the folder's name.
    pub fn run_id(&self) -> String {
        self.meta
            .as_ref()
            .map(|m| m.run_id.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| {
                self.dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_default()
    }

    fn spec_str(&self, key: &str) -> Option<String> {
        self.spec.as_ref()?.get(key)?.as_str().map(str::to_string)
    }

    fn report_table(&self) -> Option<&toml::Table> {
        self.spec.as_ref()?.get("report")?.as_table()
    }

    /// The prompts of the side-by-side table: `[report].prompts`, then any other prompt that
    /// has samples, in the order first seen.
    pub fn prompts(&self) -> Vec<String> {
        let mut prompts: Vec<String> = self
            .report_table()
            .and_then(|r| r.get("prompts"))
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for s in &self.samples {
            if !prompts.contains(&s.prompt) {
                prompts.push(s.prompt.clone());
            }
        }
        prompts
    }

    /// The stages compared side by side: `[report].compare`, else every stage with samples.
    pub fn compared_stages(&self) -> Vec<String> {
        let listed: Vec<String> = self
            .report_table()
            .and_then(|r| r.get("compare"))
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !listed.is_empty() {
            return listed;
        }
        let mut names: Vec<String> = self.stages.iter().map(|s| s.name.clone()).collect();
        for s in &self.samples {
            if !names.contains(&s.stage) {
                names.push(s.stage.clone());
            }
        }
        names.retain(|n| self.samples.iter().any(|s| &s.stage == n));
        names
    }

    pub fn completion(&self, stage: &str, prompt: &str) -> Option<&str> {
        self.samples
            .iter()
            .find(|s| s.stage == stage && s.prompt == prompt)
            .map(|s| s.completion.as_str())
    }

    /// The palette index of a stage (its position in the run), so it keeps one colour everywhere.
    pub fn stage_colour(&self, name: &str) -> usize {
        self.stages
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(self.stages.len())
    }

    pub fn stage_kind(&self, name: &str) -> &str {
        self.stages
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.kind.as_str())
            .unwrap_or("")
    }
}

fn load_stages(dir: &Path, meta: Option<&Meta>, spec: Option<&toml::Table>) -> Result<Vec<Stage>> {
    let mut names: Vec<String> = meta
        .map(|m| m.stages.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    let spec_stages: Vec<&toml::Table> = spec
        .and_then(|s| s.get("stages"))
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|t| t.as_table()).collect())
        .unwrap_or_default();
    for t in &spec_stages {
        if let Some(n) = t.get("name").and_then(|n| n.as_str()) {
            if !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
    }
    let mut folders: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("metrics.csv").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    for f in folders {
        if !names.contains(&f) {
            names.push(f);
        }
    }
    let mut stages = Vec::new();
    for name in names {
        let csv = dir.join(&name).join("metrics.csv");
        let metrics = if csv.is_file() {
            Some(read_metrics_csv(&csv)?)
        } else {
            None
        };
        let cost = meta
            .and_then(|m| m.stages.iter().find(|s| s.name == name))
            .cloned();
        let kind = cost
            .as_ref()
            .map(|c| c.kind.clone())
            .filter(|k| !k.is_empty())
            .or_else(|| {
                let t = spec_stages
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(&name))?;
                t.get("kind")?.as_str().map(str::to_string)
            })
            .unwrap_or_default();
        stages.push(Stage {
            name,
            kind,
            metrics,
            cost,
        });
    }
    Ok(stages)
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
    Ok(Some(value))
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let Some(text) = read_optional(path)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), i + 1, e.column()))?;
        out.push(item);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_folder_loads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunData::load(dir.path()).unwrap();
        assert!(run.stages.is_empty() && run.samples.is_empty() && run.meta.is_none());
        assert!(run.prompts().is_empty());
    }

    #[test]
    fn malformed_jsonl_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("samples.jsonl"),
            "{\"stage\":\"base\",\"prompt\":\"a\",\"completion\":\"b\"}\n{\"stage\":\"base\"}\n",
        )
        .unwrap();
        let err = format!("{:#}", RunData::load(dir.path()).unwrap_err());
        assert!(err.contains("samples.jsonl:2"), "{err}");
    }

    #[test]
    fn stage_order_follows_meta_then_folders() {
        let dir = tempfile::tempdir().unwrap();
        for s in ["aaa", "sft", "base"] {
            std::fs::create_dir(dir.path().join(s)).unwrap();
            std::fs::write(
                dir.path().join(s).join("metrics.csv"),
                "step,tokens,loss\n1,2,3\n",
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("meta.json"),
            r#"{"name":"x","run_id":"r1","complete":true,"stages":[{"name":"base","kind":"pretrain"},{"name":"sft","kind":"sft"}]}"#,
        )
        .unwrap();
        let run = RunData::load(dir.path()).unwrap();
        let names: Vec<&str> = run.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["base", "sft", "aaa"]);
        assert_eq!(run.stage_kind("base"), "pretrain");
    }
}
