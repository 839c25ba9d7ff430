//! Line charts over epochs, rendered server-side to inline SVG with `plotters`.
//!
//! Text in the SVG is only axis numbers and the captions given here (never miner-supplied
//! strings), and plotters escapes what it writes.

use plotters::prelude::*;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// `(epoch, value)` points, in epoch order; non-finite values are skipped.
    pub points: Vec<(i64, f64)>,
    /// Line color.
    pub color: RGBColor,
}

/// Chart size in pixels.
const SIZE: (u32, u32) = (640, 240);

/// A chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the {title} chart failed: {reason}")]
pub struct ChartError {
    /// The chart's caption.
    pub title: String,
    /// plotters' message.
    pub reason: String,
}

/// Renders `series` against the epoch axis as an `<svg>` document. With no finite point at all
/// the chart is drawn empty over epochs 0..1 and values 0..1.
pub fn line_chart(title: &str, series: &[Series<'_>]) -> Result<String, ChartError> {
    let fail = |e: &dyn std::fmt::Display| ChartError {
        title: title.to_string(),
        reason: e.to_string(),
    };
    let finite = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(_, y)| y.is_finite())
    };
    let (x0, x1) = finite().fold((i64::MAX, i64::MIN), |(lo, hi), (x, _)| {
        (lo.min(*x), hi.max(*x))
    });
    let (x0, x1) = if x0 > x1 {
        (0, 1)
    } else {
        (x0, x1.max(x0 + 1))
    };
    let (y0, y1) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| {
        (lo.min(*y), hi.max(*y))
    });
    let (y0, y1) = if y0 > y1 {
        (0.0, 1.0)
    } else {
        let pad = ((y1 - y0) * 0.1).max(1e-3);
        let lo = if y0 >= 0.0 {
            (y0 - pad).max(0.0)
        } else {
            y0 - pad
        };
        (lo, y1 + pad)
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(8)
            .y_labels(6)
            .y_label_formatter(&|y| format!("{y:.3}"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| fail(&e))?;
        for s in series {
            let points: Vec<(i64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(_, y)| y.is_finite())
                .collect();
            let color = s.color;
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| fail(&e))?
                .label(s.label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(PointSeries::of_element(
                    points,
                    3,
                    color.filled(),
                    &|c, s, st| Circle::new(c, s, st),
                ))
                .map_err(|e| fail(&e))?;
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

/// Blue, for losses and scores.
pub const BLUE: RGBColor = RGBColor(31, 119, 180);
/// Orange, for EMAs.
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
/// Green, for label scores.
pub const GREEN: RGBColor = RGBColor(44, 160, 44);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_with_lines_and_an_epoch_axis() {
        let svg = line_chart(
            "score",
            &[
                Series {
                    label: "score",
                    points: vec![(1, 0.2), (2, 0.5), (3, f64::NAN), (4, 0.4)],
                    color: BLUE,
                },
                Series {
                    label: "ema",
                    points: vec![(1, 0.1), (2, 0.3), (4, 0.35)],
                    color: ORANGE,
                },
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("polyline"), "{svg}");
        assert!(svg.contains("\nepoch\n"), "{svg}");
    }

    #[test]
    fn an_empty_chart_still_renders() {
        let svg = line_chart("loss", &[]).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
