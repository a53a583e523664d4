//! `xtask-bench` (run as `cargo xtask bench`): the load generator and the side-by-side
//! server comparison. It is a crate of its own so that grading never builds tokio:
//! `cargo xtask bench ARGS` runs `cargo run --release -p xtask-bench -- ARGS`.
//!
//! For every selected server and every connection count, the bench starts a fresh
//! server on a free loopback port, opens the connections (gradually, every attempt with
//! a deadline), then lets every connection do echo round trips for `--duration-secs`.
//! It records round-trip latencies, the server's memory (VmRSS idle and under load,
//! VmHWM at the end), kills the server's process group, and at the end prints one
//! table, writes it to `bench.md` and plots it to `bench.svg`.
//!
//! Modules: [`build`] (release builds), [`limits`] (open-file limit), [`server`]
//! (server processes and their memory), [`tokio_server`] (the baseline), [`load`]
//! (the load generator), [`stats`] (rates, percentiles), [`report`] (tables),
//! [`plot`] (the SVG), [`cell`] (one measurement); [`grader`] times the grader itself.

mod build;
mod cell;
mod grader;
mod limits;
mod load;
mod plot;
mod report;
mod server;
mod stats;
mod tokio_server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use cell::Settings;
use server::ServerKind;

/// The most connections one cell may ask for.
const MAX_CONNECTIONS: usize = 100_000;
/// The longest measuring window one cell may ask for.
const MAX_DURATION_SECS: f64 = 600.0;
/// The largest message.
const MAX_MESSAGE_SIZE: usize = 1 << 20;

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Connection counts to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000,10000")]
    connections: Vec<usize>,

    /// Length of each measuring window, in seconds (it starts once all connections are open).
    #[arg(long, default_value_t = 5.0)]
    duration_secs: f64,

    /// Also stop a measuring window after this many round trips in total.
    #[arg(long)]
    messages: Option<u64>,

    /// Bytes per message (printable letters ending in a newline).
    #[arg(long, default_value_t = 64)]
    message_size: usize,

    /// Servers to compare, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lab3,lab6,lab7,tokio"
    )]
    servers: Vec<ServerKind>,

    /// Folder for bench.md, bench.svg and the server logs [default: target/bench].
    #[arg(long)]
    out: Option<PathBuf>,

    /// Connections being opened at once (each until its first echo, at most 1 s).
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,

    /// Threads of the load generator (1 leaves the other core to the server).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,

    /// Use the binaries already in target/release instead of running cargo build.
    #[arg(long)]
    no_build: bool,

    /// Measure the grader instead: `grade all --solution` with --jobs 1 and the
    /// default side by side (same verdicts?), and lab3 against its slowest check.
    #[arg(long)]
    grader: bool,

    /// The workspace root [default: two folders above this crate].
    #[arg(long, hide = true)]
    root: Option<PathBuf>,

    /// Run the tokio echo server on 127.0.0.1:PORT until killed (the bench starts its
    /// baseline server this way).
    #[arg(long, value_name = "PORT", hide = true)]
    serve_tokio: Option<u16>,
}

