//! KTO (Ethayarajh et al. 2024, "Model Alignment as Prospect Theoretic Optimization"), as
//! TRL's `KTOTrainer` computes it: every answer is marked 👍 or 👎 on its own, no pairs needed.
//! With r an answer's log-ratio log π(y|x) − log π_ref(y|x) (summed over its tokens) and z an
//! estimate of KL(π‖π_ref), a 👍 answer costs w_D·(1 − σ(β(r − z))) and a 👎 answer
//! w_U·(1 − σ(β(z − r))); the loss is their mean over the batch.
//!
//! z is the reference point of prospect theory: the mean log-ratio of *mismatched* pairs (a
//! prompt with another record's answer), clamped at 0 — how much more likely the policy finds
//! answers in general. A 👍 answer must rise above that, a 👎 one fall below it, so the model
//! cannot win by making every answer likelier. As in TRL, z carries no gradient.
//!
//! As in DPO, the reference is the frozen `from` model, its log-probabilities computed once,
//! and gradients come from dfdx's autodiff: there is no hand-written backward pass.

use super::{against_reference, read_records, RlhfData, RlhfMethod};
use crate::data::batches::{pad_examples, Batch, Example};
use crate::data::{Feedback, PreferenceRecord};
use crate::eval::logprob::answer_logprobs;
use crate::model::lm::Traced;
use crate::model::{Backend, LanguageModel};
use crate::spec::methods::kto::KtoKeys;
use crate::stages::env::{Built, StageEnv};
use crate::stages::records::Split;
use crate::stages::rlhf::dpo::encode_answer;
use crate::tokenizer::{Special, Tokenizer};
use crate::train::loss::token_logprobs;
use crate::train::trainer::{Metrics, Objective, StepContext, StepOutput};
use anyhow::{bail, Context, Result};
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::Rng;

/// One 👍 or 👎 answer, with the mismatched pair that stands beside it in the KL estimate.
pub struct KtoExample {
    pub answer: Example,
    /// This record's prompt with another record's answer.
    pub mismatched: Example,
    pub desirable: bool,
    /// Reference log-probabilities of `answer` and of `mismatched`.
    pub ref_logps: (f64, f64),
}

/// KTO's unit is one labelled answer: a preference pair gives one 👍 and one 👎.
pub fn labelled(records: &[PreferenceRecord]) -> Vec<Feedback> {
    let answer = |p: &crate::data::PreferencePair, completion: &Vec<_>, label| Feedback {
        prompt: p.prompt.clone(),
        completion: completion.clone(),
        label,
    };
    records
        .iter()
        .flat_map(|r| match r {
            PreferenceRecord::Feedback(f) => vec![f.clone()],
            PreferenceRecord::Pair(p) => {
                vec![answer(p, &p.chosen, true), answer(p, &p.rejected, false)]
            }
        })
        .collect()
}

/// KTO pushes 👍 answers up and 👎 answers down around one baseline: with one kind only there
/// is nothing to contrast, and every answer is pushed the same way.
pub fn check_labels(feedback: &[Feedback]) -> Result<()> {
    let up = feedback.iter().filter(|f| f.label).count();
    let down = feedback.len() - up;
    if up == 0 || down == 0 {
        bail!(
            "KTO needs both 👍 and 👎 lines ({{\"prompt\",\"completion\",\"label\": true}} and \
             {{..., \"label\": false}}, or {{\"prompt\",\"chosen\",\"rejected\"}} pairs); \
             the training records hold {up} 👍 and {down} 👎"
        );
    }
    Ok(())
}

/// Whose answer goes with record `i`'s prompt in the KL estimate. TRL takes the neighbour's;
/// here the next record with a *different* prompt, because feedback files keep a prompt's 👍
/// and 👎 answers on neighbouring lines, and such a pair would not be mismatched.
fn partner(items: &[Feedback], i: usize) -> usize {
    let n = items.len();
    (1..n)
        .map(|k| (i + k) % n)
        .find(|&j| items[j].prompt != items[i].prompt)
        .unwrap_or((i + 1) % n)
}

