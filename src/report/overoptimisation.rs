//! Over-optimisation, as Gao et al. (2022) draw it: for runs that pushed an RLHF stage to
//! different distances from its baseline, the judge's (gold) and the reward model's (proxy)
//! win rate against the baseline, both against √KL. While the two rise together the policy
//! is learning what the rater likes; where the proxy keeps rising and gold stalls or falls,
//! the policy is exploiting the reward model's mistakes.

use super::chart::{ChartSpec, Series};
use super::run::RunData;
use crate::results::{gold_win_key, kl_key, proxy_win_key};
use std::collections::BTreeSet;

/// One chart per (stage, baseline) that at least two runs measured gold, proxy and KL for.
pub fn charts(runs: &[RunData]) -> Vec<(String, ChartSpec)> {
    let mut measured: BTreeSet<(String, String)> = BTreeSet::new();
    for run in runs {
        for (stage, numbers) in &run.summary {
            for key in numbers.keys() {
                if let Some(baseline) = key.strip_prefix("kl_vs/") {
                    measured.insert((stage.clone(), baseline.to_string()));
                }
            }
        }
    }
    measured
        .into_iter()
        .filter_map(|(stage, baseline)| {
            let chart = chart(runs, &stage, &baseline)?;
            Some((format!("overopt-{stage}-{baseline}"), chart))
        })
        .collect()
}

fn chart(runs: &[RunData], stage: &str, baseline: &str) -> Option<ChartSpec> {
    let point = |run: &RunData, y_key: &str| {
        let numbers = run.summary.get(stage)?;
        let kl = numbers.get(&kl_key(baseline))?;
        let y = numbers.get(y_key)?;
        // A Monte-Carlo KL can come out slightly below 0; it is 0 then.
        (kl.is_finite() && y.is_finite()).then(|| (kl.max(0.0).sqrt(), *y))
    };
    let line = |name: &str, y_key: String| {
        let mut points: Vec<(f64, f64)> = runs.iter().filter_map(|r| point(r, &y_key)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Series {
            name: name.to_string(),
            points,
        }
    };
    let gold = line("gold: the judge", gold_win_key(baseline));
    let proxy = line("proxy: the reward model", proxy_win_key(baseline));
    if gold.points.len() < 2 || proxy.points.len() < 2 {
        return None;
    }
    Some(ChartSpec {
        title: format!("{stage}: win rate vs {baseline} by √KL (gold and proxy)"),
        x_label: format!("√KL to {baseline} (√nats per answer)"),
        y_label: format!("win rate vs {baseline}"),
        series: vec![gold, proxy],
        log_y: false,
        smooth: None,
        legend: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(kl: f64, gold: f64, proxy: f64) -> RunData {
        let numbers = BTreeMap::from([
            ("kl_vs/sft".to_string(), kl),
            ("gold/win_vs/sft".to_string(), gold),
            ("proxy/win_vs/sft".to_string(), proxy),
        ]);
        RunData {
            dir: "run".into(),
            spec_text: None,
            spec: None,
            meta: None,
            summary: BTreeMap::from([("ppo".to_string(), numbers)]),
            stages: vec![],
            samples: vec![],
            probes: vec![],
        }
    }

    #[test]
    fn gold_and_proxy_are_drawn_against_the_root_of_the_kl_in_kl_order() {
        let runs = [run(4.0, 0.6, 0.9), run(1.0, 0.7, 0.7), run(-0.01, 0.5, 0.5)];
        let charts = charts(&runs);
        assert_eq!(charts.len(), 1);
        let (stem, chart) = &charts[0];
        assert_eq!(stem, "overopt-ppo-sft");
        assert_eq!(
            chart.series[0].points,
            vec![(0.0, 0.5), (1.0, 0.7), (2.0, 0.6)]
        );
        assert_eq!(
            chart.series[1].points,
            vec![(0.0, 0.5), (1.0, 0.7), (2.0, 0.9)]
        );
        // One run is no curve.
        assert!(super::charts(&runs[..1]).is_empty());
    }
}
