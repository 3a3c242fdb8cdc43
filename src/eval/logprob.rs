//! Log-probabilities of answers: the sum of log p over the answer's tokens (the loss-mask
//! positions of a tokenised conversation). Preference accuracy of a language model and DPO's
//! reference terms both use it.

use crate::data::batches::{pad_examples, Example};
use crate::model::{Backend, LanguageModel};
use crate::train::loss::token_logprobs;

/// Sum of answer-token log-probabilities of each example.
pub fn answer_logprobs<D: Backend>(
    model: &dyn LanguageModel<D>,
    examples: &[&Example],
    pad: u32,
) -> Vec<f64> {
    let dev = model.device();
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(16) {
        let b = pad_examples(chunk, pad);
        let x = dev.tensor_from_vec(b.inputs.clone(), (b.batch, b.seq));
        let y = dev.tensor_from_vec(b.targets.clone(), (b.batch, b.seq));
        let lp = crate::util::readback::to_vec(&token_logprobs(model.logits(x), y));
        for row in 0..b.batch {
            let r = row * b.seq..(row + 1) * b.seq;
            out.push(
                lp[r.clone()]
                    .iter()
                    .zip(&b.mask[r])
                    .filter(|(_, &m)| m)
                    .map(|(&v, _)| v as f64)
                    .sum(),
            );
        }
    }
    out
}
