//! Everything a report shows, read from one results run folder. Every file is optional:
//! a missing file leaves its part empty, a malformed one is an error naming file and line.

use crate::results::{
    self, read_metrics_csv, read_summary, MetricsTable, ProbeLine, RunMeta, SampleLine, StageMeta,
};
use crate::spec::conversation_key;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

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
    pub meta: Option<RunMeta>,
    /// `summary.json`: stage → metric → final value.
    pub summary: results::Summary,
    /// In the order they ran (meta.json), then any other stage folders by name.
    pub stages: Vec<Stage>,
    pub samples: Vec<SampleLine>,
    pub probes: Vec<ProbeLine>,
}

impl RunData {
    pub fn load(dir: &Path) -> Result<RunData> {
        if !dir.is_dir() {
            anyhow::bail!("{} is not a folder", dir.display());
        }
        let spec_path = dir.join(results::SPEC_FILE);
        let spec_text = read_optional(&spec_path)?;
        let spec = match &spec_text {
            Some(text) => Some(
                toml::from_str::<toml::Table>(text)
                    .with_context(|| format!("{}: not valid TOML", spec_path.display()))?,
            ),
            None => None,
        };
        let meta: Option<RunMeta> = read_json(&dir.join(results::META_FILE))?;
        let summary = read_summary(dir)?;
        let stages = load_stages(dir, meta.as_ref(), spec.as_ref())?;
        let samples = read_jsonl(&dir.join(results::SAMPLES_FILE))?;
        let probes = read_jsonl(&dir.join(results::PROBES_FILE))?;
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

    /// A list of strings under `[report]` in the saved spec (empty when absent).
    fn report_strings(&self, key: &str) -> Vec<String> {
        self.report_table()
            .and_then(|r| r.get(key))
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The probes of `prompt` (a row per stage), and every candidate any of them scored, in
    /// the order first seen.
    pub fn probe_rows(&self, prompt: &str) -> (Vec<&ProbeLine>, Vec<&str>) {
        let rows: Vec<&ProbeLine> = self.probes.iter().filter(|p| p.prompt == prompt).collect();
        let mut candidates: Vec<&str> = Vec::new();
        for r in &rows {
            for c in &r.candidates {
                if !candidates.contains(&c.text.as_str()) {
                    candidates.push(&c.text);
                }
            }
        }
        (rows, candidates)
    }

    /// The prompts of the side-by-side table: `[report].prompts`, then any other prompt that
    /// has samples, in the order first seen.
    pub fn prompts(&self) -> Vec<String> {
        let mut prompts: Vec<String> = self
            .report_prompts()
            .iter()
            .map(|turns| conversation_key(turns))
            .collect();
        for s in &self.samples {
            if !prompts.contains(&s.prompt) {
                prompts.push(s.prompt.clone());
            }
        }
        prompts
    }

    /// `[report].prompts` of the saved spec as turns: a plain prompt is one turn, a
    /// conversation its list.
    fn report_prompts(&self) -> Vec<Vec<String>> {
        let Some(list) = self
            .report_table()
            .and_then(|r| r.get("prompts"))
            .and_then(|p| p.as_array())
        else {
            return Vec::new();
        };
        let strings = |v: &toml::Value| -> Option<Vec<String>> {
            match v {
                toml::Value::String(s) => Some(vec![s.clone()]),
                toml::Value::Array(a) => a.iter().map(|t| t.as_str().map(str::to_string)).collect(),
                _ => None,
            }
        };
        list.iter().filter_map(strings).collect()
    }

    /// The turns of the prompt named `key` (a conversation's, or the prompt alone).
    pub fn turns(&self, key: &str) -> Vec<String> {
        let sampled = self
            .samples
            .iter()
            .find(|s| s.prompt == key && !s.turns.is_empty());
        if let Some(s) = sampled {
            return s.turns.clone();
        }
        self.report_prompts()
            .into_iter()
            .find(|t| conversation_key(t) == key)
            .unwrap_or_else(|| vec![key.to_string()])
    }

    /// The stages compared side by side: `[report].compare`, else every stage with samples.
    pub fn compared_stages(&self) -> Vec<String> {
        let listed = self.report_strings("compare");
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

/// summary.json's value, else the last value in metrics.csv.
pub fn final_metric(run: &RunData, stage: &str, metric: &str) -> Option<f64> {
    run.summary
        .get(stage)
        .and_then(|m| m.get(metric).copied())
        .or_else(|| {
            run.stages
                .iter()
                .find(|s| s.name == stage)?
                .metrics
                .as_ref()?
                .last(metric)
        })
}

/// Every stage of every run, in the order the runs ran them.
pub fn stage_names(runs: &[RunData]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        for s in &r.stages {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
    }
    names
}

fn load_stages(
    dir: &Path,
    meta: Option<&RunMeta>,
    spec: Option<&toml::Table>,
) -> Result<Vec<Stage>> {
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
        .filter(|e| e.path().join(results::METRICS_FILE).is_file())
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
        let csv = dir.join(&name).join(results::METRICS_FILE);
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
            .and_then(|c| c.kind)
            .map(|k| k.as_str().to_string())
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
