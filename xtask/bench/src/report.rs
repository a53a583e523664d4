//! The results table: one row per server and connection count, as aligned text for the
//! terminal and as Markdown for `bench.md`.

use super::stats::Summary;

/// One measured cell of the table: one server at one connection count.
#[derive(Debug, Clone)]
pub struct Row {
    /// Short server name (`lab3`, `lab6`, `lab7`, `tokio`).
    pub server: String,
    /// Connections asked for.
    pub connections: usize,
    /// Connections that the server let us open before the opening phase ended.
    pub opened: usize,
    /// Connections that completed at least one round trip.
    pub served: usize,
    /// Rates and latency percentiles.
    pub summary: Summary,
    /// The server's peak resident memory (VmHWM) in MiB.
    pub peak_rss_mib: Option<f64>,
    /// (VmRSS under full load - VmRSS idle) / open connections, in KiB.
    pub kib_per_connection: Option<f64>,
}

/// Column titles, in order.
const HEADERS: [&str; 11] = [
    "server",
    "conns",
    "open",
    "served",
    "msgs/s",
    "MB/s",
    "p50 µs",
    "p99 µs",
    "p999 µs",
    "peak RSS MiB",
    "KiB/conn",
];

/// The cells of one row as text, in the order of [`HEADERS`].
fn cells(row: &Row) -> [String; 11] {
    let summary = &row.summary;
    [
        row.server.clone(),
        row.connections.to_string(),
        row.opened.to_string(),
        row.served.to_string(),
        format!("{:.0}", summary.messages_per_sec),
        format!("{:.2}", summary.megabytes_per_sec),
        micros(summary.p50_us),
        micros(summary.p99_us),
        micros(summary.p999_us),
        optional(row.peak_rss_mib, 1),
        optional(row.kib_per_connection, 1),
    ]
}

/// A latency in µs: one decimal below 100 µs (loopback round trips are that short),
/// whole microseconds above, `-` when nothing completed.
fn micros(value: Option<f64>) -> String {
    match value {
        Some(us) if us < 100.0 => format!("{us:.1}"),
        Some(us) => format!("{us:.0}"),
        None => "-".into(),
    }
}

/// A number with `decimals` places, or `-` when it could not be measured.
fn optional(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(number) => format!("{number:.decimals$}"),
        None => "-".into(),
    }
}

/// The table as aligned plain text: the server name on the left, numbers on the right.
pub fn text_table(rows: &[Row]) -> String {
    let body: Vec<[String; 11]> = rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(|title| title.chars().count());
    for line in &body {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |line: &[String]| {
        let mut text = String::new();
        for (column, (cell, width)) in line.iter().zip(widths).enumerate() {
            let padding = " ".repeat(width - cell.chars().count());
            if column == 0 {
                text.push_str(cell);
                text.push_str(&padding);
            } else {
                text.push_str("  ");
                text.push_str(&padding);
                text.push_str(cell);
            }
        }
        text.trim_end().to_string()
    };
    let mut table = render(&HEADERS.map(String::from));
    table.push('\n');
    let rule_width = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    table.push_str(&"-".repeat(rule_width));
    table.push('\n');
    for line in &body {
        table.push_str(&render(line));
        table.push('\n');
    }
    table
}

/// The table as GitHub-flavoured Markdown, numbers right-aligned.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut table = format!("| {} |\n", HEADERS.join(" | "));
    let alignments: Vec<&str> = (0..HEADERS.len())
        .map(|column| if column == 0 { "---" } else { "---:" })
        .collect();
    table.push_str(&format!("| {} |\n", alignments.join(" | ")));
    for row in rows {
        table.push_str(&format!("| {} |\n", cells(row).join(" | ")));
    }
    table
}

/// The whole `bench.md`: what was run, the table, and the notes (skipped servers,
/// capped connection counts, connections that could not be opened).
pub fn markdown_report(settings: &[String], rows: &[Row], notes: &[String]) -> String {
    let mut text = String::from("# socklab benchmark\n\n");
    for setting in settings {
        text.push_str(&format!("- {setting}\n"));
    }
    text.push('\n');
    text.push_str(&markdown_table(rows));
    if !notes.is_empty() {
        text.push_str("\n## Notes\n\n");
        for note in notes {
            text.push_str(&format!("- {note}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_row() -> Row {
        Row {
            server: "lab7".into(),
            connections: 1000,
            opened: 1000,
            served: 998,
            summary: Summary {
                messages_per_sec: 51234.4,
                megabytes_per_sec: 3.279,
                p50_us: Some(18.44),
                p99_us: Some(150.2),
                p999_us: None,
            },
            peak_rss_mib: Some(2.5),
            kib_per_connection: None,
        }
    }

    #[test]
    fn cells_format_numbers_and_gaps() {
        let text = cells(&sample_row());
        assert_eq!(text[4], "51234");
        assert_eq!(text[5], "3.28");
        assert_eq!(text[6], "18.4");
        assert_eq!(text[7], "150");
        assert_eq!(text[8], "-");
        assert_eq!(text[9], "2.5");
        assert_eq!(text[10], "-");
    }

    #[test]
    fn text_table_aligns_every_line_to_the_same_width() {
        let mut short = sample_row();
        short.server = "lab3".into();
        short.connections = 10;
        let table = text_table(&[sample_row(), short]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("server"));
        assert!(lines[1].chars().all(|c| c == '-'));
        let width = |line: &str| line.chars().count();
        assert_eq!(width(lines[2]), width(lines[3]));
        assert_eq!(width(lines[0]), width(lines[2]));
        assert!(lines[3].starts_with("lab3"));
    }

    #[test]
    fn markdown_table_has_a_header_rule_and_one_line_per_row() {
        let table = markdown_table(&[sample_row()]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        assert!(lines[2].starts_with("| lab7 | 1000 | 1000 | 998 | 51234 |"));
    }
}
