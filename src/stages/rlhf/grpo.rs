//! GRPO (DeepSeekMath): for each prompt sample a group of G answers, reward each (a checker
//! against the reference answer, or a reward model), use the group-normalised reward as every
//! token's advantage, and take clipped policy steps with an optional k3 KL penalty.

use super::clipped::{clip_fraction, clipped_policy_loss, k3_kl, masked_ratios, Flat};
use super::rollout::*;
use super::{RlhfData, RlhfMethod};
use crate::data::PromptExample;
use crate::eval::answers::exact_match;
use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel};
use crate::spec::methods::grpo::GrpoKeys;
use crate::spec::Rollout;
use crate::spec::SampleSettings;
use crate::stages::env::{load_reward_model, Built, StageEnv};
use crate::stages::records::Split;
use crate::tokenizer::{Special, Tokenizer};
use crate::train::loss::token_logprobs;
use crate::train::trainer::{Metrics, Objective, StepContext, StepOutput};
use anyhow::{bail, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::Rng;

pub struct Grpo<D: Backend> {
    prompts: Vec<PromptExample>,
    val_prompts: Vec<PromptExample>,
    reference: Option<Box<dyn LanguageModel<D>>>,
    reward_model: Option<Box<dyn LanguageModel<D>>>,
    keys: GrpoKeys,
    /// Validation questions asked: `eval_batches` batches of 8.
    eval_questions: usize,
    tokenizer: Tokenizer,
    dev: D,
}

/// Group-normalised advantages (r − mean) / (std + ε) and whether the group had zero spread.
pub fn group_advantages(rewards: &[f64]) -> (Vec<f64>, bool) {
    let (m, s) = (mean(rewards), std(rewards));
    (
        rewards.iter().map(|r| (r - m) / (s + 1e-4)).collect(),
        s == 0.0,
    )
}

impl<D: Backend> Grpo<D> {
    pub fn new(
        env: &StageEnv<D>,
        keys: &GrpoKeys,
        policy: &dyn LanguageModel<D>,
        reward_model: Option<Box<dyn LanguageModel<D>>>,
        prompts: Vec<PromptExample>,
        val_prompts: Vec<PromptExample>,
    ) -> Result<Self> {
        if prompts.is_empty() {
            bail!("stage `{}`: no prompts", env.stage.name);
        }
        if reward_model.is_none() && prompts.iter().all(|p| p.reference.is_none()) {
            bail!("stage `{}`: GRPO with a checker needs reference answers (\"completion\") in its prompts file", env.stage.name);
        }
        Ok(Self {
            prompts,
            val_prompts,
            reference: (keys.kl_coef > 0.0).then(|| policy.base_only()),
            reward_model,
            keys: keys.clone(),
            eval_questions: env.stage.eval_batches * 8,
            tokenizer: env.tokenizer.clone(),
            dev: env.dev.clone(),
        })
    }
}

/// One step's completions: `group_size` per drawn prompt, with rewards and group advantages.
struct Groups {
    samples: Vec<Sample>,
    rewards: Vec<f64>,
    advantages: Vec<f64>,
    /// Groups whose rewards were all equal (no learning signal).
    zero_std: usize,
    n_prompts: usize,
}

impl<D: Backend> Grpo<D> {
    /// Samples a group per prompt and scores it with the reward model, else the checker.
    fn sample_groups(
        &self,
        ctx: &mut StepContext<'_, D>,
        opts: &SampleOptions,
        pad: u32,
    ) -> Groups {
        let s = &self.keys;
        let g = s.group_size;
        let n_prompts = (s.rollout_batch / g).max(1);
        let drawn: Vec<&PromptExample> = (0..n_prompts)
            .map(|_| &self.prompts[ctx.rng.gen_range(0..self.prompts.len())])
            .collect();
        let samples = sample_groups(ctx.model, &self.tokenizer, &drawn, g, opts, ctx.rng);
        let (mut rewards, mut advantages, mut zero_std) = (vec![], vec![], 0);
        for group in samples.chunks(g) {
            let r: Vec<f64> = match &self.reward_model {
                Some(rm) => reward_model_scores(rm.as_ref(), group, pad),
                None => group
                    .iter()
                    .map(|x| check(s.checker, &x.text, x.reference.as_deref()))
                    .collect(),
            };
            let (a, flat) = group_advantages(&r);
            zero_std += flat as usize;
            rewards.extend(r);
            advantages.extend(a);
        }
        Groups {
            samples,
            rewards,
            advantages,
            zero_std,
            n_prompts,
        }
    }
}

impl<D: Backend> Objective<D> for Grpo<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let s = &self.keys;
        let pad = self.tokenizer.special(Special::Pad);
        let opts = SampleSettings::from(&**s).into();
        let Groups {
            samples,
            rewards,
            advantages,
            zero_std,
            n_prompts,
        } = self.sample_groups(ctx, &opts, pad);
        let refs: Vec<&Sample> = samples.iter().collect();
        let rb = rollout_batch(&self.dev, &refs, pad);
        let shape = (rb.batch.batch, rb.batch.seq);
        let adv_rows: Vec<Vec<f64>> = samples
            .iter()
            .zip(&advantages)
            .map(|(x, &a)| vec![a; x.completion.len()])
            .collect();
        let adv: Flat<D> = self
            .dev
            .tensor_from_vec(scatter_rows(&adv_rows, &rb.batch), shape);
        let count = rb.batch.mask.iter().filter(|&&m| m).count().max(1) as f32;
        let weights: Flat<D> = rb.mask.clone() / count;
        let old = logprobs_of(ctx.model, &rb);
        let ref_lp = self
            .reference
            .as_ref()
            .map(|r| logprobs_of(r.as_ref(), &rb));
        let (mut losses, mut kls, mut clipfracs) = (vec![], vec![], vec![]);
        for _ in 0..s.ppo_epochs {
            let new = token_logprobs(
                ctx.model
                    .logits_traced(rb.inputs.clone(), Gradients::leaky()),
                rb.targets.clone(),
            );
            let old_t: Flat<D> = self.dev.tensor_from_vec(old.clone(), shape);
            let (new, tape) = new.split_tape();
            let (mut loss, ratios) = clipped_policy_loss(
                new.clone().put_tape(tape),
                old_t,
                adv.clone(),
                weights.clone(),
                s.clip_range as f32,
            );
            if let Some(r) = &ref_lp {
                let r_t: Flat<D> = self.dev.tensor_from_vec(r.clone(), shape);
                let kl = (k3_kl(new.retaped::<OwnedTape<f32, D>>(), r_t) * weights.clone())
                    .sum::<Rank0, _>();
                kls.push(crate::util::readback::scalar(&kl) as f64);
                loss = loss + kl * s.kl_coef as f32;
            }
            let masked = masked_ratios(&ratios, &rb.batch.mask);
            clipfracs.push(clip_fraction(&masked, s.clip_range as f32));
            losses.push(crate::util::readback::scalar(&loss) as f64);
            ctx.apply(loss.backward())?;
        }
        let lengths: Vec<f64> = samples.iter().map(|x| x.completion.len() as f64).collect();
        let mut metrics = vec![
            ("reward".into(), mean(&rewards)),
            ("reward_std".into(), std(&rewards)),
            (
                "frac_reward_zero_std".into(),
                zero_std as f64 / n_prompts as f64,
            ),
            ("completions/mean_length".into(), mean(&lengths)),
            ("clip_ratio".into(), mean(&clipfracs)),
        ];
        if !kls.is_empty() {
            metrics.push(("kl".into(), mean(&kls)));
        }
        Ok(StepOutput {
            loss: mean(&losses),
            tokens: (shape.0 * shape.1 * s.ppo_epochs) as u64,
            metrics,
        })
    }

    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        let items: Vec<_> = self
            .val_prompts
            .iter()
            .filter_map(|p| Some((p.prompt.clone(), p.reference.clone()?, p.task.clone())))
            .take(self.eval_questions)
            .collect();
        if items.is_empty() {
            return Ok(vec![]);
        }
        let (score, _, _) = exact_match(model, &self.tokenizer, &items, self.keys.max_new_tokens);
        Ok(vec![("val/exact_match".into(), score.rate())])
    }
}