/// Tokenised answers and their mismatched pairs, with reference log-probabilities.
pub fn prepare<D: Backend>(
    reference: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    feedback: &[Feedback],
    limit: usize,
) -> Vec<KtoExample> {
    let pad = tok.special(Special::Pad);
    let rows: Vec<(Example, Example)> = feedback
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let other = &feedback[partner(feedback, i)].completion;
            let answer = encode_answer(tok, &f.prompt, &f.completion, limit);
            (answer, encode_answer(tok, &f.prompt, other, limit))
        })
        .collect();
    let answers: Vec<&Example> = rows.iter().map(|r| &r.0).collect();
    let mismatched: Vec<&Example> = rows.iter().map(|r| &r.1).collect();
    let ra = answer_logprobs(reference, &answers, pad);
    let rm = answer_logprobs(reference, &mismatched, pad);
    rows.into_iter()
        .zip(feedback)
        .zip(ra.into_iter().zip(rm))
        .map(|(((answer, mismatched), f), ref_logps)| KtoExample {
            answer,
            mismatched,
            desirable: f.label,
            ref_logps,
        })
        .collect()
}

/// The policy's mean log-ratio over mismatched pairs: the KL estimate before the clamp, which
/// the `kl` metric logs (clamped, it would read 0 whenever the policy finds other records'
/// answers less likely than the reference does, which is common and looks like a bug).
pub fn mean_log_ratio(policy: &[f64], reference: &[f64]) -> f64 {
    let n = policy.len().max(1) as f64;
    let sum: f64 = policy.iter().zip(reference).map(|(p, r)| p - r).sum();
    sum / n
}

/// z: the mean log-ratio clamped at 0 (a KL divergence is not negative, a sample mean of
/// log-ratios can be).
pub fn kl_estimate(policy: &[f64], reference: &[f64]) -> f64 {
    mean_log_ratio(policy, reference).max(0.0)
}

/// The paper's advice on the weighting: λ_D·#👍 / (λ_U·#👎) between 1 and 4/3. A warning
/// when the stage's weights and labels fall outside it; `None` inside.
pub fn weighting_warning(keys: &KtoKeys, up: usize, down: usize) -> Option<String> {
    let ratio = keys.desirable_weight * up as f64 / (keys.undesirable_weight * down as f64);
    let advised = 1.0..=4.0 / 3.0 + 1e-9;
    (!advised.contains(&ratio)).then(|| {
        format!(
            "KTO's weighting desirable_weight × #👍 / (undesirable_weight × #👎) = {} × {up} / ({} × {down}) = {ratio:.2} is outside the advised 1 to 4/3; \
             to weigh the two kinds as the KTO paper advises, set desirable_weight = {:.2} (or undesirable_weight = {:.2})",
            keys.desirable_weight,
            keys.undesirable_weight,
            keys.undesirable_weight * down as f64 / up.max(1) as f64,
            keys.desirable_weight * up as f64 / down.max(1) as f64,
        )
    })
}

/// The KTO loss of the answers' log-probabilities (exposed for the hand-computed test): the
/// mean of w·σ(−s·β(r − z)), s = +1 for 👍 and −1 for 👎, which is TRL's 1 − σ(β(r − z)) and
/// 1 − σ(β(z − r)) written with 1 − σ(x) = σ(−x).
pub fn kto_loss<D: Backend, T: Tape<f32, D>>(
    policy: Tensor<(usize,), f32, D, T>,
    reference: Tensor<(usize,), f32, D>,
    z_ref: f32,
    desirable: &[bool],
    keys: &KtoKeys,
) -> Tensor<Rank0, f32, D, T> {
    let dev = reference.device().clone();
    let n = desirable.len();
    let beta = keys.beta as f32;
    let pick = |up: f32, down: f32| {
        desirable
            .iter()
            .map(|&d| if d { up } else { down })
            .collect()
    };
    let scale = dev.tensor_from_vec(pick(-beta, beta), (n,));
    let weight = dev.tensor_from_vec(
        pick(keys.desirable_weight as f32, keys.undesirable_weight as f32),
        (n,),
    );
    (((policy - reference - z_ref) * scale).sigmoid() * weight).mean::<Rank0, _>()
}

