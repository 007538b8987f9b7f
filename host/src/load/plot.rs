//! The sweep as a picture: goodput and p99 (as a share of budget) against offered load, with C
//! marked. SVG through plotters' SVG backend only (no font or bitmap stack).

use super::sweep::SweepReport;
use plotters::prelude::*;

/// Renders the sweep's runs as an SVG document.
pub fn sweep_svg(sweep: &SweepReport, title: &str) -> Result<String, String> {
    let mut svg = String::new();
    draw(sweep, title, &mut svg).map_err(|e| format!("cannot draw the chart: {e}"))?;
    Ok(svg)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Dark enough to read on white.
const CRITICAL: RGBColor = RGBColor(0, 140, 60);
const SHEDDABLE: RGBColor = RGBColor(200, 0, 160);

fn whole(x: &f64) -> String {
    format!("{x:.0}")
}

fn draw(sweep: &SweepReport, title: &str, out: &mut String) -> DrawResult {
    let c = sweep.capacity;
    let offered: Vec<f64> = sweep.runs.iter().map(|(_, r)| r.offered_rate).collect();
    let x_max = offered.iter().copied().fold(c, f64::max) * 1.08;
    let root = SVGBackend::with_string(out, (960, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(480);

    // Goodput against offered load, with the ideal (y = x) and the 90% / 80% of C floors.
    let series = |f: &dyn Fn(&super::report::RunReport) -> f64| -> Vec<(f64, f64)> {
        sweep.runs.iter().map(|(_, r)| (r.offered_rate, f(r))).collect()
    };
    let goodput = series(&|r| r.goodput);
    let critical_goodput = series(&|r| r.critical.goodput);
    let y_max = goodput.iter().map(|p| p.1).fold(c, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("goodput (answered within budget)", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("offered load, jobs/s")
        .y_desc("jobs/s")
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .light_line_style(WHITE)
        .draw()?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (y_max, y_max)], ShapeStyle::from(&BLACK.mix(0.25)).stroke_width(1)))?
        .label("offered")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.25)));
    for (share, label) in [(0.9, "90% of C"), (0.8, "80% of C")] {
        chart
            .draw_series(LineSeries::new([(0.0, share * c), (x_max, share * c)], RED.mix(0.35)))?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.mix(0.35)));
    }
    chart.draw_series(LineSeries::new([(c, 0.0), (c, y_max)], BLUE.mix(0.3)))?;
    for (points, color, label) in [(&goodput, BLUE, "goodput, all"), (&critical_goodput, CRITICAL, "goodput, critical")]
    {
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).border_style(BLACK.mix(0.3)).draw()?;

    // p99 latency of answered jobs as a share of their budget: at or below 100% is within budget.
    let critical = series(&|r| 100.0 * r.critical.p99_budget_use);
    let sheddable = series(&|r| 100.0 * r.sheddable.p99_budget_use);
    let top = critical.iter().chain(&sheddable).map(|p| p.1).fold(120.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&right)
        .caption("p99 latency of answered jobs, % of budget", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..x_max, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("offered load, jobs/s")
        .y_desc("% of budget")
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .light_line_style(WHITE)
        .draw()?;
    chart
        .draw_series(LineSeries::new([(0.0, 100.0), (x_max, 100.0)], RED.mix(0.35)))?
        .label("budget")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.mix(0.35)));
    chart.draw_series(LineSeries::new([(c, 0.0), (c, top)], BLUE.mix(0.3)))?;
    for (points, color, label) in [(&critical, CRITICAL, "critical"), (&sheddable, SHEDDABLE, "sheddable")] {
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK.mix(0.3)).draw()?;
    root.present()?;
    Ok(())
}
