//! RLHF methods, one file each: a view of the stage's keys for the method, the inputs it
//! cannot do without, and what a stage without `data` is told. Every key is declared once, as
//! a field of `FlatStage` (`flat.rs`) with the stages that take it (`x-stages`); a method's
//! view is the validated flat table, read through `Deref` (`keys.beta`), so no key is named
//! twice. What the method does in a run (its data and its objective) is in
//! `stages/rlhf/<name>.rs`, on the same view.
//!
//! Adding a method `xyz`:
//! 1. `spec/methods/xyz.rs`: `keys_view!(XyzKeys)` and `impl RlhfSpec for XyzKeys` (`kto.rs`
//!    is a short example); a new key is a field of `FlatStage` with its doc, default, range
//!    and `x-stages` (add `"xyz"` there for a key another method has); its field order is the
//!    resolved spec's (write a new key only when set, as KTO's weights are, so that no other
//!    spec's run id changes);
//! 2. `stages/rlhf/xyz.rs`: `impl RlhfMethod for XyzKeys` (`load_data`, `objective`);
//! 3. `pub mod xyz;` beside the others, here and in `stages/rlhf/mod.rs`;
//! 4. one line in `rlhf_methods!` (`spec/kinds.rs`, below `flat.rs`, which reads `algorithm`):
//!
//! ```text
//! Xyz(xyz::XyzKeys) = "xyz",
//! ```
//!
//! That line makes `algorithm = "xyz"` parse (and appear in `Algorithm`'s error message),
//! gives the method the keys whose `x-stages` name it (or `rlhf`) in unknown-key checks,
//! `--set`, the schema and `gptlab keys`, and lets `stages/rlhf` dispatch to its
//! `RlhfMethod`; the compiler asks for any part that is missing.

pub mod dpo;
pub mod grpo;
pub mod kto;
pub mod ppo;
pub mod rollout;
#[cfg(test)]
pub mod toy;

use super::flat::{FlatProblem, FlatStage};
use super::kinds::{rlhf_methods, Algorithm};
use super::problem::Problem;

/// Declares `$name` as a view of a stage's keys: the validated flat table, read through
/// `Deref`, so a method's keys are `FlatStage`'s fields and are declared nowhere else.
macro_rules! keys_view {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name(pub(crate) $crate::spec::flat::FlatStage);

        impl std::ops::Deref for $name {
            type Target = $crate::spec::flat::FlatStage;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }
    };
}
pub(crate) use keys_view;

/// What the spec knows of an RLHF method, implemented by its view of the keys.
pub trait RlhfSpec: std::ops::Deref<Target = FlatStage> + std::fmt::Debug {
    /// The view of a stage's flat form (defaults already filled in), or the key at fault
    /// when one it needs is missing.
    fn of(flat: FlatStage) -> Result<Self, FlatProblem>
    where
        Self: Sized;
    /// Checks what the keys' declared ranges (`flat.rs`, checked for every method) do not
    /// say; `at(key)` is the key's path for the problem.
    fn check(&self, _at: &dyn Fn(&str) -> String) -> Result<(), Problem> {
        Ok(())
    }
    /// What a stage of this method without `data` is told; `None` when it reads no `data`
    /// (it samples answers to `prompts`).
    fn missing_data(&self) -> Option<&'static str>;
    /// The earlier reward stage it scores answers with, if any.
    fn reward_model(&self) -> Option<&str> {
        None
    }
}

/// Writes `Algorithm` (the names `algorithm` takes) and `RlhfKeys` (a stage's method with
/// its keys) for the methods of `rlhf_methods!`, and the matches that go from one to the
/// other; everything else goes through `RlhfKeys::spec`.
macro_rules! define_methods {
    ($($(#[$cfg:meta])* $variant:ident($module:ident::$keys:ident) = $name:literal,)*) => {
        /// An RLHF stage's method, with that method's keys.
        #[derive(Debug, Clone, PartialEq)]
        pub enum RlhfKeys {
            $($(#[$cfg])* $variant($module::$keys),)*
        }

        impl Algorithm {
            /// This method's view of a stage's flat form.
            pub fn view(self, flat: FlatStage) -> Result<RlhfKeys, FlatProblem> {
                match self {
                    $($(#[$cfg])* Algorithm::$variant => {
                        $module::$keys::of(flat).map(RlhfKeys::$variant)
                    })*
                }
            }
        }

        impl RlhfKeys {
            pub fn algorithm(&self) -> Algorithm {
                match self {
                    $($(#[$cfg])* RlhfKeys::$variant(_) => Algorithm::$variant,)*
                }
            }

            /// The method's side of the spec: checking, its inputs.
            pub fn spec(&self) -> &dyn RlhfSpec {
                match self {
                    $($(#[$cfg])* RlhfKeys::$variant(keys) => keys,)*
                }
            }
        }
    };
}

rlhf_methods!(define_methods);
