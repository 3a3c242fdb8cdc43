//! Bar charts for probes: the probability of the most likely next tokens after a prompt.

use super::chart::{can_draw_text, palette, Chart};
use super::draw::plot_error;
use super::font::FONT_FAMILY;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Labelled bars, drawn in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct BarSpec {
    pub title: String,
    pub y_label: String,
    pub labels: Vec<String>,
    pub values: Vec<f64>,
    /// Index into the palette (the stage's colour).
    pub colour: usize,
}

impl BarSpec {
    /// The spec (not yet drawn) of bars of next-token probabilities; `labels` are tokens,
    /// often single Chinese characters.
    pub fn probabilities(title: &str, labels: &[String], values: &[f64]) -> BarSpec {
        BarSpec {
            title: title.to_string(),
            y_label: "probability".into(),
            labels: labels.to_vec(),
            values: values.to_vec(),
            colour: 0,
        }
    }
}

/// Tokens that are whitespace would draw as nothing: show them escaped (`\n`, `␠`→`' '`).
pub fn visible_token(token: &str) -> String {
    if token.trim().is_empty() {
        let escaped: String = token
            .chars()
            .map(|c| c.escape_debug().to_string())
            .collect();
        return format!("'{escaped}'");
    }
    let shown: String = token.replace('\n', "\\n").chars().take(12).collect();
    shown
}

impl Chart for BarSpec {
    fn title(&self) -> &str {
        &self.title
    }

    fn size(&self) -> (u32, u32) {
        (640, 360)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let n = self.labels.len().min(self.values.len());
        let values: Vec<f64> = self.values[..n]
            .iter()
            .map(|v| if v.is_finite() { v.max(0.0) } else { 0.0 })
            .collect();
        let y_max = axis_top(&values);
        let text = can_draw_text();
        let labels: Vec<String> = self.labels[..n].iter().map(|l| visible_token(l)).collect();

        let mut builder = ChartBuilder::on(root);
        builder
            .margin(14)
            .margin_right(20)
            .x_label_area_size(if text { 40 } else { 6 })
            .y_label_area_size(if text { 64 } else { 6 });
        if text {
            builder.caption(
                &self.title,
                (FONT_FAMILY, 23).into_font().color(&RGBColor(34, 34, 34)),
            );
        }
        let mut chart = builder
            .build_cartesian_2d((0..n.max(1) - 1).into_segmented(), 0.0..y_max)
            .map_err(plot_error)?;

        let label_of = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(225, 225, 225))
            .axis_style(RGBColor(150, 150, 150))
            .x_labels(n + 1)
            .y_labels(6)
            .x_label_formatter(&label_of)
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0));
        if text {
            mesh.y_desc(self.y_label.as_str())
                .label_style((FONT_FAMILY, 19).into_font().color(&RGBColor(51, 51, 51)))
                .axis_desc_style((FONT_FAMILY, 17).into_font().color(&RGBColor(51, 51, 51)));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(plot_error)?;

        let colour = palette(self.colour);
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), v),
                    ],
                    colour.mix(0.85).filled(),
                );
                bar.set_margin(0, 0, 6, 6);
                bar
            }))
            .map_err(plot_error)?;
        if text {
            let value_style = TextStyle::from((FONT_FAMILY, 16).into_font())
                .color(&RGBColor(51, 51, 51))
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(values.iter().enumerate().map(|(i, &v)| {
                    Text::new(
                        probability(v),
                        (SegmentValue::CenterOf(i), v + y_max * 0.01),
                        value_style.clone(),
                    )
                }))
                .map_err(plot_error)?;
        }
        Ok(())
    }
}

/// The top of the probability axis: room above the tallest bar for its label, within 105%.
fn axis_top(values: &[f64]) -> f64 {
    let top = values.iter().cloned().fold(0.0_f64, f64::max);
    if top > 0.0 {
        (top * 1.18).min(1.05).max(top * 1.08)
    } else {
        1.0
    }
}

/// `42%`, `3.1%`, `0.04%`: enough digits to tell small probabilities apart.
pub fn probability(p: f64) -> String {
    let pct = p * 100.0;
    if pct >= 10.0 {
        format!("{pct:.0}%")
    } else if pct >= 1.0 {
        format!("{pct:.1}%")
    } else {
        format!("{pct:.2}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chart::render_svg;

    #[test]
    fn bars_show_tokens_and_percentages() {
        let labels: Vec<String> = ["过", "大", "\n"].iter().map(|s| s.to_string()).collect();
        let spec = BarSpec::probabilities("我今天想去游乐园玩 →", &labels, &[0.6, 0.3, 0.05]);
        let svg = render_svg(&spec).unwrap();
        assert!(svg.matches("<rect").count() >= 3);
        if can_draw_text() {
            for needle in ["\n过\n", "\n大\n", "\\n", "60%", "5.0%", "游乐园"] {
                assert!(svg.contains(needle), "missing {needle} in bar chart");
            }
        }
    }

    #[test]
    fn token_display() {
        assert_eq!(visible_token(" "), "' '");
        assert_eq!(visible_token("a\nb"), "a\\nb");
        assert_eq!(probability(0.4237), "42%");
        assert_eq!(probability(0.031), "3.1%");
        assert_eq!(probability(0.0004), "0.04%");
    }
}