/// The command line of `xtask-bench`.
#[derive(clap::Parser)]
#[command(
    name = "cargo xtask bench",
    bin_name = "cargo xtask bench",
    about = "Load-test the lab servers against tokio"
)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> std::process::ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let root = cli.args.root.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .unwrap_or_else(|_| PathBuf::from("."))
    });
    match run(&root, cli.args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: error: {message:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs the benchmark.
fn run(root: &Path, args: BenchArgs) -> anyhow::Result<()> {
    if let Some(port) = args.serve_tokio {
        return tokio_server::serve(port);
    }
    if args.grader {
        return grader::run(root);
    }
    let mut settings = validate(root, &args)?;
    let mut notes = Vec::new();

    if cfg!(debug_assertions) {
        notes.push("the load generator ran from a debug build; its numbers are low".into());
    }

    let limit = limits::raise_open_file_limit()?;
    if limit.now > limit.before {
        println!(
            "open-file limit raised from {} to {} (the hard limit is {})",
            limit.before, limit.now, limit.hard
        );
    } else {
        println!(
            "open-file limit: {} (the hard limit is {})",
            limit.now, limit.hard
        );
    }
    let capped = cap_connections(&mut settings.connections, limit.max_connections());
    if let Some(note) = capped {
        println!("{note}");
        notes.push(note);
    }

    let programs = find_programs(root, &settings.servers, !args.no_build, &mut notes);
    if programs.is_empty() {
        print_notes(&notes);
        bail!("no server could be benchmarked (see the notes above)");
    }

    notes.extend(
        programs
            .iter()
            .filter_map(|(kind, _)| kind.remark())
            .map(String::from),
    );

    std::fs::create_dir_all(settings.out.join("logs"))
        .with_context(|| format!("cannot create {}", settings.out.display()))?;
    let mut rows = Vec::new();
    for (kind, program) in &programs {
        for &connections in &settings.connections {
            match cell::measure(*kind, program, connections, &settings) {
                Ok(measured) => {
                    notes.extend(measured.notes);
                    rows.push(measured.row);
                }
                Err(failure) => {
                    // The cell's progress line is still open: finish it.
                    println!("not measured: {failure:#}");
                    notes.push(format!(
                        "{} × {connections}: not measured: {failure:#}",
                        kind.name()
                    ));
                }
            }
        }
    }

    let table = report::text_table(&rows);
    println!("\n{table}");
    print_notes(&notes);
    let markdown = report::markdown_report(&settings.describe(), &rows, &notes);
    let markdown_path = settings.out.join("bench.md");
    std::fs::write(&markdown_path, markdown)
        .with_context(|| format!("cannot write {}", markdown_path.display()))?;
    let svg_path = settings.out.join("bench.svg");
    plot::write_svg(&svg_path, &rows)?;
    println!(
        "wrote {} and {}",
        markdown_path.display(),
        svg_path.display()
    );
    Ok(())
}

/// Checks the options and turns them into the settings every cell uses.
fn validate(root: &Path, args: &BenchArgs) -> anyhow::Result<Settings> {
    let mut connections = args.connections.clone();
    connections.sort_unstable();
    connections.dedup();
    if connections.is_empty() || connections[0] == 0 {
        bail!("--connections needs counts of at least 1, like 10,100,1000");
    }
    if let Some(&largest) = connections.last().filter(|&&n| n > MAX_CONNECTIONS) {
        bail!("--connections {largest} is more than the bench allows ({MAX_CONNECTIONS})");
    }
    if !(args.duration_secs > 0.0 && args.duration_secs <= MAX_DURATION_SECS) {
        bail!("--duration-secs must be above 0 and at most {MAX_DURATION_SECS}");
    }
    if args.message_size == 0 || args.message_size > MAX_MESSAGE_SIZE {
        bail!("--message-size must be between 1 and {MAX_MESSAGE_SIZE} bytes");
    }
    if args.messages == Some(0) {
        bail!("--messages must be at least 1");
    }
    if !(1..=10_000).contains(&args.connect_concurrency) {
        bail!("--connect-concurrency must be between 1 and 10000");
    }
    if !(1..=64).contains(&args.client_threads) {
        bail!("--client-threads must be between 1 and 64");
    }
    let mut servers: Vec<ServerKind> = Vec::new();
    for &kind in &args.servers {
        if !servers.contains(&kind) {
            servers.push(kind);
        }
    }
    if servers.is_empty() {
        bail!("--servers needs at least one of lab3, lab6, lab7, tokio");
    }
    Ok(Settings {
        connections,
        servers,
        duration: Duration::from_secs_f64(args.duration_secs),
        max_messages: args.messages,
        message_size: args.message_size,
        connect_concurrency: args.connect_concurrency,
        client_threads: args.client_threads,
        out: args
            .out
            .clone()
            .unwrap_or_else(|| root.join("target").join("bench")),
    })
}

/// Lowers connection counts above `most` to `most`; a note when it had to.
fn cap_connections(connections: &mut Vec<usize>, most: usize) -> Option<String> {
    let largest = *connections.last()?;
    if largest <= most {
        return None;
    }
    for count in connections.iter_mut() {
        *count = (*count).min(most);
    }
    connections.dedup();
    Some(format!(
        "the open-file limit is too low for {largest} connections: capped at {most} \
         (raise the hard limit with `ulimit -Hn` as root to measure more)"
    ))
}

/// The program of every selected server that could be built; a note for the others.
fn find_programs(
    root: &Path,
    servers: &[ServerKind],
    build: bool,
    notes: &mut Vec<String>,
) -> Vec<(ServerKind, PathBuf)> {
    let mut programs = Vec::new();
    for &kind in servers {
        if build && kind.package().is_some() {
            println!(
                "building {} (release)...",
                kind.package().unwrap_or_default()
            );
        }
        match build::server_program(root, kind, build) {
            Ok(program) => programs.push((kind, program)),
            Err(failure) => {
                let note = format!("{}: skipped: {failure:#}", kind.name());
                println!("{note}");
                notes.push(note);
            }
        }
    }
    programs
}

fn print_notes(notes: &[String]) {
    if notes.is_empty() {
        return;
    }
    println!("notes:");
    for note in notes {
        println!("  - {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_counts_are_capped_to_the_limit() {
        let mut counts = vec![10, 100, 1000, 10000];
        assert_eq!(cap_connections(&mut counts, 20000), None);
        let note = cap_connections(&mut counts, 960);
        assert_eq!(counts, vec![10, 100, 960]);
        assert!(note.is_some_and(|text| text.contains("capped at 960")));
    }
}