/// `rewards/chosen` and `rewards/rejected`, the mean β·r of the 👍 and of the 👎 answers (left
/// out when there are none of that kind), their difference `rewards/margins`, and `kl` (the
/// estimate before the clamp).
fn kto_metrics(prefix: &str, rewards: &[f64], desirable: &[bool], kl: f64) -> Metrics {
    let mean_of = |kind: bool| {
        let of_kind: Vec<f64> = rewards
            .iter()
            .zip(desirable)
            .filter(|(_, &d)| d == kind)
            .map(|(r, _)| *r)
            .collect();
        (!of_kind.is_empty()).then(|| of_kind.iter().sum::<f64>() / of_kind.len() as f64)
    };
    let (chosen, rejected) = (mean_of(true), mean_of(false));
    let mut m = vec![(format!("{prefix}kl"), kl)];
    m.extend(chosen.map(|c| (format!("{prefix}rewards/chosen"), c)));
    m.extend(rejected.map(|r| (format!("{prefix}rewards/rejected"), r)));
    if let (Some(c), Some(r)) = (chosen, rejected) {
        m.push((format!("{prefix}rewards/margins"), c - r));
    }
    m
}

pub struct Kto<D: Backend> {
    train: Vec<KtoExample>,
    val: Vec<KtoExample>,
    keys: KtoKeys,
    batch: usize,
    pad: u32,
    dev: D,
}

impl<D: Backend> Kto<D> {
    pub fn new(
        env: &StageEnv<D>,
        keys: &KtoKeys,
        reference: &dyn LanguageModel<D>,
        train: &[PreferenceRecord],
        val: &[PreferenceRecord],
    ) -> Result<Self> {
        let limit = env.block_size + 1;
        let train = labelled(train);
        check_labels(&train)?;
        let train = prepare(reference, env.tokenizer, &train, limit);
        let val = prepare(reference, env.tokenizer, &labelled(val), limit);
        let up = train.iter().filter(|e| e.desirable).count();
        if let Some(warning) = weighting_warning(keys, up, train.len() - up) {
            eprintln!("warning: [{}] {warning}", env.stage.name);
        }
        println!(
            "[{}] KTO on {} answers ({up} 👍, {} 👎; {} validation), beta {}",
            env.stage.name,
            train.len(),
            train.len() - up,
            val.len(),
            keys.beta
        );
        Ok(Self {
            train,
            val,
            keys: keys.clone(),
            batch: env.stage.batch_size,
            pad: env.tokenizer.special(Special::Pad),
            dev: env.dev.clone(),
        })
    }

    /// Summed answer-token log-probabilities of the rows of `b`, on a gradient tape.
    fn traced_logps(
        &self,
        model: &dyn LanguageModel<D>,
        b: &Batch,
    ) -> Tensor<(usize,), f32, D, Traced<D>> {
        let x = self.dev.tensor_from_vec(b.inputs.clone(), (b.batch, b.seq));
        let y = self
            .dev
            .tensor_from_vec(b.targets.clone(), (b.batch, b.seq));
        let mask = self.dev.tensor_from_vec(
            b.mask.iter().map(|&m| m as u8 as f32).collect(),
            (b.batch, b.seq),
        );
        (token_logprobs(model.logits_traced(x, Gradients::leaky()), y) * mask)
            .sum::<(usize,), Axis<1>>()
    }

