//! Turning token data into training batches: documents into one token stream, random windows
//! of it (pretraining) and padded conversations with a loss mask (SFT). Sampling draws only
//! from the loop's RNG, so a resumed run sees exactly the batches an uninterrupted one would.

use super::mixture::Picker;
use crate::tokenizer::{Special, Tokenizer};
use rand::Rng;

/// Inputs, targets and a 0/1 mask over targets, all `batch * seq`, row-major.
pub struct Batch {
    pub batch: usize,
    pub seq: usize,
    pub inputs: Vec<usize>,
    pub targets: Vec<usize>,
    pub mask: Vec<bool>,
}

impl Batch {
    /// Inputs and targets as `(batch, seq)` id tensors on `dev`.
    pub fn tensors<D: dfdx::tensor_ops::Device<f32>>(
        &self,
        dev: &D,
    ) -> (
        dfdx::tensor::Tensor<(usize, usize), usize, D>,
        dfdx::tensor::Tensor<(usize, usize), usize, D>,
    ) {
        let shape = (self.batch, self.seq);
        (
            dev.tensor_from_vec(self.inputs.clone(), shape),
            dev.tensor_from_vec(self.targets.clone(), shape),
        )
    }
}

/// Documents joined into one stream, separated by end-of-text.
pub fn token_stream(tok: &Tokenizer, docs: &[String]) -> Vec<u32> {
    let eot = tok.special(Special::EndOfText);
    let mut out = Vec::new();
    for d in docs {
        out.extend(tok.encode(d));
        out.push(eot);
    }
    out
}

/// `batch` random windows of `seq + 1` tokens from `stream`.
pub fn random_windows(stream: &[u32], batch: usize, seq: usize, rng: &mut impl Rng) -> Batch {
    let starts: Vec<usize> = (0..batch)
        .map(|_| rng.gen_range(0..stream.len() - seq))
        .collect();
    windows_at(stream, &starts, seq)
}

/// `batch` random windows of `seq + 1` tokens, each from a stream drawn by share
/// (`cumulative`: running sums of the shares, see [`Picker::pick_source`]).
pub fn mixture_windows<S: AsRef<[u32]>>(
    streams: &[S],
    cumulative: &[f64],
    batch: usize,
    seq: usize,
    rng: &mut impl Rng,
) -> Batch {
    let mut inputs = Vec::with_capacity(batch * seq);
    let mut targets = Vec::with_capacity(batch * seq);
    for _ in 0..batch {
        let stream = streams[Picker::pick_source(cumulative, rng)].as_ref();
        let s = rng.gen_range(0..stream.len() - seq);
        inputs.extend(stream[s..s + seq].iter().map(|&t| t as usize));
        targets.extend(stream[s + 1..s + seq + 1].iter().map(|&t| t as usize));
    }
    Batch {
        batch,
        seq,
        mask: vec![true; inputs.len()],
        inputs,
        targets,
    }
}

/// Windows starting at the given offsets (evaluation uses fixed, evenly spaced offsets).
pub fn windows_at(stream: &[u32], starts: &[usize], seq: usize) -> Batch {
    let mut inputs = Vec::with_capacity(starts.len() * seq);
    let mut targets = Vec::with_capacity(starts.len() * seq);
    for &s in starts {
        inputs.extend(stream[s..s + seq].iter().map(|&t| t as usize));
        targets.extend(stream[s + 1..s + seq + 1].iter().map(|&t| t as usize));
    }
    Batch {
        batch: starts.len(),
        seq,
        mask: vec![true; inputs.len()],
        inputs,
        targets,
    }
}

/// Evenly spaced window starts covering the stream, for deterministic evaluation.
pub fn spaced_starts(stream_len: usize, seq: usize, count: usize) -> Vec<usize> {
    let last = stream_len.saturating_sub(seq + 1);
    (0..count)
        .map(|i| {
            if count <= 1 {
                0
            } else {
                i * last / (count - 1)
            }
        })
        .collect()
}

/// One tokenised conversation: ids and which of them are training targets.
#[derive(Clone, Debug)]
pub struct Example {
    pub ids: Vec<u32>,
    pub loss_mask: Vec<bool>,
}

/// Pads the given examples into one batch; targets are the next ids, masked by the example's
/// loss mask, and padding carries no loss.
pub fn pad_examples(examples: &[&Example], pad: u32) -> Batch {
    let seq = examples
        .iter()
        .map(|e| e.ids.len() - 1)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut b = Batch {
        batch: examples.len(),
        seq,
        inputs: vec![],
        targets: vec![],
        mask: vec![],
    };
    for e in examples {
        let n = e.ids.len() - 1;
        b.inputs.extend(e.ids[..n].iter().map(|&t| t as usize));
        b.targets.extend(e.ids[1..].iter().map(|&t| t as usize));
        b.mask.extend(&e.loss_mask[1..]);
        for _ in n..seq {
            b.inputs.push(pad as usize);
            b.targets.push(pad as usize);
            b.mask.push(false);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_shift_targets_by_one() {
        let stream: Vec<u32> = (0..20).collect();
        let b = windows_at(&stream, &[3, 10], 4);
        assert_eq!(b.inputs, vec![3, 4, 5, 6, 10, 11, 12, 13]);
        assert_eq!(b.targets, vec![4, 5, 6, 7, 11, 12, 13, 14]);
    }

    #[test]
    fn padding_carries_no_loss_and_prompt_mask_is_kept() {
        let a = Example {
            ids: vec![4, 10, 11, 6, 5, 20, 6],
            loss_mask: vec![false, false, false, false, false, true, true],
        };
        let b = Example {
            ids: vec![4, 12, 6, 5, 21],
            loss_mask: vec![false, false, false, false, true],
        };
        let batch = pad_examples(&[&a, &b], 0);
        assert_eq!(batch.seq, 6);
        assert_eq!(batch.mask[..6], [false, false, false, false, true, true]);
        assert_eq!(batch.mask[6..], [false, false, false, true, false, false]);
        assert_eq!(batch.targets[6..10], [12, 6, 5, 21]);
    }
}
