//! AdamW with decoupled weight decay on matrices only (dfdx's Adam decays every tensor),
//! gradient clipping by global norm, and the warmup + cosine learning-rate schedule.

use crate::model::{Backend, LanguageModel};
use crate::util::readback;
use anyhow::Result;
use dfdx::prelude::*;
use dfdx::tensor::Gradients;

/// A NaN or infinite gradient norm: the step is refused before it touches the weights, and
/// the training loop's NaN guard turns it into its message.
#[derive(Debug)]
pub struct NonFiniteGradient {
    pub norm: f64,
}

impl std::fmt::Display for NonFiniteGradient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gradient norm is {}", self.norm)
    }
}

impl std::error::Error for NonFiniteGradient {}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this; 0 disables clipping.
    pub grad_clip: f64,
}

/// Linear warmup to `max_lr`, then cosine decay to `min_lr` at `total` steps (nanoGPT).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    pub max_lr: f64,
    pub min_lr: f64,
    pub warmup: u64,
    pub total: u64,
}

impl LrSchedule {
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.max_lr * (step + 1) as f64 / self.warmup as f64;
        }
        if step >= self.total {
            return self.min_lr;
        }
        let progress = (step - self.warmup) as f64 / (self.total - self.warmup).max(1) as f64;
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.min_lr + coeff * (self.max_lr - self.min_lr)
    }
}

pub struct AdamW<D: Backend> {
    pub cfg: AdamWConfig,
    /// Number of updates taken (Adam's bias-correction step).
    pub t: i32,
    m1: Gradients<f32, D>,
    m2: Gradients<f32, D>,
}

impl<D: Backend> AdamW<D> {
    pub fn new(cfg: AdamWConfig) -> Self {
        Self {
            cfg,
            t: 0,
            m1: Gradients::leaky(),
            m2: Gradients::leaky(),
        }
    }

    /// Global L2 norm of the gradients of every parameter: summed on the device, one read.
    pub fn grad_norm(
        model: &mut dyn LanguageModel<D>,
        grads: &mut Gradients<f32, D>,
    ) -> Result<f64> {
        let mut sum: Option<Tensor<Rank0, f32, D>> = None;
        model.visit_params(&mut |_, p, _| {
            let s = p.grad_sum_squares(grads)?;
            sum = Some(match sum.take() {
                Some(total) => total + s,
                None => s,
            });
            Ok(())
        })?;
        Ok(sum.map_or(0.0, |s| (readback::scalar(&s) as f64).sqrt()))
    }

    /// Scales every gradient by `factor` (clipping, or averaging accumulated micro-batches).
    pub fn scale_grads(
        model: &mut dyn LanguageModel<D>,
        grads: &mut Gradients<f32, D>,
        factor: f32,
    ) -> Result<()> {
        model.visit_params(&mut |_, p, _| p.scale_grad(grads, factor))
    }

    /// Clips, then applies one update at learning rate `lr`. Returns the pre-clip grad norm.
    pub fn step(
        &mut self,
        model: &mut dyn LanguageModel<D>,
        grads: &mut Gradients<f32, D>,
        lr: f64,
    ) -> Result<f64> {
        let norm = Self::grad_norm(model, grads)?;
        if !norm.is_finite() {
            return Err(NonFiniteGradient { norm }.into());
        }
        if self.cfg.grad_clip > 0.0 && norm > self.cfg.grad_clip {
            Self::scale_grads(model, grads, (self.cfg.grad_clip / (norm + 1e-6)) as f32)?;
        }
        self.t += 1;
        let t = self.t;
        let (m1, m2, cfg) = (&mut self.m1, &mut self.m2, self.cfg);
        model.visit_params(&mut |_, p, decay| {
            let adam = AdamConfig {
                lr,
                betas: cfg.betas,
                eps: cfg.eps,
                weight_decay: (decay && cfg.weight_decay > 0.0)
                    .then_some(WeightDecay::Decoupled(cfg.weight_decay)),
            };
            p.adam_step(t, &adam, grads, m1, m2)
        })?;
        Ok(norm)
    }

    /// The moments of every parameter, by name, for checkpoints.
    pub fn export_state(
        &mut self,
        model: &mut dyn LanguageModel<D>,
    ) -> Result<Vec<(String, Vec<f32>, Vec<f32>)>> {
        let dev = model.device();
        let (m1, m2) = (&mut self.m1, &mut self.m2);
        let mut out = Vec::new();
        model.visit_params(&mut |name, p, _| {
            let (a, b) = p.moments_mut(m1, m2)?;
            out.push((name.to_string(), dev.raw_to_host(a), dev.raw_to_host(b)));
            Ok(())
        })?;
        Ok(out)
    }

    /// Restores moments written by `export_state` (same model layout).
    pub fn import_state(
        &mut self,
        model: &mut dyn LanguageModel<D>,
        t: i32,
        state: &std::collections::HashMap<String, (Vec<f32>, Vec<f32>)>,
    ) -> Result<()> {
        let dev = model.device();
        self.t = t;
        let (m1, m2) = (&mut self.m1, &mut self.m2);
        model.visit_params(&mut |name, p, _| {
            let (a, b) = state
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("optimizer state has no entry for `{name}`"))?;
            if a.len() != p.numel() || b.len() != p.numel() {
                anyhow::bail!("optimizer state for `{name}` has the wrong size");
            }
            let (ma, mb) = p.moments_mut(m1, m2)?;
            dev.raw_from_host(ma, a);
            dev.raw_from_host(mb, b);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_min() {
        let s = LrSchedule {
            max_lr: 1e-3,
            min_lr: 1e-4,
            warmup: 10,
            total: 110,
        };
        assert!((s.at(0) - 1e-4).abs() < 1e-12);
        assert!((s.at(9) - 1e-3).abs() < 1e-12);
        assert!((s.at(10) - 1e-3).abs() < 1e-12);
        assert!((s.at(60) - 5.5e-4).abs() < 1e-9);
        assert!((s.at(110) - 1e-4).abs() < 1e-12);
        assert!(s.at(30) > s.at(40));
    }
}
