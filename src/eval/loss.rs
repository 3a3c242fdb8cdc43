//! Loss over held-out text: negative log-likelihood, tokens and bytes over evenly spaced
//! windows of a token stream (pretraining's val/loss and val/bpb, `gptlab eval` on text).

use crate::data::batches::{spaced_starts, windows_at};
use crate::model::{Backend, LanguageModel};
use crate::train::loss::token_logprobs;

/// Total negative log-likelihood (nats), target tokens and target bytes over `windows` evenly
/// spaced windows of a token stream.
pub fn stream_loss<D: Backend>(
    model: &dyn LanguageModel<D>,
    dev: &D,
    stream: &[u32],
    seq: usize,
    windows: usize,
    batch: usize,
    token_bytes: &[usize],
) -> (f64, usize, usize) {
    let seq = seq.min(stream.len() - 1);
    let starts = spaced_starts(stream.len(), seq, windows);
    let (mut nats, mut tokens, mut bytes) = (0.0, 0, 0);
    for chunk in starts.chunks(batch.max(1)) {
        let b = windows_at(stream, chunk, seq);
        let x = dev.tensor_from_vec(b.inputs.clone(), (b.batch, b.seq));
        let y = dev.tensor_from_vec(b.targets.clone(), (b.batch, b.seq));
        let lp = crate::util::readback::to_vec(&token_logprobs(model.logits(x), y));
        nats -= lp.iter().map(|&v| v as f64).sum::<f64>();
        tokens += lp.len();
        bytes += b
            .targets
            .iter()
            .map(|&t| token_bytes.get(t).copied().unwrap_or(0))
            .sum::<usize>();
    }
    (nats, tokens, bytes)
}
