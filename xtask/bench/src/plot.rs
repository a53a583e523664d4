//! `bench.svg`: throughput and p99 latency against the number of connections, one line
//! per server. Connections and latencies span orders of magnitude, so their axes are
//! logarithmic; throughput is linear from zero.

use std::path::Path;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::report::Row;

/// Size of the whole picture in pixels: two panels side by side.
const SIZE: (u32, u32) = (1200, 500);

/// One line of a panel: a server's (connections, value) points.
struct Series {
    server: String,
    points: Vec<(f64, f64)>,
}

/// Draws both panels into an SVG file at `path`.
pub fn write_svg(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let area = SVGBackend::new(path, SIZE).into_drawing_area();
    area.fill(&WHITE)?;
    let (left, right) = area.split_horizontally(SIZE.0 / 2);
    let throughput = series(rows, |row| Some(row.summary.messages_per_sec));
    let most = throughput
        .iter()
        .flat_map(|line| line.points.iter().map(|point| point.1))
        .fold(1.0_f64, f64::max);
    // Throughputs differ by a few times at most: a linear axis from 0 reads best.
    let throughput_axis = 0.0..most * 1.15;
    // Each legend goes where the lines are not: below them for throughput, above
    // them for latency (which starts low at few connections).
    let labels = ("Throughput", "round trips per second");
    let legend = SeriesLabelPosition::LowerRight;
    draw_panel(&left, labels, &throughput, throughput_axis, legend)?;
    let p99 = series(rows, |row| row.summary.p99_us);
    // Latencies span orders of magnitude (tens of µs to seconds): logarithmic.
    let (low, high) = log_range(p99.iter().flat_map(|line| line.points.iter().map(|p| p.1)));
    let latency_axis = (low..high).log_scale();
    let labels = ("p99 round-trip latency", "microseconds");
    let legend = SeriesLabelPosition::UpperLeft;
    draw_panel(&right, labels, &p99, latency_axis, legend)?;
    area.present()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Groups the rows by server, in the order servers first appear, keeping only the
/// values a log axis can show (positive ones).
fn series(rows: &[Row], value: impl Fn(&Row) -> Option<f64>) -> Vec<Series> {
    let mut all: Vec<Series> = Vec::new();
    for row in rows {
        let index = match all.iter().position(|line| line.server == row.server) {
            Some(index) => index,
            None => {
                all.push(Series {
                    server: row.server.clone(),
                    points: Vec::new(),
                });
                all.len() - 1
            }
        };
        if let Some(y) = value(row).filter(|y| *y > 0.0) {
            all[index].points.push((row.connections as f64, y));
        }
    }
    for line in &mut all {
        line.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    all
}

/// A fixed colour per server name, so lab3 is the same colour in every picture.
fn colour(server: &str) -> RGBColor {
    match server {
        "lab3" => RGBColor(214, 39, 40),
        "lab6" => RGBColor(31, 119, 180),
        "lab7" => RGBColor(44, 160, 44),
        "tokio" => RGBColor(148, 103, 189),
        _ => RGBColor(90, 90, 90),
    }
}

/// The range a log axis needs to show `values` with some room around them.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, 0.0_f64), |(low, high), v| {
        (low.min(v), high.max(v))
    });
    if !low.is_finite() || high <= 0.0 {
        return (1.0, 10.0);
    }
    (low / 2.0, high * 2.0)
}

/// One chart: connections on a log x axis, `lines` against `y_axis`.
fn draw_panel<Y>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    (title, unit): (&str, &str),
    lines: &[Series],
    y_axis: Y,
    legend: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (x_low, x_high) = log_range(
        lines
            .iter()
            .flat_map(|line| line.points.iter().map(|p| p.0)),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((x_low..x_high).log_scale(), y_axis)?;
    chart
        .configure_mesh()
        .x_desc("concurrent connections")
        .y_desc(unit)
        // A log axis gets a tick at 10, 20, ..., 90, 100, ...: label the powers of ten only.
        .x_label_formatter(&|x| power_of_ten_label(*x))
        .light_line_style(TRANSPARENT)
        .y_label_formatter(&|y| short_number(*y))
        .draw()?;
    for line in lines {
        let style = colour(&line.server);
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                style.stroke_width(2),
            ))?
            .label(line.server.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style.stroke_width(2)));
        chart.draw_series(
            line.points
                .iter()
                .map(|point| Circle::new(*point, 4, style.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(legend)
        .draw()?;
    Ok(())
}

/// "1000" for a power of ten, "" for the ticks in between.
fn power_of_ten_label(value: f64) -> String {
    let exponent = value.log10();
    if value > 0.0 && (exponent - exponent.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        String::new()
    }
}

/// 1500 -> "1.5k", 2000000 -> "2M": axis labels that stay short.
fn short_number(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

/// At most one decimal, none when it is zero.
fn trim(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_stay_short() {
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(2_000_000.0), "2M");
        assert_eq!(short_number(42.0), "42");
        assert_eq!(power_of_ten_label(1000.0), "1000");
        assert_eq!(power_of_ten_label(20.0), "");
    }
}
