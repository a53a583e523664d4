//! One module per `cargo xtask` verb that has more to do than call a library function.

pub mod bench;
pub mod classroom;
#[cfg(feature = "tools")]
pub mod demo;
pub mod docs;
pub mod grade;
pub mod gradescope;
#[cfg(not(feature = "tools"))]
pub mod tools;
