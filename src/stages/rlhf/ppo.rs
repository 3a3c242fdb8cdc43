//! PPO, the InstructGPT recipe: sample completions, score them with the reward model,
//! penalise per-token KL to the frozen reference, estimate advantages with GAE from a value
//! model (initialised from the reward model, as TRL does), then several epochs of clipped
//! policy and value updates on the same rollout.

use super::clipped::{clip_fraction, clipped_policy_loss, masked_ratios, Flat};
use super::gae::{gae, whiten};
use super::rollout::*;
use super::{RlhfData, RlhfMethod};
use crate::data::PromptExample;
use crate::model::{Backend, LanguageModel};
use crate::results::weights::{load_weights_from, model_tensors};
use crate::spec::methods::ppo::PpoKeys;
use crate::spec::Rollout;
use crate::spec::SampleSettings;
use crate::stages::adapters::trainable_copy;
use crate::stages::env::{load_reward_model, Built, StageEnv};
use crate::stages::records::Split;
use crate::tokenizer::{Special, Tokenizer};
use crate::train::loss::token_logprobs;
use crate::train::optim::{AdamW, AdamWConfig};
use crate::train::trainer::{Metrics, Objective, ObjectiveState, StepContext, StepOutput};
use anyhow::{bail, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::Rng;

pub struct Ppo<D: Backend> {
    prompts: Vec<PromptExample>,
    val_prompts: Vec<PromptExample>,
    reference: Box<dyn LanguageModel<D>>,
    reward_model: Box<dyn LanguageModel<D>>,
    value: Box<dyn LanguageModel<D>>,
    value_optim: AdamW<D>,
    keys: PpoKeys,
    tokenizer: Tokenizer,
    minibatch: usize,
    dev: D,
    /// Ratios seen on the first minibatch of the first epoch of the last step (a test hook:
    /// the policy has not moved yet, so they must all be exactly 1).
    pub first_ratios: Vec<f32>,
}

impl<D: Backend> Ppo<D> {
    pub fn new(
        env: &StageEnv<D>,
        keys: &PpoKeys,
        policy: &dyn LanguageModel<D>,
        reward_model: Box<dyn LanguageModel<D>>,
        prompts: Vec<PromptExample>,
        val_prompts: Vec<PromptExample>,
    ) -> Result<Self> {
        if prompts.is_empty() {
            bail!("stage `{}`: no prompts", env.stage.name);
        }
        if !reward_model.has_score_head() {
            bail!(
                "stage `{}`: reward_model is not a reward stage",
                env.stage.name
            );
        }
        let s = env.stage;
        Ok(Self {
            prompts,
            val_prompts,
            reference: policy.base_only(),
            value: trainable_copy(env, reward_model.as_ref(), env.spec.seed)?,
            reward_model,
            value_optim: AdamW::new(AdamWConfig {
                betas: s.betas,
                eps: 1e-8,
                weight_decay: 0.0,
                grad_clip: s.grad_clip,
            }),
            keys: keys.clone(),
            tokenizer: env.tokenizer.clone(),
            minibatch: s.batch_size.min(keys.rollout_batch).max(1),
            dev: env.dev.clone(),
            first_ratios: vec![],
        })
    }
}

/// Everything PPO keeps about one minibatch of the rollout.
struct Minibatch<D: Backend> {
    rb: RolloutBatch<D>,
    old_logps: Vec<f32>,
    old_values: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
}

/// Sums over the rollout, for the step's metrics.
#[derive(Default)]
struct RolloutStats {
    kl: f64,
    entropy: f64,
    rlhf_reward: f64,
    lengths: f64,
}

/// Per-update measurements over the epochs of one step.
#[derive(Default)]
struct UpdateStats {
    pg_losses: Vec<f64>,
    v_losses: Vec<f64>,
    clipfracs: Vec<f64>,
    approxkls: Vec<f64>,
    ratios: Vec<f64>,
    tokens: usize,
}

impl<D: Backend> Ppo<D> {
    /// 1. Rollout: one completion per drawn prompt, scored by the reward model.
    fn rollout(&self, ctx: &mut StepContext<'_, D>, pad: u32) -> (Vec<Sample>, Vec<f64>) {
        let opts = SampleSettings::from(&*self.keys).into();
        let drawn: Vec<&PromptExample> = (0..self.keys.rollout_batch)
            .map(|_| &self.prompts[ctx.rng.gen_range(0..self.prompts.len())])
            .collect();
        let samples = sample_groups(ctx.model, &self.tokenizer, &drawn, 1, &opts, ctx.rng);
        let scores = reward_model_scores(self.reward_model.as_ref(), &samples, pad);
        (samples, scores)
    }

    /// 2. Old log-probs, reference log-probs and values, per minibatch (the same grouping
    /// the updates use, so the first update sees ratio exactly 1), and per-token rewards:
    /// −β·KL estimate, plus the score on the last token.
    #[allow(clippy::type_complexity)]
    fn score_rollout(
        &self,
        model: &dyn LanguageModel<D>,
        samples: &[Sample],
        scores: &[f64],
        pad: u32,
    ) -> (
        Vec<(RolloutBatch<D>, Vec<f32>, Vec<f32>)>,
        Vec<Vec<f64>>,
        RolloutStats,
    ) {
        let kl_coef = self.keys.kl_coef;
        let mut stats = RolloutStats::default();
        let mut offset = 0;
        let mut all_rewards: Vec<Vec<f64>> = Vec::new();
        let mut staged = Vec::new();
        for chunk in samples.chunks(self.minibatch) {
            let group: Vec<&Sample> = chunk.iter().collect();
            let rb = rollout_batch(&self.dev, &group, pad);
            let old = logprobs_of(model, &rb);
            let reference = logprobs_of(self.reference.as_ref(), &rb);
            let values = crate::util::readback::to_vec(&self.value.scores(rb.inputs.clone()));
            stats.entropy +=
                mean_entropy(model, &rb, self.tokenizer.vocab_size()) * group.len() as f64;
            let old_rows = masked_rows(&old, &rb.batch);
            let ref_rows = masked_rows(&reference, &rb.batch);
            for (i, (o, r)) in old_rows.iter().zip(&ref_rows).enumerate() {
                let mut rewards: Vec<f64> =
                    o.iter().zip(r).map(|(o, r)| -kl_coef * (o - r)).collect();
                let kl: f64 = o.iter().zip(r).map(|(o, r)| o - r).sum();
                stats.kl += kl;
                *rewards.last_mut().unwrap() += scores[offset + i];
                stats.rlhf_reward += scores[offset + i] - kl_coef * kl;
                stats.lengths += o.len() as f64;
                all_rewards.push(rewards);
            }
            offset += group.len();
            staged.push((rb, old, values));
        }
        (staged, all_rewards, stats)
    }

    /// 3. Advantages and returns by GAE (rewards whitened without shifting, advantages
    /// fully whitened), laid out like each minibatch's tokens.
    fn minibatches(
        &self,
        staged: Vec<(RolloutBatch<D>, Vec<f32>, Vec<f32>)>,
        mut all_rewards: Vec<Vec<f64>>,
    ) -> Vec<Minibatch<D>> {
        whiten(&mut all_rewards, false);
        let mut row = 0;
        let mut all_adv = Vec::new();
        let mut all_ret = Vec::new();
        for (rb, _, values) in &staged {
            for v in masked_rows(values, &rb.batch) {
                let (a, r) = gae(&all_rewards[row], &v, self.keys.gamma, self.keys.lam);
                all_adv.push(a);
                all_ret.push(r);
                row += 1;
            }
        }
        whiten(&mut all_adv, true);
        let mut row = 0;
        let mut minibatches = Vec::new();
        for (rb, old, values) in staged {
            let n = rb.batch.batch;
            let advantages = scatter_rows(&all_adv[row..row + n], &rb.batch);
            let returns = scatter_rows(&all_ret[row..row + n], &rb.batch);
            row += n;
            minibatches.push(Minibatch {
                rb,
                old_logps: old,
                old_values: values,
                advantages,
                returns,
            });
        }
        minibatches
    }

    /// 4. Epochs of clipped policy and value updates on the same rollout.
    fn update(
        &mut self,
        ctx: &mut StepContext<'_, D>,
        minibatches: &[Minibatch<D>],
    ) -> Result<UpdateStats> {
        let mut stats = UpdateStats::default();
        let clip = self.keys.clip_range as f32;
        for epoch in 0..self.keys.ppo_epochs {
            for (mi, mb) in minibatches.iter().enumerate() {
                let shape = (mb.rb.batch.batch, mb.rb.batch.seq);
                let count = mb.rb.batch.mask.iter().filter(|&&m| m).count().max(1) as f32;
                let weights: Flat<D> = mb.rb.mask.clone() / count;
                let old: Flat<D> = self.dev.tensor_from_vec(mb.old_logps.clone(), shape);
                let adv: Flat<D> = self.dev.tensor_from_vec(mb.advantages.clone(), shape);
                let new = token_logprobs(
                    ctx.model
                        .logits_traced(mb.rb.inputs.clone(), Gradients::leaky()),
                    mb.rb.targets.clone(),
                );
                let (loss, r) = clipped_policy_loss(new, old, adv, weights.clone(), clip);
                let masked = masked_ratios(&r, &mb.rb.batch.mask);
                if epoch == 0 && mi == 0 {
                    self.first_ratios = masked.clone();
                }
                ratio_stats(&masked, clip, &mut stats);
                stats
                    .pg_losses
                    .push(crate::util::readback::scalar(&loss) as f64);
                ctx.apply(loss.backward())?;
                let v_loss = self.value_update(mb, weights, ctx.lr)?;
                stats.v_losses.push(v_loss);
                stats.tokens += shape.0 * shape.1;
            }
        }
        Ok(stats)
    }

    /// Clipped value loss 0.5·max((V − R)², (clip(V, V_old ± ε) − R)²), one step of the
    /// value model's own optimiser; returns the loss.
    fn value_update(&mut self, mb: &Minibatch<D>, weights: Flat<D>, lr: f64) -> Result<f64> {
        let shape = (mb.rb.batch.batch, mb.rb.batch.seq);
        let clip = self.keys.clip_range as f32;
        let old_v: Flat<D> = self.dev.tensor_from_vec(mb.old_values.clone(), shape);
        let ret: Flat<D> = self.dev.tensor_from_vec(mb.returns.clone(), shape);
        let v = self
            .value
            .scores_traced(mb.rb.inputs.clone(), Gradients::leaky());
        let (v, tape) = v.split_tape();
        let v_clipped =
            (v.retaped::<OwnedTape<f32, D>>() - old_v.clone()).clamp(-clip, clip) + old_v;
        let l1 = (v.put_tape(tape) - ret.clone()).square();
        let l2 = (v_clipped - ret).square();
        let v_loss =
            (l1.maximum(l2) * weights).sum::<Rank0, _>() * (0.5 * self.keys.vf_coef as f32);
        let value = crate::util::readback::scalar(&v_loss) as f64;
        let mut vg = v_loss.backward();
        self.value_optim.step(self.value.as_mut(), &mut vg, lr)?;
        Ok(value)
    }
}

/// Clip fraction, approximate KL and mean ratio over the answer tokens of one update.
fn ratio_stats(masked: &[f32], clip: f32, stats: &mut UpdateStats) {
    let n = masked.len().max(1) as f64;
    stats.clipfracs.push(clip_fraction(masked, clip));
    stats.approxkls.push(
        masked
            .iter()
            .map(|r| 0.5 * (r.ln() as f64).powi(2))
            .sum::<f64>()
            / n,
    );
    stats
        .ratios
        .push(masked.iter().map(|r| *r as f64).sum::<f64>() / n);
}

impl<D: Backend> Objective<D> for Ppo<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let pad = self.tokenizer.special(Special::Pad);
        let (samples, scores) = self.rollout(ctx, pad);
        let (staged, rewards, rollout) = self.score_rollout(&*ctx.model, &samples, &scores, pad);
        let minibatches = self.minibatches(staged, rewards);
        let update = self.update(ctx, &minibatches)?;
        let n = samples.len() as f64;
        let metrics = vec![
            ("objective/rlhf_reward".into(), rollout.rlhf_reward / n),
            ("objective/scores".into(), mean(&scores)),
            ("objective/kl".into(), rollout.kl / n),
            ("objective/entropy".into(), rollout.entropy / n),
            ("policy/clipfrac_avg".into(), mean(&update.clipfracs)),
            ("policy/approxkl_avg".into(), mean(&update.approxkls)),
            ("loss/policy_avg".into(), mean(&update.pg_losses)),
            ("loss/value_avg".into(), mean(&update.v_losses)),
            ("val/ratio".into(), mean(&update.ratios)),
            ("completions/mean_length".into(), rollout.lengths / n),
        ];
        Ok(StepOutput {
            loss: mean(&update.pg_losses) + mean(&update.v_losses),
            tokens: update.tokens as u64,
            metrics,
        })
    }

    /// The value model and its optimizer change every step: a resume needs both.
    fn save_state(&mut self) -> Result<ObjectiveState> {
        let mut tensors = Vec::new();
        for (name, shape, values) in model_tensors(self.value.as_mut())? {
            tensors.push((format!("value/{name}"), shape, values));
        }
        for (name, m, v) in self.value_optim.export_state(self.value.as_mut())? {
            tensors.push((format!("value_m1/{name}"), vec![m.len()], m));
            tensors.push((format!("value_m2/{name}"), vec![v.len()], v));
        }
        let meta = [("value_adam_t".to_string(), self.value_optim.t.to_string())].into();
        Ok(ObjectiveState { tensors, meta })
    }

    fn load_state(&mut self, state: ObjectiveState) -> Result<()> {
        let t: i32 = state
            .meta
            .get("value_adam_t")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("PPO resume state lacks `value_adam_t`"))?;
        let mut weights = std::collections::HashMap::new();
        let mut moments: std::collections::HashMap<String, (Vec<f32>, Vec<f32>)> =
            Default::default();
        for (name, shape, values) in state.tensors {
            if let Some(p) = name.strip_prefix("value_m1/") {
                moments.entry(p.to_string()).or_default().0 = values;
            } else if let Some(p) = name.strip_prefix("value_m2/") {
                moments.entry(p.to_string()).or_default().1 = values;
            } else {
                weights.insert(name, (shape, values));
            }
        }
        load_weights_from(self.value.as_mut(), &weights, "value/", "PPO value model")?;
        self.value_optim
            .import_state(self.value.as_mut(), t, &moments)
    }

    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        if self.val_prompts.is_empty() {
            return Ok(vec![]);
        }
        // Greedy answers of the policy and of the frozen reference (the SFT model) to held-out
        // prompts, both scored by the reward model: the mean score and the policy's win rate.
        let pad = self.tokenizer.special(Special::Pad);
        let opts = SampleSettings::greedy(self.keys.max_new_tokens).into();
        let answers = |m: &dyn LanguageModel<D>| -> Vec<Sample> {
            let mut rng = rand::rngs::mock::StepRng::new(0, 1);
            let asked: Vec<&PromptExample> = self.val_prompts.iter().take(64).collect();
            sample_groups(m, &self.tokenizer, &asked, 1, &opts, &mut rng)
        };
        let policy = reward_model_scores(self.reward_model.as_ref(), &answers(model), pad);
        let reference = reward_model_scores(
            self.reward_model.as_ref(),
            &answers(self.reference.as_ref()),
            pad,
        );
        let wins: f64 = policy
            .iter()
            .zip(&reference)
            .map(|(p, r)| {
                if p > r {
                    1.0
                } else if p == r {
                    0.5
                } else {
                    0.0
                }
            })
            .sum();
        Ok(vec![
            ("val/score".into(), mean(&policy)),
            (
                "val/win_rate_vs_ref".into(),
                wins / policy.len().max(1) as f64,
            ),
        ])
    }
}