impl RlhfMethod for GrpoKeys {
    fn load_data(&self, split: &Split) -> Result<RlhfData> {
        load_prompts(self.prompts_file(), split)
    }

    fn objective<'a, D: Backend>(
        &'a self,
        env: &'a StageEnv<D>,
        model: &mut dyn LanguageModel<D>,
        data: &'a RlhfData,
    ) -> Result<Built<'a, D>> {
        let (train, val) = data.prompts()?;
        let rm = match &self.reward_model {
            Some(name) => Some(load_reward_model(env, name)?),
            None => None,
        };
        let obj = Grpo::new(env, self, model, rm, train.to_vec(), val.to_vec())?;
        Ok((Box::new(obj), vec![]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_advantages_are_normalised_and_flat_groups_flagged() {
        let (a, flat) = group_advantages(&[1.0, 0.0, 0.0, 1.0]);
        assert!(!flat);
        // mean 0.5, population std 0.5: (1 − 0.5) / (0.5 + 1e-4).
        assert!(
            (a[0] - 0.5 / 0.5001).abs() < 1e-12 && (a[1] + 0.5 / 0.5001).abs() < 1e-12,
            "{a:?}"
        );
        let (a, flat) = group_advantages(&[1.0, 1.0]);
        assert!(flat && a.iter().all(|&x| x == 0.0));
    }
}
