//! One generation request on a worker: `n` samples of a prompt at once through the KV-cached
//! sampler, turned into text deltas as tokens arrive, cut at stop ids and stop strings.
//! Events go to the HTTP handler through a channel; when the client has gone (the channel is
//! closed) generation stops at the next token.

use crate::model::generate::generate_with;
use crate::model::sample::SampleOptions;
use crate::model::LanguageModel;
use crate::tokenizer::Tokenizer;
use dfdx::tensor::Cpu;
use rand::SeedableRng;

/// A validated request, ready for the model.
#[derive(Clone, Debug)]
pub struct GenParams {
    pub prompt: Vec<u32>,
    pub n: usize,
    /// `stop` holds the ids that end an answer (end of turn / end of text).
    pub sampling: SampleOptions,
    pub stop_strings: Vec<String>,
    pub seed: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GenEvent {
    /// More text of answer `index`.
    Text { index: usize, text: String },
    /// Answer `index` is complete: `stop` (an end token or stop string) or `length`.
    Finish {
        index: usize,
        reason: &'static str,
        tokens: usize,
    },
}

/// One answer's progress: its ids, how much of its text was sent, whether it is complete.
#[derive(Default)]
struct Answer {
    ids: Vec<u32>,
    sent: usize,
    done: bool,
}

/// Runs `p` and hands every event to `emit`, which returns false once nobody listens.
pub fn run_generation(
    model: &dyn LanguageModel<Cpu>,
    tok: &Tokenizer,
    p: &GenParams,
    emit: &mut dyn FnMut(GenEvent) -> bool,
) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p.seed);
    let mut answers: Vec<Answer> = (0..p.n).map(|_| Answer::default()).collect();
    let mut listening = true;
    let mut on_step = |step: &[Option<u32>]| {
        for (index, id) in step.iter().enumerate() {
            let (Some(id), a) = (id, &mut answers[index]) else {
                continue;
            };
            if a.done || !listening {
                continue;
            }
            if p.sampling.stop.contains(id) {
                listening &= finish(a, index, "stop", tok, &p.stop_strings, emit);
                continue;
            }
            a.ids.push(*id);
            listening &= advance(a, index, tok, &p.stop_strings, emit);
        }
        listening && answers.iter().any(|a| !a.done)
    };
    let vocab = tok.vocab_size();
    generate_with(
        model,
        &p.prompt,
        p.n,
        vocab,
        &p.sampling,
        &mut rng,
        &mut on_step,
    );
    for (index, a) in answers.iter_mut().enumerate() {
        if !a.done && listening {
            listening &= finish(a, index, "length", tok, &p.stop_strings, emit);
        }
    }
}

/// Sends the answer's new text, holding back what might be the start of a stop string or of
/// a character still being assembled from bytes; finishes the answer at a stop string.
fn advance(
    a: &mut Answer,
    index: usize,
    tok: &Tokenizer,
    stops: &[String],
    emit: &mut dyn FnMut(GenEvent) -> bool,
) -> bool {
    let text = tok.decode(&a.ids);
    if let Some(cut) = stops.iter().filter_map(|s| text.find(s.as_str())).min() {
        let ok = send(a, index, &text[..cut.max(a.sent)], emit);
        a.done = true;
        return ok
            && emit(GenEvent::Finish {
                index,
                reason: "stop",
                tokens: a.ids.len(),
            });
    }
    let mut end = text.len() - held_back(&text, stops);
    if text[..end].ends_with('\u{FFFD}') {
        end -= '\u{FFFD}'.len_utf8();
    }
    send(a, index, &text[..end.max(a.sent)], emit)
}

/// Sends everything not sent yet and the finish event.
fn finish(
    a: &mut Answer,
    index: usize,
    reason: &'static str,
    tok: &Tokenizer,
    stops: &[String],
    emit: &mut dyn FnMut(GenEvent) -> bool,
) -> bool {
    let text = tok.decode(&a.ids);
    let end = stops
        .iter()
        .filter_map(|s| text.find(s.as_str()))
        .min()
        .unwrap_or(text.len());
    a.done = true;
    send(a, index, &text[..end.max(a.sent)], emit)
        && emit(GenEvent::Finish {
            index,
            reason,
            tokens: a.ids.len(),
        })
}

fn send(a: &mut Answer, index: usize, upto: &str, emit: &mut dyn FnMut(GenEvent) -> bool) -> bool {
    if upto.len() <= a.sent {
        return true;
    }
    let text = upto[a.sent..].to_string();
    a.sent = upto.len();
    emit(GenEvent::Text { index, text })
}

/// Bytes at the end of `text` that begin some stop string (they may be the start of one).
fn held_back(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|s| {
            (1..s.len())
                .filter(|&k| s.is_char_boundary(k) && text.ends_with(&s[..k]))
                .max()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_back_is_the_longest_stop_prefix_at_the_end() {
        let stops = vec!["END".to_string(), "。。".to_string()];
        assert_eq!(held_back("abcE", &stops), 1);
        assert_eq!(held_back("abcEN", &stops), 2);
        assert_eq!(held_back("abc", &stops), 0);
        assert_eq!(held_back("好。", &stops), "。".len());
    }
}
