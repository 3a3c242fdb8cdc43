//! A feedback stage: simulated raters. The `from` assistant answers each training prompt
//! `samples` times; a judge (`[judges.NAME]`, the rater's taste) rates every answer 👍/👎 and
//! ranks each prompt's answers, and with probability `noise` a rater gets a label or a pair the
//! wrong way round (AlpacaFarm's simulated annotators flipped 25%). The ratings go to the
//! stage folder as `feedback.jsonl` and `preferences.jsonl`, the very lines `gptlab serve`
//! writes when a person clicks, so a later reward, DPO or KTO stage trains on either.
//! Nothing is trained here; the same seed writes the same files.

use super::StageEnv;
use crate::data::chat::Message;
use crate::data::ratings::{Provenance, RatingWriter, SamplingNote};
use crate::data::PromptExample;
use crate::eval::answers::last_user_turn;
use crate::eval::judge::Judge;
use crate::infer::{Ask, Prompt};
use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel};
use crate::results::{MetricsWriter, FEEDBACK_FILE, METRICS_FILE, PREFERENCES_FILE};
use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// How the simulated raters work.
pub struct Raters<'a> {
    pub judge: &'a Judge,
    /// Answers sampled (and ranked) per prompt.
    pub samples: usize,
    /// The probability that a rater flips a 👍/👎 or a pair.
    pub noise: f64,
    pub sampling: SampleOptions,
    /// The stage that answered, recorded in every line.
    pub from: &'a str,
}

/// One prompt's ratings: each answer with its (noisy) label, and the (chosen, rejected) pairs
/// its ranking implies, best first; with how many labels and pairs were flipped.
#[derive(Debug, Default, PartialEq)]
pub struct Ratings {
    pub labels: Vec<(String, bool)>,
    pub pairs: Vec<(String, String)>,
    pub flipped_labels: usize,
    pub flipped_pairs: usize,
    /// The judge's clean scores of the answers.
    pub scores: Vec<f64>,
}

