//! The data mixture of each stage trained on weighted `data`: per source its share of what
//! was sampled, its size, how many passes the run made over it, and (pretraining) its final
//! held-out loss. One table of plain cells that the HTML and Markdown reports both render.

use super::format;
use super::run::{final_metric, RunData};

pub const HEADER: [&str; 6] = [
    "stage",
    "source",
    "share",
    "size",
    "passes",
    "final val/loss",
];

/// One row per source of every mixture stage; empty when no stage used a mixture.
pub fn rows(run: &RunData) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for stage in &run.stages {
        let Some(cost) = &stage.cost else { continue };
        for source in &cost.sources {
            let metric = format!("val/loss/{}", source.name);
            rows.push(vec![
                stage.name.clone(),
                source.name.clone(),
                format!("{:.1}%", 100.0 * source.share),
                format!("{} {}", format::count(source.size as f64), source.unit),
                format!("{:.1}", source.passes),
                final_metric(run, &stage.name, &metric)
                    .map(format::number)
                    .unwrap_or_else(|| "—".into()),
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::run::Stage;
    use crate::results::meta::SourceUsage;
    use crate::results::StageMeta;

    fn stage(name: &str, cost: Option<StageMeta>) -> Stage {
        Stage {
            name: name.into(),
            kind: String::new(),
            metrics: None,
            cost,
        }
    }

    #[test]
    fn a_mixture_stage_lists_each_source_and_other_stages_none() {
        let mut run = RunData {
            dir: "run".into(),
            spec_text: None,
            spec: None,
            meta: None,
            summary: Default::default(),
            stages: vec![],
            samples: vec![],
            probes: vec![],
        };
        let usage = |name: &str, share, size, passes| SourceUsage {
            name: name.into(),
            share,
            size,
            unit: "tokens".into(),
            passes,
        };
        let cost = StageMeta {
            name: "base".into(),
            sources: vec![
                usage("anthologies", 0.4, 73_573, 55.7),
                usage("qa", 0.0, 500_219, 0.0),
            ],
            ..Default::default()
        };
        run.stages.push(stage("base", Some(cost)));
        run.stages.push(stage("assistant", None));
        let rows = rows(&run);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0][..5],
            ["base", "anthologies", "40.0%", "73.6k tokens", "55.7"]
        );
        assert_eq!(rows[1][2], "0.0%");
    }
}
