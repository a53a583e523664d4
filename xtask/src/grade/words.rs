//! Reads a lab's words file, `xtask/checks/LAB.toml`: each check's `verifies` (the
//! line reports show) and `details` (the README's check table).
//!
//! The files are TOML, and maintainers edit them as TOML, but they use a small part of
//! it: `[check-name]` headers, `key = "string"` lines, comments and blank lines. This
//! module reads exactly that part and refuses anything else with the line it stopped
//! at, instead of linking the `toml` crate into every student's first build (its stack
//! was about 1.7 s of that build's 17). The test `reads_every_words_file_as_toml_does`
//! proves it reads each real file as the `toml` crate does.

use std::collections::BTreeMap;
use std::fmt;

/// A words file, read: check name to its keys (`verifies`, `details`) and their text.
#[derive(Default, Debug, PartialEq)]
pub struct Words(pub BTreeMap<String, BTreeMap<String, String>>);

/// Where and why a words file could not be read.
#[derive(Debug)]
pub struct WordsError {
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for WordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

impl Words {
    pub fn parse(text: &str) -> Result<Words, WordsError> {
        let mut words = Words::default();
        let mut current: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let fail = |problem: &str| WordsError {
                line: index + 1,
                problem: problem.into(),
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if !is_bare_key(name) {
                    return Err(fail("a header is [check-name]: letters, digits, - and _"));
                }
                if words.0.insert(name.to_string(), BTreeMap::new()).is_some() {
                    return Err(fail("this check already has words above"));
                }
                current = Some(name.to_string());
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(fail("expected [check-name] or key = \"text\""));
            };
            let key = key.trim();
            if !is_bare_key(key) {
                return Err(fail("a key is letters, digits, - and _"));
            }
            let Some(check) = &current else {
                return Err(fail("a key before any [check-name] header"));
            };
            let value = basic_string(value.trim()).map_err(|problem| fail(&problem))?;
            let entry = words.0.get_mut(check).expect("inserted with its header");
            if entry.insert(key.to_string(), value).is_some() {
                return Err(fail("this key is already set for this check"));
            }
        }
        Ok(words)
    }

    /// The text under `key` for the check `name`.
    pub fn get(&self, name: &str, key: &str) -> Option<&str> {
        self.0.get(name)?.get(key).map(String::as_str)
    }
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A TOML basic string, `"..."`, on one line, with its escapes undone; a trailing
/// comment after it is allowed.
fn basic_string(text: &str) -> Result<String, String> {
    let mut chars = text.chars();
    if chars.next() != Some('"') || text.starts_with("\"\"\"") {
        return Err("the value is a one-line \"string\"".into());
    }
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let rest = chars.as_str().trim();
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return Err(format!("after the closing quote: {rest:?}"));
                }
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    out.push(code.ok_or(format!("\\u{hex} is not a character"))?);
                }
                other => return Err(format!("unknown escape \\{}", other.unwrap_or(' '))),
            },
            c if c.is_control() && c != '\t' => return Err("a control character".into()),
            c => out.push(c),
        }
    }
    Err("no closing quote".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_words_file_as_toml_does() {
        for lab in crate::labs::all() {
            let ours = Words::parse(lab.words).unwrap_or_else(|e| panic!("{}: {e}", lab.id));
            let table: toml::Table = toml::from_str(lab.words).expect("valid TOML");
            let theirs = Words(
                table
                    .into_iter()
                    .map(|(name, entry)| {
                        let entry = entry.as_table().expect("a [check] table").clone();
                        let keys = entry
                            .into_iter()
                            .map(|(k, v)| (k, v.as_str().expect("a string").to_string()))
                            .collect();
                        (name, keys)
                    })
                    .collect(),
            );
            assert_eq!(ours, theirs, "{}", lab.id);
        }
    }

    #[test]
    fn escapes_and_comments_read_as_toml_says() {
        let text = "# top\n[a-b]\nverifies = \"say \\\"hi\\\\n\\\" \\u00e9\" # note\n\n[c]\n";
        let words = Words::parse(text).unwrap();
        assert_eq!(words.get("a-b", "verifies"), Some("say \"hi\\n\" é"));
        assert!(words.0.contains_key("c"));
    }

    #[test]
    fn what_it_cannot_read_is_refused_with_its_line() {
        for (text, line) in [
            ("[a]\nverifies = 'literal'\n", 2),
            ("verifies = \"no header\"\n", 1),
            ("[a]\nverifies = \"\"\"multi\n", 2),
            ("[a]\n[a]\n", 2),
            ("[a]\nx = \"open\n", 2),
            ("[a]\nx = \"bad \\q\"\n", 2),
            ("[a.b]\n", 1),
        ] {
            let error = Words::parse(text).expect_err(text);
            assert_eq!(error.line, line, "{text:?}: {error}");
        }
    }
}
