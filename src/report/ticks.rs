//! An x axis of numbers whose ticks sit exactly at given values (a sweep key's values, the
//! centres of bar groups). plotters' `with_key_points` does the same but loses the value
//! formatting its meshes need for `f64`, so this is the small axis that keeps it.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, KeyPointWeight, Ranged};
use std::ops::Range;

#[derive(Debug, Clone)]
pub struct TickedAxis {
    pub range: Range<f64>,
    /// Where ticks go; thinned to every other one only when the mesh asks for fewer.
    pub ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let t = if span > 0.0 {
            (value - self.range.start) / span
        } else {
            0.5
        };
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light mesh lines would only add clutter between the values.
        if matches!(hint.weight(), KeyPointWeight::Any) || hint.max_num_points() == 0 {
            return Vec::new();
        }
        let step = self.ticks.len().div_ceil(hint.max_num_points()).max(1);
        self.ticks.iter().copied().step_by(step).collect()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}
