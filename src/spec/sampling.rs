//! How answers are sampled, whichever part of a spec says so: the report's `sampling`, the
//! `max_new_tokens` and `temperature` of a rollout (PPO, GRPO) or a feedback stage, gold
//! evaluation, and the flags of the commands that sample. Each resolves to one
//! [`SampleSettings`], which `infer::sampling` turns into the model's `SampleOptions`. Each
//! setting's rule is its declaration: `Sampling`'s field for the report and the command line,
//! the stage key's (`flat.rs`) for a rollout or a feedback stage.

use super::flat::FlatStage;
use super::problem::Problem;
use super::schema::Sampling;
use super::stage_keys::check_declared;

/// The settings of one way of sampling answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSettings {
    /// Longest answer, in tokens: at least 1.
    pub max_new_tokens: usize,
    /// At least 0; 0 is greedy decoding (the likeliest token every time).
    pub temperature: f64,
    /// Sample among the k likeliest tokens; 0 turns the filter off.
    pub top_k: usize,
    /// The nucleus: the smallest set of tokens whose probability reaches p, in (0, 1].
    pub top_p: f64,
}

impl SampleSettings {
    /// The model's own distribution (temperature 1, no top-k or top-p): what a setting left
    /// unsaid means.
    pub fn model(max_new_tokens: usize) -> SampleSettings {
        SampleSettings {
            max_new_tokens,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        }
    }

    /// The likeliest answer, no randomness.
    pub fn greedy(max_new_tokens: usize) -> SampleSettings {
        SampleSettings {
            temperature: 0.0,
            ..SampleSettings::model(max_new_tokens)
        }
    }

    /// Each setting's rule, as `[report] sampling` declares it (`Sampling`'s fields, the one
    /// place the sampling settings' ranges are written); a broken one is reported at
    /// `at(its key)` (`max_new_tokens`, `temperature`, `top_k`, `top_p`).
    pub fn check(&self, at: &dyn Fn(&str) -> String) -> Result<(), Problem> {
        let declared = Sampling {
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            ..Sampling::default()
        };
        check_declared(&declared, at)
    }

    /// The same rules for settings given as a command's flags (`--max-new-tokens`).
    pub fn check_flags(&self) -> anyhow::Result<()> {
        self.check(&|key| format!("--{}", key.replace('_', "-")))
            .map_err(|p| anyhow::anyhow!("`{}`: {}", p.path, p.message))
    }
}

/// `[report] sampling`: the report's samples, every setting as declared.
impl From<&Sampling> for SampleSettings {
    fn from(s: &Sampling) -> SampleSettings {
        SampleSettings {
            max_new_tokens: s.max_new_tokens,
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
        }
    }
}

impl Sampling {
    /// How gold evaluation samples: the model's own distribution, so that the KL estimate is
    /// unbiased and the gold rate is what users would see, answers as long as the report's.
    pub fn gold(&self) -> SampleSettings {
        SampleSettings::model(self.max_new_tokens)
    }
}

/// The answers a PPO, GRPO or feedback stage samples: its answer length and temperature.
impl From<&FlatStage> for SampleSettings {
    fn from(keys: &FlatStage) -> SampleSettings {
        SampleSettings {
            temperature: keys.temperature,
            ..SampleSettings::model(keys.max_new_tokens)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(settings: SampleSettings) -> Option<Problem> {
        settings
            .check(&|key| format!("report.sampling.{key}"))
            .err()
    }

    #[test]
    fn greedy_and_the_model_distribution_keep_every_rule() {
        assert_eq!(problem(SampleSettings::greedy(1)), None);
        assert_eq!(problem(SampleSettings::model(48)), None);
        assert_eq!(problem((&Sampling::default()).into()), None);
    }

    #[test]
    fn each_broken_rule_names_its_key() {
        let ok = SampleSettings::model(8);
        let cases = [
            (
                SampleSettings {
                    max_new_tokens: 0,
                    ..ok
                },
                "max_new_tokens",
                "> 0",
            ),
            (
                SampleSettings {
                    temperature: -0.5,
                    ..ok
                },
                "temperature",
                ">= 0",
            ),
            (
                SampleSettings {
                    temperature: f64::NAN,
                    ..ok
                },
                "temperature",
                ">= 0",
            ),
            (SampleSettings { top_p: 0.0, ..ok }, "top_p", "(0, 1]"),
            (SampleSettings { top_p: 1.5, ..ok }, "top_p", "(0, 1]"),
        ];
        for (settings, key, expected) in cases {
            let p = problem(settings).expect("a broken rule");
            assert_eq!(p.path, format!("report.sampling.{key}"));
            assert!(p.message.contains(expected), "{}", p.message);
        }
    }

    #[test]
    fn flags_are_named_as_typed() {
        let cold = SampleSettings {
            temperature: -1.0,
            ..SampleSettings::model(8)
        };
        let error = cold.check_flags().unwrap_err().to_string();
        assert_eq!(error, "`--temperature`: expected a number >= 0, found -1");
        let error = SampleSettings::greedy(0)
            .check_flags()
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "`--max-new-tokens`: expected a whole number > 0, found 0"
        );
    }

    #[test]
    fn the_report_keeps_its_settings_and_gold_samples_the_model() {
        let report = Sampling {
            temperature: 0.0,
            top_k: 5,
            top_p: 0.9,
            max_new_tokens: 12,
            seed: 3,
        };
        let s = SampleSettings::from(&report);
        assert_eq!(
            (s.temperature, s.top_k, s.top_p, s.max_new_tokens),
            (0.0, 5, 0.9, 12)
        );
        assert_eq!(report.gold(), SampleSettings::model(12));
    }
}
