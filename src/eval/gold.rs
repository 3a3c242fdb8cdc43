//! Gold evaluation: a judge (`[judges.NAME]`: the rater's taste written down as a rule) scores
//! answers that a stage samples for held-out prompts. No stage optimised the judge, so it tells
//! real progress from a reward model's proxy being gamed (reward hacking).
//!
//! - the gold rate: the judge's mean score of a stage's answers;
//! - the win rate against a baseline stage (the SFT model): for each prompt the i-th answer of
//!   each stage meet, ties count a half; a bootstrap over prompts gives its 95% interval;
//! - the KL to the baseline per answer, in nats: the mean of log p_stage(a) − log p_base(a)
//!   over the stage's own answers a (Monte Carlo, exact in expectation when the answers are
//!   sampled at temperature 1 without top-k/top-p, as gold evaluation samples them:
//!   `spec::Sampling::gold`).

use super::answers::last_user_turn;
use super::judge::Judge;
use super::logprob::answer_logprobs;
use super::preference::{encode_answer, rewards};
use crate::data::batches::Example;
use crate::data::chat::{encode_chat, Message, Role};
use crate::infer::{Ask, Prompt};
use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel};
use crate::results::{gold_win_key, kl_key, GOLD_RATE};
use crate::tokenizer::{Special, Tokenizer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Each prompt's sampled answers, the same number for every prompt.
pub type Samples = Vec<Vec<String>>;

/// `n` answers for each conversation, all sampled together. Each prompt has its own random
/// stream, seeded by `seed` and its index, so every stage is asked under the same seeds,
/// whatever else it asks. A chat stage answers through the chat template; a base model
/// continues the last user turn.
pub fn sample_answers<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    conversations: &[Vec<Message>],
    chat: bool,
    n: usize,
    opts: &SampleOptions,
    seed: u64,
) -> Samples {
    let prompts: Vec<Prompt> = conversations
        .iter()
        .map(|messages| match chat {
            true => Prompt::Chat(messages.clone()),
            false => Prompt::Text(last_user_turn(messages).to_string()),
        })
        .collect();
    Ask::new(model, tok).samples(&prompts, n, opts, seed)
}

/// Each answer's judge score, `None` where the judge does not apply to the prompt.
pub fn scores(
    judge: &Judge,
    conversations: &[Vec<Message>],
    samples: &Samples,
) -> Vec<Vec<Option<f64>>> {
    conversations
        .iter()
        .zip(samples)
        .map(|(messages, answers)| {
            let prompt = last_user_turn(messages);
            answers.iter().map(|a| judge.score(prompt, a)).collect()
        })
        .collect()
}

/// The mean score over every answer the judge applies to; None when it applies to none.
pub fn gold_rate(scores: &[Vec<Option<f64>>]) -> Option<f64> {
    mean(scores.iter().flatten().flatten().copied())
}

/// A win rate with its bootstrap 95% interval, over `prompts` prompts.
#[derive(Clone, Debug, PartialEq)]
pub struct WinRate {
    pub rate: f64,
    pub low: f64,
    pub high: f64,
    pub prompts: usize,
}

