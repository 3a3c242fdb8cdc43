//! The table a run ends with: for every stage, in stage order, what `[report] eval` measured
//! (exact match, gold rate, win rate and KL against the baseline), read from summary.json.

use crate::results::{Summary, EVAL_EXACT_MATCH, GOLD_RATE};

/// The table as text; `None` when nothing was measured. Columns appear only where some stage
/// has a number; a stage without one gets `—`.
pub fn end_table(summary: &Summary, stages: &[String]) -> Option<String> {
    let rows: Vec<(&String, &std::collections::BTreeMap<String, f64>)> = stages
        .iter()
        .filter_map(|s| Some((s, summary.get(s)?)))
        .collect();
    // The win rate's baseline: the first `gold/win_vs/<b>` key any stage has.
    let baseline = rows.iter().find_map(|(_, m)| {
        m.keys()
            .find_map(|k| k.strip_prefix("gold/win_vs/").filter(|b| !b.contains('/')))
    });
    let mut columns = vec![
        ("exact match".to_string(), EVAL_EXACT_MATCH.to_string()),
        ("gold".to_string(), GOLD_RATE.to_string()),
    ];
    if let Some(b) = baseline {
        columns.push((format!("win vs {b}"), crate::results::gold_win_key(b)));
        columns.push((format!("KL to {b}"), crate::results::kl_key(b)));
    }
    columns.retain(|(_, key)| rows.iter().any(|(_, m)| m.contains_key(key)));
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|(_, m)| columns.iter().any(|(_, k)| m.contains_key(k)))
        .collect();
    if columns.is_empty() {
        return None;
    }
    let mut cells = vec![std::iter::once("stage".to_string())
        .chain(columns.iter().map(|(h, _)| h.clone()))
        .collect::<Vec<_>>()];
    for (stage, m) in rows {
        let values = columns
            .iter()
            .map(|(_, k)| m.get(k).map_or("—".to_string(), |v| format!("{v:.3}")));
        cells.push(std::iter::once(stage.clone()).chain(values).collect());
    }
    Some(layout(&cells))
}

/// Left-aligned first column, the others right-aligned, two spaces apart.
fn layout(cells: &[Vec<String>]) -> String {
    let width = |c: usize| {
        cells
            .iter()
            .map(|r| r[c].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..cells[0].len()).map(width).collect();
    let mut out = String::new();
    for row in cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                let pad = " ".repeat(w - cell.chars().count());
                match i {
                    0 => format!("{cell}{pad}"),
                    _ => format!("{pad}{cell}"),
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn stages_come_in_stage_order_with_the_measured_columns() {
        let numbers = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let summary: Summary = [
            (
                "ppo",
                numbers(&[
                    ("eval/exact_match", 0.5),
                    ("gold/rate", 0.97),
                    ("gold/win_vs/assistant", 0.9),
                    ("gold/win_vs/assistant/low", 0.8),
                    ("kl_vs/assistant", 2.5),
                ]),
            ),
            (
                "assistant",
                numbers(&[("eval/exact_match", 0.6), ("gold/rate", 0.29)]),
            ),
            ("base", numbers(&[("eval/exact_match", 0.0)])),
            ("rm", numbers(&[("accuracy", 0.9)])),
        ]
        .into_iter()
        .map(|(s, m)| (s.to_string(), m))
        .collect();
        let stages: Vec<String> = ["base", "assistant", "rm", "ppo"].map(String::from).into();
        let table = end_table(&summary, &stages).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let header: Vec<&str> = lines[0]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            header,
            [
                "stage",
                "exact match",
                "gold",
                "win vs assistant",
                "KL to assistant"
            ]
        );
        assert!(
            lines[1].starts_with("base") && lines[1].contains("0.000"),
            "{table}"
        );
        assert!(
            lines[2].starts_with("assistant") && lines[2].contains("0.290"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("ppo") && lines[3].ends_with("2.500"),
            "{table}"
        );
        assert!(lines[1].contains('—'), "base has no gold rate: {table}");
        assert_eq!(end_table(&Summary::new(), &stages), None);
    }
}