    /// The loss and metrics of `examples` given the policy's log-probabilities of their
    /// answers (on a tape while training) and of their mismatched pairs.
    fn score<T: Tape<f32, D>>(
        &self,
        examples: &[&KtoExample],
        policy: Tensor<(usize,), f32, D, T>,
        policy_mismatched: &[f64],
        prefix: &str,
    ) -> (Tensor<Rank0, f32, D, T>, Metrics) {
        let ref_mismatched: Vec<f64> = examples.iter().map(|e| e.ref_logps.1).collect();
        let kl = mean_log_ratio(policy_mismatched, &ref_mismatched);
        let z = kl.max(0.0);
        let reference: Vec<f32> = examples.iter().map(|e| e.ref_logps.0 as f32).collect();
        let desirable: Vec<bool> = examples.iter().map(|e| e.desirable).collect();
        let rewards: Vec<f64> = crate::util::readback::to_vec(&policy)
            .iter()
            .zip(examples)
            .map(|(&lp, e)| self.keys.beta * (lp as f64 - e.ref_logps.0))
            .collect();
        let reference = self.dev.tensor_from_vec(reference, (examples.len(),));
        let loss = kto_loss(policy, reference, z as f32, &desirable, &self.keys);
        (loss, kto_metrics(prefix, &rewards, &desirable, kl))
    }
}

impl<D: Backend> Objective<D> for Kto<D> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput> {
        let pick: Vec<&KtoExample> = (0..self.batch)
            .map(|_| &self.train[ctx.rng.gen_range(0..self.train.len())])
            .collect();
        // The baseline's log-probabilities are taken without a tape: z is a constant.
        let mismatched: Vec<&Example> = pick.iter().map(|e| &e.mismatched).collect();
        let policy_mismatched = answer_logprobs(&*ctx.model, &mismatched, self.pad);
        let answers: Vec<&Example> = pick.iter().map(|e| &e.answer).collect();
        let b = pad_examples(&answers, self.pad);
        let policy = self.traced_logps(&*ctx.model, &b);
        let (loss, metrics) = self.score(&pick, policy, &policy_mismatched, "");
        let loss_value = crate::util::readback::scalar(&loss) as f64;
        ctx.apply(loss.backward())?;
        Ok(StepOutput {
            loss: loss_value,
            tokens: (b.batch * b.seq) as u64,
            metrics,
        })
    }

    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics> {
        if self.val.is_empty() {
            return Ok(vec![]);
        }
        let examples: Vec<&KtoExample> = self.val.iter().collect();
        let answers: Vec<&Example> = examples.iter().map(|e| &e.answer).collect();
        let mismatched: Vec<&Example> = examples.iter().map(|e| &e.mismatched).collect();
        let policy: Vec<f32> = answer_logprobs(model, &answers, self.pad)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let policy = self.dev.tensor_from_vec(policy, (examples.len(),));
        let policy_mismatched = answer_logprobs(model, &mismatched, self.pad);
        let (loss, mut metrics) = self.score(&examples, policy, &policy_mismatched, "val/");
        metrics.insert(
            0,
            (
                "val/loss".into(),
                crate::util::readback::scalar(&loss) as f64,
            ),
        );
        Ok(metrics)
    }
}

impl RlhfMethod for KtoKeys {
    /// Labelled answers; both labels are checked here rather than in the objective, so that
    /// data of one kind fails before any stage trains.
    fn load_data(&self, split: &Split) -> Result<RlhfData> {
        let data = read_records(split, crate::data::read_labelled)?;
        check_labels(&labelled(data.records()?.0)).with_context(|| {
            let files: Vec<String> = (split.stage.data_paths().iter())
                .map(|p| p.display().to_string())
                .collect();
            format!("{}: {}", (split.locate)("data"), files.join(", "))
        })?;
        Ok(data)
    }

