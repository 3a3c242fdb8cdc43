//! Ratings, written in the formats a reward, DPO or KTO stage reads as data: a 👍/👎 is one
//! line of TRL's unpaired preference format (`feedback.jsonl`); a ranking of several answers is
//! every chosen/rejected pair it implies (`preferences.jsonl`). Each line also records the stage,
//! the time and the sampling settings. People write them through `gptlab serve` and
//! `gptlab chat`, simulated raters through a feedback stage: one writer, so the two are
//! interchangeable.

use crate::data::chat::Message;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The sampling settings an answer was produced with (as the client reports them).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingNote {
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<usize>,
    pub seed: Option<u64>,
}

/// What a rating line records besides the data itself.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    /// The stage that answered.
    pub stage: String,
    /// When a person rated (simulated raters leave it out, so a seed gives the same files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// Who rated when it was not a person: the judge and its noise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rater: Option<String>,
    pub sampling: SamplingNote,
}

#[derive(Serialize)]
struct FeedbackLine<'a> {
    prompt: &'a [Message],
    completion: [Message; 1],
    label: bool,
    #[serde(flatten)]
    about: &'a Provenance,
}

#[derive(Serialize)]
struct PreferenceLine<'a> {
    prompt: &'a [Message],
    chosen: [Message; 1],
    rejected: [Message; 1],
    #[serde(flatten)]
    about: &'a Provenance,
}

/// Every (chosen, rejected) pair a best-first ranking implies: each answer beats all below it.
pub fn ranking_pairs(ranking: &[String]) -> Vec<(&str, &str)> {
    let mut pairs = Vec::new();
    for (i, better) in ranking.iter().enumerate() {
        for worse in &ranking[i + 1..] {
            pairs.push((better.as_str(), worse.as_str()));
        }
    }
    pairs
}

/// Appends to a pair of rating files. One lock and one `write` per request, so lines from
/// concurrent requests never interleave and a ranking's pairs land together or not at all.
pub struct RatingWriter {
    /// 👍/👎 lines.
    feedback: PathBuf,
    /// Pairs from rankings.
    preferences: PathBuf,
    lock: Mutex<()>,
}

impl RatingWriter {
    pub fn new(feedback: &Path, preferences: &Path) -> RatingWriter {
        RatingWriter {
            feedback: feedback.to_path_buf(),
            preferences: preferences.to_path_buf(),
            lock: Mutex::new(()),
        }
    }

    /// A 👍 (`label`) or 👎 on one answer.
    pub fn rate(
        &self,
        prompt: &[Message],
        answer: &str,
        label: bool,
        about: &Provenance,
    ) -> Result<usize> {
        let line = FeedbackLine {
            prompt,
            completion: [Message::assistant(answer)],
            label,
            about,
        };
        self.append(&self.feedback, &[serde_json::to_string(&line)?])
    }

    /// A best-first ranking of answers to one prompt; returns how many pairs were written.
    pub fn rank(
        &self,
        prompt: &[Message],
        ranking: &[String],
        about: &Provenance,
    ) -> Result<usize> {
        let pairs: Vec<(String, String)> = ranking_pairs(ranking)
            .into_iter()
            .map(|(c, r)| (c.to_string(), r.to_string()))
            .collect();
        self.pairs(prompt, &pairs, about)
    }

    /// (chosen, rejected) pairs for one prompt, as one write.
    pub fn pairs(
        &self,
        prompt: &[Message],
        pairs: &[(String, String)],
        about: &Provenance,
    ) -> Result<usize> {
        let lines = pairs
            .iter()
            .map(|(chosen, rejected)| {
                serde_json::to_string(&PreferenceLine {
                    prompt,
                    chosen: [Message::assistant(chosen)],
                    rejected: [Message::assistant(rejected)],
                    about,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.append(&self.preferences, &lines)
    }

    fn append(&self, path: &Path, lines: &[String]) -> Result<usize> {
        if lines.is_empty() {
            return Ok(0);
        }
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot append to {}", path.display()))?;
        Ok(lines.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{read_preferences, PreferenceRecord};

    fn about() -> Provenance {
        Provenance {
            stage: "sft".into(),
            ts: Some("2026-01-01T00:00:00Z".into()),
            rater: None,
            sampling: SamplingNote {
                temperature: Some(0.7),
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_ranking_of_three_is_three_pairs_best_first() {
        let r: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(ranking_pairs(&r), [("a", "b"), ("a", "c"), ("b", "c")]);
    }

    #[test]
    fn written_lines_are_what_the_reward_stage_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (fb_path, pref_path) = (dir.path().join("fb.jsonl"), dir.path().join("p.jsonl"));
        let w = RatingWriter::new(&fb_path, &pref_path);
        let prompt = [Message::user("2+2?")];
        w.rate(&prompt, "4", true, &about()).unwrap();
        w.rate(&prompt, "5", false, &about()).unwrap();
        let ranking: Vec<String> = ["4", "four", "5"].map(String::from).to_vec();
        assert_eq!(w.rank(&prompt, &ranking, &about()).unwrap(), 3);

        let fb = read_preferences(&fb_path).unwrap();
        assert!(
            matches!(&fb[0], PreferenceRecord::Feedback(f) if f.label && f.completion[0].content == "4")
        );
        assert!(matches!(&fb[1], PreferenceRecord::Feedback(f) if !f.label));
        let prefs = read_preferences(&pref_path).unwrap();
        assert_eq!(prefs.len(), 3);
        assert!(matches!(&prefs[2], PreferenceRecord::Pair(p)
            if p.chosen[0].content == "four" && p.rejected[0].content == "5" && p.prompt == prompt));
        let first: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(&fb_path)
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(first["stage"], "sft");
        assert_eq!(first["sampling"]["temperature"], 0.7);
    }
}