/// How often `scores`' answers beat `baseline`'s (i-th answer against i-th answer of the same
/// prompt; a tie is half a win), with a bootstrap interval over prompts (2,000 resamples,
/// seeded). None when the judge applies to no prompt.
pub fn win_rate(
    scores: &[Vec<Option<f64>>],
    baseline: &[Vec<Option<f64>>],
    seed: u64,
) -> Option<WinRate> {
    let per_prompt: Vec<f64> = scores
        .iter()
        .zip(baseline)
        .filter_map(|(ours, theirs)| {
            let meetings = ours
                .iter()
                .zip(theirs)
                .filter_map(|(a, b)| Some(duel(a.as_ref()?, b.as_ref()?)));
            mean(meetings)
        })
        .collect();
    let rate = mean(per_prompt.iter().copied())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = per_prompt.len();
    let mut means: Vec<f64> = (0..2000)
        .map(|_| (0..n).map(|_| per_prompt[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Some(WinRate {
        rate,
        low: means[(0.025 * means.len() as f64) as usize],
        high: means[(0.975 * means.len() as f64) as usize - 1],
        prompts: n,
    })
}

/// 1 for a win, 0.5 for a tie, 0 for a loss.
fn duel(ours: &f64, theirs: &f64) -> f64 {
    match ours.total_cmp(theirs) {
        std::cmp::Ordering::Greater => 1.0,
        std::cmp::Ordering::Equal => 0.5,
        std::cmp::Ordering::Less => 0.0,
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

/// The mean over `samples` (a chat stage's answers) of log p_model(a) − log p_reference(a),
/// in nats per answer. Each answer is scored as the chat template closes it (with its end of
/// turn), cut from the left to fit the context like any prompt.
pub fn kl_per_answer<D: Backend>(
    model: &dyn LanguageModel<D>,
    reference: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    conversations: &[Vec<Message>],
    samples: &Samples,
) -> f64 {
    let n_ctx = model.config().n_ctx;
    let examples: Vec<Example> = conversations
        .iter()
        .zip(samples)
        .flat_map(|(messages, answers)| answers.iter().map(move |a| (messages, a)))
        .map(|(messages, answer)| {
            let mut all = messages.clone();
            all.push(Message {
                role: Role::Assistant,
                content: answer.clone(),
            });
            let chat = encode_chat(tok, &all);
            let cut = chat.ids.len().saturating_sub(n_ctx);
            Example {
                ids: chat.ids[cut..].to_vec(),
                loss_mask: chat.loss_mask[cut..].to_vec(),
            }
        })
        .collect();
    let refs: Vec<&Example> = examples.iter().collect();
    let pad = tok.special(Special::Pad);
    let ours = answer_logprobs(model, &refs, pad);
    let theirs = answer_logprobs(reference, &refs, pad);
    mean(ours.iter().zip(&theirs).map(|(a, b)| a - b)).unwrap_or(0.0)
}

/// A stage to judge, and how it is asked.
pub struct Asked<'a, D: Backend> {
    pub model: &'a dyn LanguageModel<D>,
    /// Through the chat template (else the raw question is continued).
    pub chat: bool,
}

/// `gptlab eval --judge`: `stage`'s gold rate and what its answers say (`diversity`) on
/// `conversations` (S answers each, sampled as `[report] eval` samples them, so the numbers
/// agree), and with a `baseline` (a name and
/// its stage) the win rate against it with its interval and the KL to it: the keys
/// summary.json uses.
#[allow(clippy::too_many_arguments)]
pub fn gold_numbers<D: Backend>(
    stage: Asked<D>,
    baseline: Option<(&str, Asked<D>)>,
    tok: &Tokenizer,
    judge: &Judge,
    conversations: &[Vec<Message>],
    samples: usize,
    opts: &SampleOptions,
    seeds: (u64, u64),
) -> std::collections::BTreeMap<String, f64> {
    let (sample_seed, bootstrap_seed) = seeds;
    let ask = |s: &Asked<D>| {
        sample_answers(
            s.model,
            tok,
            conversations,
            s.chat,
            samples,
            opts,
            sample_seed,
        )
    };
    let ours = ask(&stage);
    let our_scores = scores(judge, conversations, &ours);
    let mut out = std::collections::BTreeMap::new();
    if let Some(rate) = gold_rate(&our_scores) {
        out.insert(GOLD_RATE.to_string(), rate);
    }
    out.extend(super::diversity::diversity_numbers(
        judge,
        &our_scores,
        &ours,
    ));
    let Some((name, base)) = baseline else {
        return out;
    };
    let theirs = scores(judge, conversations, &ask(&base));
    if let Some(w) = win_rate(&our_scores, &theirs, bootstrap_seed) {
        let key = gold_win_key(name);
        out.insert(format!("{key}/low"), w.low);
        out.insert(format!("{key}/high"), w.high);
        out.insert(key, w.rate);
    }
    if stage.chat && base.chat {
        let kl = kl_per_answer(stage.model, base.model, tok, conversations, &ours);
        out.insert(kl_key(name), kl);
    }
    out
}

/// The reward model's score of every sampled answer (read at its last token, like a reward
/// stage scores pairs).
pub fn reward_scores<D: Backend>(
    reward_model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    conversations: &[Vec<Message>],
    samples: &Samples,
) -> Vec<Vec<f64>> {
    let n_ctx = reward_model.config().n_ctx;
    let pad = tok.special(Special::Pad);
    conversations
        .iter()
        .zip(samples)
        .map(|(c, answers)| {
            let rows: Vec<Vec<u32>> = answers
                .iter()
                .map(|a| {
                    let answer = [Message {
                        role: Role::Assistant,
                        content: a.clone(),
                    }];
                    encode_answer(tok, c, &answer, n_ctx)
                })
                .collect();
            let refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
            refs.chunks(16)
                .flat_map(|chunk| rewards(reward_model, chunk, pad))
                .map(|r| r as f64)
                .collect()
        })
        .collect()
}

/// Best-of-n: for each prompt, the one answer among its first `n` that the reward model
/// scores highest (the first of equals). Sampling n and keeping the best is what RLHF's
/// optimisation is measured against, with no training at all.
pub fn best_of_n(samples: &Samples, reward: &[Vec<f64>], n: usize) -> Samples {
    samples
        .iter()
        .zip(reward)
        .map(|(answers, scores)| {
            let n = n.min(answers.len());
            let best = (0..n).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
            vec![answers[best].clone()]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::JudgeSpec;

    fn judge() -> Judge {
        let spec = JudgeSpec {
            prefer: vec!["跑步".into()],
            ..Default::default()
        };
        Judge::new("runner", &spec).unwrap()
    }

    fn conv(text: &str) -> Vec<Message> {
        vec![Message {
            role: Role::User,
            content: text.into(),
        }]
    }

    #[test]
    fn best_of_n_keeps_the_reward_models_favourite_among_the_first_n() {
        let samples = vec![vec!["a".into(), "b".into(), "c".into(), "d".into()]];
        let reward = vec![vec![0.1, 0.5, 0.5, 0.9]];
        assert_eq!(best_of_n(&samples, &reward, 1), vec![vec!["a".to_string()]]);
        assert_eq!(best_of_n(&samples, &reward, 3), vec![vec!["b".to_string()]]);
        assert_eq!(
            best_of_n(&samples, &reward, 16),
            vec![vec!["d".to_string()]]
        );
    }

    #[test]
    fn gold_rate_is_the_mean_score_over_answers() {
        let convs = vec![conv("周末做什么?"), conv("早上做什么?")];
        let samples = vec![
            vec!["去跑步。".into(), "睡觉。".into()],
            vec!["跑步!".into(), "跑步。".into()],
        ];
        let s = scores(&judge(), &convs, &samples);
        assert_eq!(
            s,
            vec![vec![Some(1.0), Some(0.0)], vec![Some(1.0), Some(1.0)]]
        );
        assert_eq!(gold_rate(&s), Some(0.75));
    }

    #[test]
    fn win_rate_counts_ties_as_half_and_weighs_prompts_equally() {
        // Prompt 0: win, tie -> 0.75. Prompt 1: loss, loss -> 0. Prompt 2: the judge does not
        // apply, so it is left out. Mean over the two prompts: 0.375.
        let ours = vec![
            vec![Some(1.0), Some(0.0)],
            vec![Some(0.0), Some(0.5)],
            vec![None, None],
        ];
        let base = vec![
            vec![Some(0.0), Some(0.0)],
            vec![Some(1.0), Some(1.0)],
            vec![None, None],
        ];
        let w = win_rate(&ours, &base, 7).unwrap();
        assert_eq!((w.rate, w.prompts), (0.375, 2));
        // Resampling two prompts can only give 0, 0.375 or 0.75.
        assert!(
            w.low >= 0.0 && w.high <= 0.75 && w.low <= w.rate && w.rate <= w.high,
            "{w:?}"
        );
        assert_eq!(win_rate(&[vec![None]], &[vec![None]], 7), None);
    }

    #[test]
    fn the_interval_narrows_with_more_prompts_and_excludes_half_for_a_clear_winner() {
        let wins = |n: usize| -> Vec<Vec<Option<f64>>> {
            (0..n)
                .map(|i| vec![Some(if i % 5 == 0 { 0.0 } else { 1.0 })])
                .collect()
        };
        let zeros = |n: usize| vec![vec![Some(0.5)]; n];
        let small = win_rate(&wins(10), &zeros(10), 1).unwrap();
        let large = win_rate(&wins(400), &zeros(400), 1).unwrap();
        assert!((large.rate - 0.8).abs() < 1e-12);
        assert!(
            large.high - large.low < small.high - small.low,
            "{small:?} {large:?}"
        );
        assert!(large.low > 0.7 && large.high < 0.9, "{large:?}");
    }
}
