//! What every chart's drawing code shares, below all of them (line, bar, by-task and key
//! charts, and the legend strip under them).

use anyhow::anyhow;
use plotters::drawing::DrawingAreaErrorKind;

/// A plotters drawing error as this crate's error.
pub fn plot_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("cannot draw chart: {e}")
}