impl RlhfMethod for PpoKeys {
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
        let rm = load_reward_model(env, self.reward_stage())?;
        let obj = Ppo::new(env, self, model, rm, train.to_vec(), val.to_vec())?;
        Ok((Box::new(obj), vec![]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::chat::{Message, Role};
    use crate::model::presets::{build_model, model_config};
    use crate::spec::flat::FlatStage;
    use crate::spec::{Experiment, Method, RlhfKeys};
    use crate::tokenizer::TokenizerKind;
    use crate::train::optim::LrSchedule;
    use crate::train::trainer::{train, TrainSettings};

    /// One PPO step on a tiny untrained policy; returns the objective and the stage folder.
    fn one_step() -> (Ppo<Cpu>, tempfile::TempDir) {
        let dev = Cpu::default();
        let tok = Tokenizer::train(
            TokenizerKind::Char,
            &["中国的首都是哪里?北京。你好小狗怎么叫汪"],
            64,
        )
        .unwrap();
        let cfg = model_config("nano", tok.vocab_size()).unwrap();
        let mut policy = build_model(&cfg, &dev, 1).unwrap();
        let mut rm = build_model(&cfg, &dev, 2).unwrap();
        rm.add_score_head(3);
        let spec: Experiment = toml::from_str(
            "name = \"t\"\n[model]\npreset = \"nano\"\nblock_size = 32\n[tokenizer]\nkind = \"char\"\nvocab_size = 64\n[[stages]]\nname = \"p\"\nkind = \"rlhf\"\nalgorithm = \"ppo\"\nreward_model = \"rm\"\nprompts = \"p.jsonl\"",
        )
        .unwrap();
        let mut stage = spec.stages[0].clone();
        let small = |keys: &mut FlatStage| {
            keys.batch_size = 4;
            (keys.rollout_batch, keys.ppo_epochs, keys.max_new_tokens) = (8, 2, 6);
        };
        stage.edit(small).unwrap();
        let Method::Rlhf(RlhfKeys::Ppo(keys)) = stage.method.clone() else {
            panic!("a ppo stage: {:?}", stage.method)
        };
        let dir = tempfile::tempdir().unwrap();
        let env = StageEnv {
            spec: &spec,
            stage: &stage,
            tokenizer: &tok,
            dev: dev.clone(),
            dir: dir.path().to_path_buf(),
            run_dir: dir.path().to_path_buf(),
            block_size: 32,
            peak_flops: 0.0,
        };
        let prompt = |q: &str| PromptExample {
            prompt: vec![Message {
                role: Role::User,
                content: q.into(),
            }],
            reference: None,
            task: None,
        };
        let prompts = vec![prompt("中国的首都是哪里?"), prompt("小狗怎么叫?")];
        let mut obj = Ppo::new(&env, &keys, policy.as_ref(), rm, prompts.clone(), vec![]).unwrap();
        let settings = TrainSettings {
            stage: "ppo".into(),
            steps: 1,
            schedule: LrSchedule {
                max_lr: 1e-3,
                min_lr: 1e-3,
                warmup: 0,
                total: 1,
            },
            adamw: AdamWConfig {
                betas: [0.9, 0.95],
                eps: 1e-8,
                weight_decay: 0.0,
                grad_clip: 1.0,
            },
            eval_every: 0,
            checkpoint_every: 0,
            seed: 5,
            flops_per_token: 0.0,
            peak_flops: 0.0,
        };
        train(policy.as_mut(), &mut obj, &settings, dir.path()).unwrap();
        (obj, dir)
    }

    #[test]
    fn first_minibatch_ratio_is_exactly_one_and_kl_starts_at_zero() {
        let (obj, dir) = one_step();
        assert!(!obj.first_ratios.is_empty());
        assert!(
            obj.first_ratios.iter().all(|&r| r == 1.0),
            "ratios {:?}",
            obj.first_ratios
        );
        // The reference is a copy of the policy before any update: the rollout's KL is 0.
        let table =
            crate::results::read_metrics_csv(&dir.path().join(crate::results::METRICS_FILE))
                .unwrap();
        assert_eq!(table.last("objective/kl"), Some(0.0));
        // Later minibatches (after updates) moved the policy, so the mean ratio is not exactly 1.
        assert!(table.last("val/ratio").unwrap() != 1.0);
    }
}
