//! The pilot: with several points at once, the first point to run goes alone, on every core,
//! when the points after it would take stages it trains (`runner/reuse.rs`).
//!
//! Without it, `--jobs 2` starts two points; one trains the shared stages (often all but the
//! swept one) on its one core while the other waits for them on the other core, idle. The
//! pilot trains them on both cores instead, then the rest run `jobs` at a time as usual.
//! A stage's weights do not depend on the number of compute threads (the training test
//! `weights_do_not_depend_on_the_thread_count` holds it), so the points' numbers are the same
//! as without a pilot.

use super::points::OpenSweep;
use crate::spec::Experiment;

/// The point that goes first, and the stages the other points will take from it.
#[derive(Debug, PartialEq)]
pub struct Pilot {
    pub index: usize,
    pub stages: Vec<String>,
}

/// The first of the points `to_run`, if another of them shares its first stages.
pub fn choose(open: &OpenSweep, to_run: &[usize]) -> Option<Pilot> {
    let (&first, others) = to_run.split_first()?;
    let spec = |i: usize| open.points[i].spec.as_ref().ok().map(|s| &s.spec);
    let first_spec = spec(first)?;
    let shared = others
        .iter()
        .filter_map(|&i| spec(i))
        .map(|other| shared_stages(first_spec, other))
        .max()
        .unwrap_or(0);
    (shared > 0).then(|| Pilot {
        index: first,
        stages: (first_spec.stages[..shared].iter())
            .map(|s| s.name.clone())
            .collect(),
    })
}

/// How many leading stages two specs train alike. A guess at what stage identities will say
/// (they also hash data contents and the trained tokenizer, which exist only once a run
/// starts): everything a stage reads at the run level must match, and the tokenizer is
/// trained on every stage's data, so that must match too. A wrong guess costs only the
/// pilot's parallelism, never a result.
pub fn shared_stages(a: &Experiment, b: &Experiment) -> usize {
    let run_level = a.seed == b.seed
        && a.device == b.device
        && a.model == b.model
        && a.tokenizer == b.tokenizer
        && a.stages.len() == b.stages.len()
        && a.stages
            .iter()
            .zip(&b.stages)
            .all(|(x, y)| x.data == y.data);
    if !run_level {
        return 0;
    }
    (a.stages.iter().zip(&b.stages))
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{load_spec, LoadOptions};

    fn quickstart(sets: &[&str]) -> Experiment {
        let opts = LoadOptions {
            data_root: "datasets".into(),
            sets: sets.iter().map(|s| s.to_string()).collect(),
        };
        let path = std::path::Path::new("experiments/quickstart.toml");
        load_spec(path, &opts).unwrap().spec
    }

    #[test]
    fn a_late_stage_swept_shares_every_stage_before_it() {
        let a = quickstart(&[]);
        let b = quickstart(&["stages.rlhf.kl_coef=0.5"]);
        let rlhf = a.stages.iter().position(|s| s.name == "rlhf").unwrap();
        assert!(rlhf > 0);
        assert_eq!(shared_stages(&a, &b), rlhf);
        assert_eq!(shared_stages(&a, &a), a.stages.len());
    }

    #[test]
    fn the_first_stage_or_the_seed_swept_shares_nothing() {
        let a = quickstart(&[]);
        let first = &a.stages[0].name;
        let lr = format!("stages.{first}.lr=0.01");
        assert_eq!(shared_stages(&a, &quickstart(&[lr.as_str()])), 0);
        assert_eq!(shared_stages(&a, &quickstart(&["seed=7"])), 0);
        assert_eq!(
            shared_stages(&a, &quickstart(&["report.sampling.temperature=0.3"])),
            a.stages.len()
        );
    }
}
