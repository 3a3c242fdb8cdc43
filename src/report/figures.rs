//! Which charts a stage's metrics make: loss (and val/loss) against steps and tokens, one
//! chart per group of related metrics, diagnostics, and the learning-rate schedule last.

use super::chart::{wants_log_y, ChartSpec, Series};
use crate::results::metrics::{MetricsTable, STEP, TOKENS};

/// EMA factor for dense training curves (sparse ones are never smoothed, see `chart.rs`).
const SMOOTHING: f64 = 0.8;
/// Throughput and optimiser health: shown after the metrics that say what was learned.
const DIAGNOSTICS: &[&str] = &["grad_norm", "tok_per_sec", "mfu"];

/// A chart and the file stem it is written under (`loss` → `loss.svg`, `loss.png`).
#[derive(Debug, Clone)]
pub struct PlannedChart {
    pub stem: String,
    pub spec: ChartSpec,
}

/// The group a metric is drawn in: `val/X` goes with `X`; `objective/kl` and
/// `objective/entropy` share `objective`; anything else stands alone.
pub fn metric_group(name: &str) -> String {
    let base = name.strip_prefix("val/").unwrap_or(name);
    match base.split_once('/') {
        Some((prefix, _)) => prefix.to_string(),
        None => base.to_string(),
    }
}

/// The y-axis label of a group, with its unit where it has one.
pub fn axis_label(group: &str) -> String {
    let label = match group {
        "loss" => "loss (nats/token)",
        "bpb" => "bits per byte",
        "lr" => "learning rate",
        "tok_per_sec" => "tokens / s",
        "grad_norm" => "gradient norm (L2)",
        "mfu" => "model FLOPs utilisation",
        "kl" => "KL (nats)",
        g if g.contains("accura") || g.contains("exact_match") || g.contains("clipfrac") => {
            "fraction"
        }
        g if g.contains("length") => "tokens",
        g => g,
    };
    label.to_string()
}

/// The charts of one stage's metrics, in reading order.
pub fn stage_charts(stage: &str, table: &MetricsTable) -> Vec<PlannedChart> {
    let mut charts = Vec::new();
    let metrics = table.metric_names();
    let has_tokens = !table.series(TOKENS, TOKENS).is_empty();

    let losses: Vec<&str> = ["loss", "val/loss"]
        .into_iter()
        .filter(|m| metrics.contains(m))
        .collect();
    if !losses.is_empty() {
        charts.push(chart_of(stage, "loss", "loss", &losses, table, STEP));
        if has_tokens {
            let mut by_tokens = chart_of(stage, "loss-tokens", "loss", &losses, table, TOKENS);
            by_tokens.spec.title = format!("{stage} · loss vs tokens seen");
            charts.push(by_tokens);
        }
    }

    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for m in metrics
        .iter()
        .copied()
        .filter(|m| !["loss", "val/loss", "lr"].contains(m))
    {
        let g = metric_group(m);
        match groups.iter_mut().find(|(name, _)| *name == g) {
            Some((_, members)) => members.push(m),
            None => groups.push((g, vec![m])),
        }
    }
    // Stable sort: learned-quality groups keep their order, diagnostics move to the end.
    groups.sort_by_key(|(g, _)| DIAGNOSTICS.contains(&g.as_str()));
    for (group, members) in &groups {
        charts.push(chart_of(
            stage,
            &file_stem(group),
            group,
            members,
            table,
            STEP,
        ));
    }

    if metrics.contains(&"lr") {
        let mut lr = chart_of(stage, "lr", "lr", &["lr"], table, STEP);
        lr.spec.title = format!("{stage} · learning-rate schedule");
        lr.spec.smooth = None;
        lr.spec.log_y = false;
        charts.push(lr);
    }
    // A line needs two points: a metric logged once (a feedback stage's one row) would be a
    // single dot on an empty axis; its value is in the stage's final numbers instead.
    charts.retain(|c| c.spec.series.iter().any(|s| s.points.len() > 1));
    charts
}

fn chart_of(
    stage: &str,
    stem: &str,
    group: &str,
    members: &[&str],
    table: &MetricsTable,
    x: &str,
) -> PlannedChart {
    let series: Vec<Series> = members
        .iter()
        .map(|m| Series {
            name: m.to_string(),
            points: table.series(x, m),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let log_y = group == "loss" && wants_log_y(&series);
    // A group of one is named by its metric: `policy/clipfrac_avg`, a fraction.
    let (name, y_label) = match members {
        [only] if *only != group => (
            only.to_string(),
            axis_label(only.rsplit('/').next().unwrap_or(only)),
        ),
        _ => (group.to_string(), axis_label(group)),
    };
    PlannedChart {
        stem: stem.to_string(),
        spec: ChartSpec {
            title: format!("{stage} · {name}"),
            x_label: if x == TOKENS {
                "tokens seen".into()
            } else {
                "step".into()
            },
            y_label,
            series,
            log_y,
            smooth: Some(SMOOTHING),
            legend: true,
        },
    }
}

/// A metric or group name as a file name: `objective/kl` → `objective-kl`.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: usize) -> MetricsTable {
        MetricsTable {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: (0..rows)
                .map(|r| {
                    columns
                        .iter()
                        .enumerate()
                        .map(|(i, _)| Some((r * 10 + i) as f64 + 1.0))
                        .collect()
                })
                .collect(),
        }
    }

    #[test]
    fn groups_follow_prefixes_and_val_pairs() {
        assert_eq!(metric_group("val/loss"), "loss");
        assert_eq!(metric_group("objective/kl"), "objective");
        assert_eq!(metric_group("val/bpb"), "bpb");
        assert_eq!(metric_group("rewards/margins"), "rewards");
        assert_eq!(metric_group("accuracy"), "accuracy");
    }

    #[test]
    fn stage_charts_order_loss_groups_diagnostics_lr() {
        let t = table(
            &[
                "step",
                "tokens",
                "loss",
                "lr",
                "grad_norm",
                "objective/kl",
                "val/loss",
                "objective/entropy",
                "accuracy",
            ],
            20,
        );
        let stems: Vec<String> = stage_charts("rlhf", &t)
            .into_iter()
            .map(|c| c.stem)
            .collect();
        assert_eq!(
            stems,
            [
                "loss",
                "loss-tokens",
                "objective",
                "accuracy",
                "grad_norm",
                "lr"
            ]
        );
        let charts = stage_charts("rlhf", &t);
        let objective = &charts[2].spec;
        assert_eq!(objective.series.len(), 2);
        assert_eq!(
            charts[0]
                .spec
                .series
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["loss", "val/loss"]
        );
    }

    #[test]
    fn a_stage_with_one_logged_point_gets_no_chart() {
        let t = table(
            &["step", "tokens", "judge/accuracy", "rated", "mean_score"],
            1,
        );
        assert!(stage_charts("rate", &t).is_empty());
        let t = table(&["step", "tokens", "loss", "accuracy"], 2);
        assert_eq!(stage_charts("rm", &t).len(), 3);
    }

    #[test]
    fn empty_columns_make_no_chart() {
        let mut t = table(&["step", "tokens", "loss", "margin"], 5);
        for r in &mut t.rows {
            r[3] = None;
        }
        let stems: Vec<String> = stage_charts("rm", &t).into_iter().map(|c| c.stem).collect();
        assert_eq!(stems, ["loss", "loss-tokens"]);
    }
}
