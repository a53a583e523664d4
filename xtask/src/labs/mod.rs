//! The check tables and demo scripts of every lab, one module per lab.

use crate::grade::Lab;

/// A lab's [`Lab`] from what is its own: id, folder slug, title and check table. Its
/// words are `xtask/checks/<id>.toml` and its demo is its `demo` module's `demo`, so
/// neither can be paired with another lab's by mistake.
macro_rules! lab {
    (
        id: $id:literal,
        slug: $slug:literal,
        title: $title:literal,
        table: &[$($row:expr),* $(,)?] $(,)?
    ) => {
        crate::grade::Lab {
            id: $id,
            slug: $slug,
            title: $title,
            table: &[$($row),*],
            words: include_str!(concat!("../../checks/", $id, ".toml")),
            #[cfg(feature = "tools")]
            demo: Some(demo::demo),
            joined: std::sync::OnceLock::new(),
        }
    };
}

pub mod lab1;
pub mod lab2;
pub mod lab3;
pub mod lab4;
pub mod lab5;
pub mod lab6;
pub mod lab7;
pub mod lab8;

/// Every lab, in course order.
pub fn all() -> Vec<&'static Lab> {
    vec![
        &lab1::LAB,
        &lab2::LAB,
        &lab3::LAB,
        &lab4::LAB,
        &lab5::LAB,
        &lab6::LAB,
        &lab7::LAB,
        &lab8::LAB,
    ]
}

/// The lab called `id` (`lab3`), if it exists and has checks.
pub fn find(id: &str) -> Option<&'static Lab> {
    all().into_iter().find(|lab| lab.id == id)
}

#[cfg(test)]
mod tests {
    /// Each lab's table and its words file (`xtask/checks/LAB.toml`) name the same
    /// checks, and every check has both its report line and its README line.
    #[test]
    fn every_row_has_its_words() {
        let problems: Vec<String> = super::all()
            .iter()
            .flat_map(|lab| lab.words_problems())
            .collect();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