    fn objective<'a, D: Backend>(
        &'a self,
        env: &'a StageEnv<D>,
        model: &mut dyn LanguageModel<D>,
        data: &'a RlhfData,
    ) -> Result<Built<'a, D>> {
        against_reference(env, model, data, |reference, train, val| {
            Kto::new(env, self, reference, train, val)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Message, Role};
    use crate::spec::flat::FlatStage;
    use crate::spec::StageKind;

    fn keys(desirable_weight: f64, undesirable_weight: f64) -> KtoKeys {
        let mut flat = FlatStage::new("kto", StageKind::Rlhf);
        flat.algorithm = Some(crate::spec::Algorithm::Kto);
        (flat.desirable_weight, flat.undesirable_weight) = (desirable_weight, undesirable_weight);
        KtoKeys(flat)
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// A 👍 answer (policy −2, reference −4) and a 👎 one (policy −4.5, reference −4).
    fn loss_of(z: f64, keys: &KtoKeys) -> f64 {
        let dev = Cpu::default();
        let policy = dev.tensor_from_vec(vec![-2.0f32, -4.5], (2,));
        let reference = dev.tensor_from_vec(vec![-4.0f32, -4.0], (2,));
        kto_loss(policy, reference, z as f32, &[true, false], keys).array() as f64
    }

    #[test]
    fn kto_loss_matches_a_hand_computed_value() {
        // Mismatched pairs: policy −6, −7 against reference −7, −7: log-ratios 1 and 0, z = 0.5.
        let z = kl_estimate(&[-6.0, -7.0], &[-7.0, -7.0]);
        assert_eq!(z, 0.5);
        // 👍: r = −2 − (−4) = 2, loss 1 − σ(0.1·(2 − 0.5)) = 1 − σ(0.15) = 0.462570.
        // 👎: r = −4.5 − (−4) = −0.5, loss 1 − σ(0.1·(0.5 − (−0.5))) = 1 − σ(0.1) = 0.475021.
        // Weights 1 and 2: (1·0.462570 + 2·0.475021) / 2 = 0.706306.
        let expected = (1.0 - sigmoid(0.15) + 2.0 * (1.0 - sigmoid(0.1))) / 2.0;
        assert!((expected - 0.706306).abs() < 1e-6, "{expected}");
        let got = loss_of(z, &keys(1.0, 2.0));
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn the_kl_estimate_is_clamped_at_zero() {
        // Mismatched log-ratios −12 − (−7) = −5 twice: the mean −5 is clamped to z = 0.
        let z = kl_estimate(&[-12.0, -12.0], &[-7.0, -7.0]);
        assert_eq!(z, 0.0);
        // 👍: 1 − σ(0.1·(2 − 0)) = 1 − σ(0.2) = 0.450166.
        // 👎: 1 − σ(0.1·(0 − (−0.5))) = 1 − σ(0.05) = 0.487503. Mean: 0.468835.
        let expected = (1.0 - sigmoid(0.2) + 1.0 - sigmoid(0.05)) / 2.0;
        assert!((expected - 0.468835).abs() < 1e-6, "{expected}");
        let got = loss_of(z, &keys(1.0, 1.0));
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        // Unclamped (z = −5) it would be (1 − σ(0.7) + 1 − σ(−0.45)) / 2 = 0.471226.
        assert!((loss_of(-5.0, &keys(1.0, 1.0)) - 0.471226).abs() < 1e-6);
    }

    #[test]
    fn the_kl_metric_is_the_estimate_before_the_clamp() {
        let example = |desirable| KtoExample {
            answer: Example {
                ids: vec![],
                loss_mask: vec![],
            },
            mismatched: Example {
                ids: vec![],
                loss_mask: vec![],
            },
            desirable,
            ref_logps: (-4.0, -7.0),
        };
        let kto = Kto {
            train: vec![],
            val: vec![],
            keys: keys(1.0, 1.0),
            batch: 2,
            pad: 0,
            dev: Cpu::default(),
        };
        let (up, down) = (example(true), example(false));
        let policy = Cpu::default().tensor_from_vec(vec![-2.0f32, -4.5], (2,));
        // Mismatched log-ratios −5 twice: z is clamped to 0, the logged kl is −5.
        let (loss, metrics) = kto.score(&[&up, &down], policy, &[-12.0, -12.0], "");
        assert!((loss.array() as f64 - 0.468835).abs() < 1e-6);
        assert_eq!(metrics[0], ("kl".to_string(), -5.0));
    }

    #[test]
    fn a_weighting_outside_the_advised_range_is_warned_about() {
        // 4 👍 and 7 👎 at weights 1: 0.57, as in the issue: too few 👍.
        let warning = weighting_warning(&keys(1.0, 1.0), 4, 7).expect("a warning");
        assert!(
            warning.contains("0.57") && warning.contains("desirable_weight = 1.75"),
            "{warning}"
        );
        assert!(weighting_warning(&keys(1.0, 1.0), 10, 10).is_none());
        assert!(
            weighting_warning(&keys(1.0, 1.0), 4, 3).is_none(),
            "4/3 is inside"
        );
        assert!(
            weighting_warning(&keys(1.0, 1.0), 3, 2).is_some(),
            "1.5 is above"
        );
        assert!(weighting_warning(&keys(1.75, 1.0), 4, 7).is_none());
    }

    /// The gradient is dfdx's autodiff; this checks it against central differences, and that
    /// it raises the 👍 answer and lowers the 👎 one.
    #[test]
    fn autodiff_gradient_matches_finite_differences() {
        let dev = Cpu::default();
        let (values, reference) = (vec![-2.0f32, -4.5], vec![-4.0f32, -4.0]);
        let (labels, keys) = ([true, false], keys(1.0, 2.0));
        let loss_at = |v: Vec<f32>| {
            let p = dev.tensor_from_vec(v, (2,));
            let r = dev.tensor_from_vec(reference.clone(), (2,));
            kto_loss(p, r, 0.5, &labels, &keys).array() as f64
        };
        let p = dev.tensor_from_vec(values.clone(), (2,));
        let r = dev.tensor_from_vec(reference.clone(), (2,));
        let grads = kto_loss(p.leaky_trace(), r, 0.5, &labels, &keys).backward();
        let grad = grads.get(&p).as_vec();
        let h = 1e-2;
        for i in 0..2 {
            let (mut up, mut down) = (values.clone(), values.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss_at(up) - loss_at(down)) / (2.0 * h as f64);
            assert!(
                (grad[i] as f64 - numeric).abs() < 2e-5,
                "{grad:?} vs {numeric}"
            );
        }
        assert!(grad[0] < 0.0 && grad[1] > 0.0, "{grad:?}");
    }

    fn feedback(prompt: &str, answer: &str, label: bool) -> Feedback {
        let message = |role, content: &str| Message {
            role,
            content: content.into(),
        };
        Feedback {
            prompt: vec![message(Role::User, prompt)],
            completion: vec![message(Role::Assistant, answer)],
            label,
        }
    }

    #[test]
    fn mismatched_partners_skip_answers_to_the_same_prompt() {
        let items = [
            feedback("a", "1", true),
            feedback("a", "2", false),
            feedback("b", "3", true),
        ];
        assert_eq!(partner(&items, 0), 2);
        assert_eq!(partner(&items, 1), 2);
        assert_eq!(partner(&items, 2), 0);
        // With one prompt only, the neighbour is the best there is.
        assert_eq!(partner(&items[..2], 0), 1);
    }

    #[test]
    fn pairs_split_into_both_labels_and_one_label_alone_is_refused() {
        let pair = PreferenceRecord::Pair(crate::data::PreferencePair {
            prompt: feedback("q", "", true).prompt,
            chosen: feedback("q", "good", true).completion,
            rejected: feedback("q", "bad", false).completion,
            task: None,
        });
        let answers = labelled(&[pair]);
        assert_eq!(
            answers,
            vec![feedback("q", "good", true), feedback("q", "bad", false)]
        );
        assert!(check_labels(&answers).is_ok());
        let err = check_labels(&answers[..1]).unwrap_err().to_string();
        assert!(
            err.contains("both 👍 and 👎") && err.contains("1 👍 and 0 👎"),
            "{err}"
        );
    }

    #[test]
    fn metrics_of_a_batch_without_one_kind_leave_it_out() {
        let m = kto_metrics("val/", &[0.2, 0.4], &[true, true], 0.3);
        let names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["val/kl", "val/rewards/chosen"]);
        assert!((m[1].1 - 0.3).abs() < 1e-12);
        let m = kto_metrics("", &[0.2, -0.4], &[true, false], 0.0);
        assert_eq!(
            m.last().unwrap(),
            &("rewards/margins".to_string(), 0.6000000000000001)
        );
    }
}