/// Rates `answers` to `prompt` as a noisy rater would. None when the judge does not apply to
/// the prompt (a rater with no opinion rates nothing). Answers the judge scores equally form
/// no pair: the ranking only orders what the rater can tell apart.
pub fn rate_answers(
    judge: &Judge,
    prompt: &str,
    answers: &[String],
    noise: f64,
    rng: &mut impl Rng,
) -> Option<Ratings> {
    let scores: Vec<f64> = answers
        .iter()
        .map(|a| judge.score(prompt, a))
        .collect::<Option<_>>()?;
    let mut r = Ratings {
        scores: scores.clone(),
        ..Default::default()
    };
    for (answer, score) in answers.iter().zip(&scores) {
        let flip = rng.gen_bool(noise);
        r.flipped_labels += flip as usize;
        r.labels
            .push((answer.clone(), (*score >= judge.threshold()) != flip));
    }
    let mut order: Vec<usize> = (0..answers.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    for (k, &better) in order.iter().enumerate() {
        for &worse in &order[k + 1..] {
            if scores[better] == scores[worse] || answers[better] == answers[worse] {
                continue;
            }
            let flip = rng.gen_bool(noise);
            r.flipped_pairs += flip as usize;
            let (chosen, rejected) = if flip {
                (worse, better)
            } else {
                (better, worse)
            };
            r.pairs
                .push((answers[chosen].clone(), answers[rejected].clone()));
        }
    }
    Some(r)
}

/// What the stage did, for its metrics and its record.
#[derive(Debug, Default)]
pub struct Summary {
    pub prompts: usize,
    pub labels: usize,
    pub thumbs_up: usize,
    pub pairs: usize,
    pub flipped_labels: usize,
    pub flipped_pairs: usize,
    pub score_sum: f64,
    /// Generated tokens, for the stage record.
    pub tokens: u64,
    pub wall_s: f64,
}

/// Samples, rates and writes the stage's two files (atomically: written aside, then renamed).
pub fn run<D: Backend>(
    env: &StageEnv<D>,
    model: &dyn LanguageModel<D>,
    raters: &Raters,
    prompts: &[PromptExample],
    seed: u64,
) -> Result<Summary> {
    let started = Instant::now();
    std::fs::create_dir_all(&env.dir)
        .with_context(|| format!("cannot create {}", env.dir.display()))?;
    let (feedback, preferences) = (env.dir.join(FEEDBACK_FILE), env.dir.join(PREFERENCES_FILE));
    let aside = |p: &std::path::Path| p.with_extension("jsonl.tmp");
    for p in [&feedback, &preferences] {
        let _ = std::fs::remove_file(aside(p));
    }
    let writer = RatingWriter::new(&aside(&feedback), &aside(&preferences));
    let about = provenance(raters);
    let mut summary = Summary::default();
    // Every prompt's answers are sampled together (prompt i from stream i of `seed`); the
    // raters' noise has a stream of its own.
    let asked: Vec<Prompt> = prompts
        .iter()
        .map(|p| Prompt::Chat(p.prompt.clone()))
        .collect();
    let sampled =
        Ask::new(model, env.tokenizer).samples(&asked, raters.samples, &raters.sampling, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::MAX);
    for (prompt, said) in prompts.iter().zip(sampled) {
        summary.tokens += said
            .iter()
            .map(|a| env.tokenizer.encode(a).len() as u64 + 1)
            .sum::<u64>();
        let text = last_user_turn(&prompt.prompt);
        let Some(r) = rate_answers(raters.judge, text, &said, raters.noise, &mut rng) else {
            continue;
        };
        record(&writer, &prompt.prompt, &r, &about, &mut summary)?;
    }
    for p in [&feedback, &preferences] {
        // A prompt set the judge never applies to still leaves (empty) files behind.
        if !aside(p).exists() {
            std::fs::write(aside(p), "")
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        std::fs::rename(aside(p), p).with_context(|| format!("cannot write {}", p.display()))?;
    }
    summary.wall_s = started.elapsed().as_secs_f64();
    write_metrics(env, &summary)?;
    Ok(summary)
}

fn record(
    writer: &RatingWriter,
    prompt: &[Message],
    r: &Ratings,
    about: &Provenance,
    summary: &mut Summary,
) -> Result<()> {
    for (answer, label) in &r.labels {
        writer.rate(prompt, answer, *label, about)?;
        summary.thumbs_up += *label as usize;
    }
    writer.pairs(prompt, &r.pairs, about)?;
    summary.prompts += 1;
    summary.labels += r.labels.len();
    summary.pairs += r.pairs.len();
    summary.flipped_labels += r.flipped_labels;
    summary.flipped_pairs += r.flipped_pairs;
    summary.score_sum += r.scores.iter().sum::<f64>();
    Ok(())
}

fn provenance(raters: &Raters) -> Provenance {
    let s = &raters.sampling;
    Provenance {
        stage: raters.from.to_string(),
        ts: None,
        rater: Some(format!(
            "judge {} with noise {}",
            raters.judge.name(),
            raters.noise
        )),
        sampling: SamplingNote {
            temperature: Some(s.temperature),
            top_k: Some(s.top_k),
            top_p: Some(s.top_p),
            max_tokens: Some(s.max_new_tokens),
            seed: None,
        },
    }
}

/// One row of metrics: what was rated, the judge's clean rate of the answers (`judge_rate`,
/// not `gold/rate`, which stands for a stage's held-out answers in summary.json), and how many
/// labels and pairs the noise flipped.
fn write_metrics<D: Backend>(env: &StageEnv<D>, s: &Summary) -> Result<()> {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let values = [
        ("prompts", s.prompts as f64),
        ("labels", s.labels as f64),
        ("pairs", s.pairs as f64),
        ("thumbs_up_rate", ratio(s.thumbs_up, s.labels)),
        (
            "judge_rate",
            if s.labels == 0 {
                0.0
            } else {
                s.score_sum / s.labels as f64
            },
        ),
        ("flip_rate", ratio(s.flipped_labels, s.labels)),
        ("pair_flip_rate", ratio(s.flipped_pairs, s.pairs)),
    ];
    let names: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
    let mut metrics = MetricsWriter::create(&env.dir.join(METRICS_FILE), &names)?;
    metrics.log(0, s.tokens, &values)?;
    metrics.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::JudgeSpec;

    fn judge() -> Judge {
        let spec = JudgeSpec {
            prefer: vec!["跑步".into()],
            avoid: vec!["骨头".into()],
            ..Default::default()
        };
        Judge::new("me", &spec).unwrap()
    }

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_clean_rater_labels_by_threshold_and_ranks_what_it_can_tell_apart() {
        // Scores: 跑步 1, 看书 0.5, 啃骨头 0, 跑步 again 1 (a tie with the first: no pair).
        let said = strings(&["我去跑步。", "我看书。", "我啃骨头。", "跑步!"]);
        let r = rate_answers(
            &judge(),
            "周末做什么?",
            &said,
            0.0,
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .unwrap();
        assert_eq!(r.scores, [1.0, 0.5, 0.0, 1.0]);
        let labels: Vec<bool> = r.labels.iter().map(|(_, l)| *l).collect();
        assert_eq!(labels, [true, true, false, true]);
        let pairs: Vec<(&str, &str)> = r
            .pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("我去跑步。", "我看书。"),
                ("我去跑步。", "我啃骨头。"),
                ("跑步!", "我看书。"),
                ("跑步!", "我啃骨头。"),
                ("我看书。", "我啃骨头。"),
            ]
        );
        assert_eq!((r.flipped_labels, r.flipped_pairs), (0, 0));
    }

    #[test]
    fn noise_flips_labels_and_pairs_at_its_rate() {
        let said = strings(&["我去跑步。", "我看书。", "我啃骨头。", "睡觉。"]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut flipped, mut total, mut flipped_pairs, mut pairs) = (0, 0, 0, 0);
        for _ in 0..2000 {
            let r = rate_answers(&judge(), "今天做什么?", &said, 0.25, &mut rng).unwrap();
            // The flipped labels are exactly those that disagree with the clean judge.
            let disagree = r
                .labels
                .iter()
                .zip(&r.scores)
                .filter(|((_, label), score)| *label != (**score >= 0.5))
                .count();
            assert_eq!(disagree, r.flipped_labels);
            flipped += r.flipped_labels;
            total += r.labels.len();
            flipped_pairs += r.flipped_pairs;
            pairs += r.pairs.len();
        }
        let rate = flipped as f64 / total as f64;
        let pair_rate = flipped_pairs as f64 / pairs as f64;
        // 8,000 labels: the standard error of 0.25 is 0.005.
        assert!((rate - 0.25).abs() < 0.02, "{rate}");
        assert!((pair_rate - 0.25).abs() < 0.02, "{pair_rate}");
    }

    #[test]
    fn a_judge_that_does_not_apply_rates_nothing() {
        let spec = JudgeSpec {
            prefer: vec!["跑步".into()],
            applies_to: Some("周末".into()),
            ..Default::default()
        };
        let judge = Judge::new("weekend", &spec).unwrap();
        let said = strings(&["跑步。"]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(rate_answers(&judge, "北京在哪里?", &said, 0.0, &mut rng).is_none());
    }
}
