//! The class summary an instructor teaches from the next day: each check's pass rate
//! across the graded submissions, worst first, as a Markdown table (`summary.md`) and a
//! bar chart (`summary.svg`, plain SVG written by hand).

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;

use super::Graded;
use crate::grade::Lab;

/// One check's results across the class.
pub struct Rate {
    pub check: String,
    pub verifies: String,
    pub passed: usize,
    pub graded: usize,
}

impl Rate {
    pub fn percent(&self) -> f64 {
        if self.graded == 0 {
            0.0
        } else {
            100.0 * self.passed as f64 / self.graded as f64
        }
    }
}

/// Pass rates over the gradable submissions, worst first (ties in table order).
pub fn rates(lab: &Lab, only: &[String], graded: &[Graded]) -> Vec<Rate> {
    let gradable: Vec<&Graded> = graded.iter().filter(|g| g.not_gradable.is_none()).collect();
    let mut rates: Vec<Rate> = lab
        .checks()
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|o| o == c.name))
        .map(|check| Rate {
            check: check.name.to_string(),
            verifies: check.verifies.to_string(),
            passed: gradable
                .iter()
                .filter(|g| {
                    g.report
                        .checks
                        .iter()
                        .any(|c| c.name == check.name && c.passed)
                })
                .count(),
            graded: gradable.len(),
        })
        .collect();
    rates.sort_by(|a, b| a.percent().total_cmp(&b.percent()));
    rates
}

pub fn markdown(lab: &Lab, graded: &[Graded], rates: &[Rate]) -> String {
    let mut out = format!("# {}: {}, class summary\n\n", lab.id, lab.title);
    let gradable: Vec<&Graded> = graded.iter().filter(|g| g.not_gradable.is_none()).collect();
    let not_gradable = graded.len() - gradable.len();
    let max = graded.first().map_or(0, |g| g.report.max_score);
    let mut scores: Vec<u32> = gradable.iter().map(|g| g.report.score).collect();
    scores.sort_unstable();
    let _ = write!(
        out,
        "{} submissions: {} graded, {not_gradable} not gradable.",
        graded.len(),
        gradable.len()
    );
    if !scores.is_empty() {
        let mean = scores.iter().sum::<u32>() as f64 / scores.len() as f64;
        let median = scores[scores.len() / 2];
        let full = scores.iter().filter(|s| **s == max).count();
        let _ = write!(
            out,
            " Mean score {mean:.1}/{max}, median {median}/{max}, {full} at full marks."
        );
    }
    out.push_str("\n\n## Checks, worst first\n\n![pass rate of each check](summary.svg)\n\n");
    out.push_str(
        "| check | passed | pass rate | verifies that the program |\n| --- | ---: | ---: | --- |\n",
    );
    for rate in rates {
        let _ = writeln!(
            out,
            "| `{}` | {}/{} | {:.0}% | {} |",
            rate.check,
            rate.passed,
            rate.graded,
            rate.percent(),
            cell(&rate.verifies)
        );
    }
    if not_gradable > 0 {
        out.push_str("\n## Not gradable\n\n| student | why | first line |\n| --- | --- | --- |\n");
        for g in graded {
            if let Some(n) = &g.not_gradable {
                let first = n.lines.first().map_or("", String::as_str);
                let _ = writeln!(
                    out,
                    "| {} | {} | `{}` |",
                    cell(&g.student),
                    cell(&n.reason),
                    cell(first).replace('`', "'")
                );
            }
        }
    }
    out.push_str("\n## Students\n\n| student | score | failed checks |\n| --- | ---: | --- |\n");
    for g in graded {
        let failed = if g.not_gradable.is_some() {
            "(not gradable)".to_string()
        } else {
            g.report.failed().join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {}/{} | {} |",
            cell(&g.student),
            g.report.score,
            g.report.max_score,
            cell(&failed)
        );
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Layout of the bar chart, in pixels.
const WIDTH: u32 = 900;
const ROW: u32 = 26;
const TOP: u32 = 60;
const LEFT: u32 = 230;
const BAR: u32 = 520;

/// Writes the bar chart: one bar per check, its pass rate, worst first. Plain SVG
/// (rectangles and text) written by hand: a bar chart needs no plotting library, and
/// keeping one out of xtask keeps a student's first build short.
pub fn svg(path: &Path, lab: &Lab, rates: &[Rate]) -> anyhow::Result<()> {
    let height = TOP + ROW * rates.len() as u32 + 40;
    let bottom = TOP + ROW * rates.len() as u32;
    let graded = rates.first().map_or(0, |r| r.graded);
    let mut out = String::new();
    out.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    ));
    out.push_str(&format!(
        "<text x=\"20\" y=\"26\" font-size=\"18\">{}: pass rate of each check ({graded} graded), worst first</text>\n",
        escape(lab.id)
    ));
    // Grid lines at 0, 25, 50, 75 and 100 %.
    for quarter in 0..=4 {
        let x = LEFT + BAR * quarter / 4;
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{bottom}\" stroke=\"rgb(200,200,200)\"/>\n\
             <text x=\"{x}\" y=\"{}\" font-size=\"14\" text-anchor=\"middle\">{}%</text>\n",
            TOP - 6,
            bottom + 20,
            quarter * 25
        ));
    }
    for (i, rate) in rates.iter().enumerate() {
        let y = TOP + ROW * i as u32;
        let middle = y + ROW / 2 + 5;
        let length = ((BAR as f64 * rate.percent() / 100.0).round() as u32).max(1);
        let (r, g, b) = colour(rate.percent());
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{middle}\" font-size=\"14\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{LEFT}\" y=\"{}\" width=\"{length}\" height=\"{}\" fill=\"rgb({r},{g},{b})\"/>\n\
             <text x=\"{}\" y=\"{middle}\" font-size=\"14\">{:.0}% ({}/{})</text>\n",
            LEFT - 10,
            escape(&rate.check),
            y + 4,
            ROW - 8,
            LEFT + length + 8,
            rate.percent(),
            rate.passed,
            rate.graded
        ));
    }
    out.push_str("</svg>\n");
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// Text as SVG (XML) character data.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Red for checks most of the class fails, amber in between, green when most pass.
fn colour(percent: f64) -> (u8, u8, u8) {
    if percent < 50.0 {
        (214, 39, 40)
    } else if percent < 80.0 {
        (255, 160, 40)
    } else {
        (44, 160, 44)
    }
}
