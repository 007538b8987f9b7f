//! The sweep as a picture: goodput and p99 (as a share of budget) against offered load, with C
//! marked. SVG through plotters' SVG backend only (no font or bitmap stack).

use super::sweep::SweepReport;
use plotters::coord::types::RangedCoordf64;
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

type Area<'b> = DrawingArea<SVGBackend<'b>, plotters::coord::Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw(sweep: &SweepReport, title: &str, out: &mut String) -> DrawResult {
    let c = sweep.capacity;
    let offered: Vec<f64> = sweep.runs.iter().map(|(_, r)| r.offered_rate).collect();
    let x_max = offered.iter().copied().fold(c, f64::max) * 1.08;
    let root = SVGBackend::with_string(out, (960, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(480);
    let series = |f: &dyn Fn(&super::report::RunReport) -> f64| -> Vec<(f64, f64)> {
        sweep.runs.iter().map(|(_, r)| (r.offered_rate, f(r))).collect()
    };

    // Goodput against offered load, with the ideal (y = x) and the 90% / 80% of C floors.
    let goodput = series(&|r| r.goodput);
    let critical_goodput = series(&|r| r.critical.goodput);
    let y_max = goodput.iter().map(|p| p.1).fold(c, f64::max) * 1.15;
    let mut chart = panel(&left, "goodput (answered within budget)", "jobs/s", (x_max, y_max), c)?;
    reference(&mut chart, [(0.0, 0.0), (y_max, y_max)], BLACK.mix(0.25), "offered")?;
    for (share, label) in [(0.9, "90% of C"), (0.8, "80% of C")] {
        reference(&mut chart, [(0.0, share * c), (x_max, share * c)], RED.mix(0.35), label)?;
    }
    measured(&mut chart, &goodput, BLUE, "goodput, all")?;
    measured(&mut chart, &critical_goodput, CRITICAL, "goodput, critical")?;
    chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).border_style(BLACK.mix(0.3)).draw()?;

    // p99 latency of answered jobs as a share of their budget: at or below 100% is within budget.
    let critical = series(&|r| 100.0 * r.critical.p99_budget_use);
    let sheddable = series(&|r| 100.0 * r.sheddable.p99_budget_use);
    let top = critical.iter().chain(&sheddable).map(|p| p.1).fold(120.0, f64::max) * 1.1;
    let mut chart = panel(&right, "p99 latency of answered jobs, % of budget", "% of budget", (x_max, top), c)?;
    reference(&mut chart, [(0.0, 100.0), (x_max, 100.0)], RED.mix(0.35), "budget")?;
    measured(&mut chart, &critical, CRITICAL, "critical")?;
    measured(&mut chart, &sheddable, SHEDDABLE, "sheddable")?;
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK.mix(0.3)).draw()?;
    root.present()?;
    Ok(())
}

/// One panel: offered load across (to `top.0`), the measure up (to `top.1`), C marked.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    y_desc: &str,
    top: (f64, f64),
    c: f64,
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..top.0, 0.0..top.1)?;
    chart
        .configure_mesh()
        .x_desc("offered load, jobs/s")
        .y_desc(y_desc)
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .light_line_style(WHITE)
        .draw()?;
    chart.draw_series(LineSeries::new([(c, 0.0), (c, top.1)], BLUE.mix(0.3)))?;
    Ok(chart)
}

/// A straight reference line (an ideal or a floor) and its legend entry.
fn reference(chart: &mut Chart, ends: [(f64, f64); 2], color: RGBAColor, label: &str) -> DrawResult {
    chart
        .draw_series(LineSeries::new(ends, ShapeStyle::from(&color).stroke_width(1)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
    Ok(())
}

/// A measured series: a line through its points, a dot on each, and its legend entry.
fn measured(chart: &mut Chart, points: &[(f64, f64)], color: RGBColor, label: &str) -> DrawResult {
    chart
        .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    Ok(())
}
