//! The words that name what a stage does: its kind, an rlhf stage's algorithm (the list of
//! RLHF methods, `rlhf_methods!`, is here: one line registers a method), and GRPO's answer
//! checker. Both the experiment file (`schema.rs`) and a stage (`stage.rs`) use them,
//! so they sit below both.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// Next-token prediction on plain text: the base model.
    Pretrain,
    /// Supervised fine-tuning on conversations: the assistant.
    Sft,
    /// A reward model learnt from preferences or 👍/👎 ratings.
    Reward,
    /// The assistant optimised against feedback, by the method `algorithm` names.
    Rlhf,
    /// Simulated raters: answers of `from` rated by a judge, written as rating files.
    Feedback,
    /// A Hugging Face GPT-2 folder (`path`) read as the base model, with its tokenizer:
    /// trains nothing.
    Pretrained,
}

impl StageKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            StageKind::Pretrain => "pretrain",
            StageKind::Sft => "sft",
            StageKind::Reward => "reward",
            StageKind::Rlhf => "rlhf",
            StageKind::Feedback => "feedback",
            StageKind::Pretrained => "pretrained",
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every RLHF method, as `Variant(module::KeysStruct) = "algorithm"`: one line each, in the
/// order messages list them. `rlhf_methods!(then)` hands the list to the macro `then`, which
/// writes what needs every method (here: `Algorithm`; in `spec/methods`: `RlhfKeys`; in
/// `stages/rlhf`: the dispatch to each method's `RlhfMethod`). The module paths are resolved
/// where the list is expanded, in `spec/methods/` and `stages/rlhf/`.
macro_rules! rlhf_methods {
    ($then:ident) => {
        $then! {
            Ppo(ppo::PpoKeys) = "ppo",
            Dpo(dpo::DpoKeys) = "dpo",
            Grpo(grpo::GrpoKeys) = "grpo",
            Kto(kto::KtoKeys) = "kto",
            // A method for tests only: registering it is this one line too.
            #[cfg(test)] Toy(toy::ToyKeys) = "toy",
        }
    };
}
pub(crate) use rlhf_methods;

/// Writes `Algorithm` for the methods of `rlhf_methods!`.
macro_rules! define_algorithm {
    ($($(#[$cfg:meta])* $variant:ident($module:ident::$keys:ident) = $name:literal,)*) => {
        /// An RLHF method, as `algorithm` names it.
        #[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
        pub enum Algorithm {
            $($(#[$cfg])* #[serde(rename = $name)] $variant,)*
        }

        impl Algorithm {
            /// Every method, in `rlhf_methods!` order.
            pub const ALL: &'static [Algorithm] = &[$($(#[$cfg])* Algorithm::$variant,)*];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($(#[$cfg])* Algorithm::$variant => $name,)*
                }
            }
        }
    };
}

rlhf_methods!(define_algorithm);

/// How GRPO scores a completion when no reward model is given.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Checker {
    /// 1 when the answer equals the reference (trimmed), else 0.
    #[default]
    Exact,
    /// 1 when the answer contains the reference.
    Contains,
    /// Partial credit: character-overlap F1 with the reference (`eval::overlap::char_f1`).
    #[serde(rename = "char_f1")]
    CharF1,
}
