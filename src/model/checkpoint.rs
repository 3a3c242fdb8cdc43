//! Gradient checkpointing (Chen et al. 2016; `gradient_checkpointing=True` in transformers): a
//! block's forward that keeps only its input for the backward and runs the block again
//! there, with a tape, for its gradients. The activations of one block at a time wait for the
//! backward instead of every block's, for one more forward of the blocks per step.
//!
//! The second forward must repeat the first exactly, so a LoRA adapter's dropout (a fresh
//! mask per forward) cannot be checkpointed; the spec refuses the pair.

use super::adapters::BlockAdapters;
use super::block::Block;
use super::lora::{FrozenLinear, LoraRun};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

type Act<const M: usize, D, T> = Tensor<(usize, usize, Const<M>), f32, D, T>;

impl<const M: usize, const F: usize, D: Device<f32> + FrozenLinear> Block<M, F, D> {
    /// [`Block::forward`], recomputed in the backward.
    pub fn forward_checkpointed<T: Tape<f32, D>>(
        &self,
        x: Act<M, D, T>,
        lora: Option<(&BlockAdapters<M, F, D>, LoraRun)>,
    ) -> Act<M, D, T> {
        let dropout = lora.map_or(0.0, |(_, run)| run.dropout);
        assert!(
            !T::OWNS_TAPE || dropout == 0.0,
            "a checkpointed block cannot repeat LoRA dropout's mask in its second forward"
        );
        let (x, mut tape) = x.split_tape();
        let y = self.forward(x.clone(), lora);
        if !T::OWNS_TAPE {
            return y.put_tape(tape);
        }
        let (block, y_id) = (self.clone(), y.ghost());
        let lora = lora.map(|(adapters, run)| (adapters.clone(), run));
        tape.add_backward_op(move |grads| {
            let dy = grads.get(&y_id);
            // The block runs again on the same input (same tensor id) with the step's own
            // gradient table as its tape's: its backward, seeded with the output's gradient,
            // adds into the gradients of the input and of the block's parameters in place.
            let table = std::mem::replace(grads, Gradients::leaky());
            let lora = lora.as_ref().map(|(adapters, run)| (adapters, *run));
            let y = block.forward(x.traced(table), lora);
            *grads = (y * dy).try_sum()?.try_backward()?;
            Ok(())
        });
        y.put_tape(tape)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::gpt::Gpt;
    use crate::model::kernels::portable::with_portable;
    use crate::model::presets::model_config;
    use crate::model::raw::RawStorage;
    use crate::model::{LanguageModel, LoraSpec};
    use crate::train::loss::{mask_weights, masked_cross_entropy};
    use dfdx::prelude::*;
    use dfdx::tensor::Gradients;

    type Nano = Gpt<128, 128, 64, 256, Cpu>;

    /// Every trained parameter's gradient of one batch's loss, by name.
    fn gradients(model: &mut Nano, dev: &Cpu) -> Vec<(String, Vec<f32>)> {
        let tokens = |t: &[usize]| dev.tensor_from_vec(t.to_vec(), (2, 6));
        let x = tokens(&[3, 17, 42, 9, 11, 5, 8, 8, 1, 2, 99, 4]);
        let y = tokens(&[17, 42, 9, 11, 5, 6, 8, 1, 2, 99, 4, 7]);
        let (w, _) = mask_weights(dev, &[true; 12], (2, 6));
        let logits = model.logits_traced(x, Gradients::leaky());
        let mut grads = masked_cross_entropy(logits, y, w).backward();
        let mut out = Vec::new();
        let mut read = |name: &str, p: &mut dyn crate::model::Param<Cpu>, _| {
            out.push((name.to_string(), dev.raw_to_host(p.grad_mut(&mut grads)?)));
            Ok(())
        };
        model.visit_params(&mut read).unwrap();
        out
    }

    /// A nano GPT, with LoRA adapters whose B is drawn at random (so that every A trains)
    /// when `lora`.
    fn model(dev: &Cpu, lora: bool) -> Nano {
        let mut model = Nano::new(model_config("nano", 100).unwrap(), dev, 7);
        if lora {
            let spec = LoraSpec {
                rank: 4,
                alpha: 8.0,
                dropout: 0.0,
                targets: vec!["attn".into(), "mlp".into()],
            };
            model.add_adapters(&spec, 3).unwrap();
            let mut draw = |name: &str, p: &mut dyn crate::model::Param<Cpu>, _| {
                if name.ends_with("lora_B.weight") {
                    let v: Vec<f32> = (0..p.numel()).map(|i| (i as f32 * 0.37).sin()).collect();
                    p.copy_from_host(&v);
                }
                Ok(())
            };
            model.visit_params(&mut draw).unwrap();
        }
        model
    }

    #[test]
    fn checkpointed_blocks_give_every_parameter_the_same_gradient() {
        for portable in [false, true] {
            with_portable(portable, || {
                let dev = Cpu::default();
                for lora in [false, true] {
                    let mut model = model(&dev, lora);
                    let kept = gradients(&mut model, &dev);
                    model.checkpoint = true;
                    let recomputed = gradients(&mut model, &dev);
                    assert_eq!(kept.len(), recomputed.len());
                    for ((name, a), (_, b)) in kept.iter().zip(&recomputed) {
                        assert!(a.iter().any(|&g| g != 0.0), "{name}: no gradient");
                        assert_eq!(a, b, "{name} (portable {portable}, lora {lora})");
                    }
                }
            });
        }
    }
}
