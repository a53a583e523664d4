//! `cargo xtask bench`: the load generator and the side-by-side server comparison.

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

/// Runs the benchmark.
pub fn run(_root: &std::path::Path, _args: BenchArgs) -> Result<(), String> {
    Err("the benchmark is not written yet".into())
}
