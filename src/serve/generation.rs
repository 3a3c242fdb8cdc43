//! One generation request as the stage's batch runs it: its `n` answers are rows of the
//! worker's generator (see `worker.rs`), and the tokens they get are turned into text deltas,
//! cut at stop ids and stop strings. Events go to the HTTP handler through a channel; once
//! the client has gone (the channel is closed) the request's rows leave the batch.

use crate::model::generate::Request;
use crate::model::sample::SampleOptions;
use crate::tokenizer::Tokenizer;
use rand::{Rng, SeedableRng};

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

/// Where a request's events go; false once nobody listens.
pub type Emit = Box<dyn FnMut(GenEvent) -> bool + Send>;

/// One answer's progress: its ids, how much of its text was sent, whether it is complete.
#[derive(Default)]
struct Answer {
    ids: Vec<u32>,
    sent: usize,
    done: bool,
}

/// A request in the batch: its answers' progress and where their events go.
pub struct Generation {
    params: GenParams,
    emit: Emit,
    answers: Vec<Answer>,
    listening: bool,
}

impl Generation {
    pub fn new(params: GenParams, emit: Emit) -> Self {
        let answers = (0..params.n).map(|_| Answer::default()).collect();
        Self {
            params,
            emit,
            answers,
            listening: true,
        }
    }

    /// Rows it needs in the batch.
    pub fn n(&self) -> usize {
        self.params.n
    }

    /// One generator row per answer, each with its own stream drawn from the request's seed.
    pub fn requests(&self) -> Vec<Request> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.params.seed);
        (0..self.params.n)
            .map(|_| Request {
                prompt: self.params.prompt.clone(),
                opts: self.params.sampling.clone(),
                seed: rng.gen(),
            })
            .collect()
    }

    /// Answer `index` got `id`; `last` when the generator has no more for it. Returns whether
    /// that answer is complete (its row should leave the batch).
    pub fn on_token(&mut self, index: usize, id: u32, last: bool, tok: &Tokenizer) -> bool {
        let (a, p, emit) = (&mut self.answers[index], &self.params, &mut self.emit);
        if a.done {
            return true;
        }
        if p.sampling.stop.contains(&id) {
            self.listening &= finish(a, index, "stop", tok, &p.stop_strings, emit);
        } else {
            a.ids.push(id);
            self.listening &= advance(a, index, tok, &p.stop_strings, emit);
            if last && !a.done {
                self.listening &= finish(a, index, "length", tok, &p.stop_strings, emit);
            }
        }
        a.done
    }

    /// Nobody listens any more, or every answer is complete.
    pub fn is_over(&self) -> bool {
        !self.listening || self.answers.iter().all(|a| a.done)
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
