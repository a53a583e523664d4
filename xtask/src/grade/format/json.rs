//! `--format json`: the reports as they are (see [`crate::grade::result`]).

use crate::grade::result::Report;

/// One object for one lab, a list for several.
pub fn render(reports: &[Report]) -> String {
    let text = if reports.len() == 1 {
        serde_json::to_string_pretty(&reports[0])
    } else {
        serde_json::to_string_pretty(reports)
    };
    text.expect("reports are plain data") + "\n"
}
