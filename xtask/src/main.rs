//! `cargo xtask`: socklab's grader and maintainer tools.
//!
//! `main.rs` only parses the command line and dispatches, one module per verb:
//!
//! - `grade` ([`verbs::grade`]): the black-box grader, streamed, with one next step.
//! - `hint`, `list`, `watch`, `reset` ([`student`]): the student's loop.
//! - `demo` ([`verbs::demo`]): the reference programs narrate a session, for class.
//! - `lan` ([`lan`]): two hosts on a private cable, for trying things by hand.
//! - instructors: `grade --submissions`, `gradescope`, `classroom` ([`class`], [`verbs`]).
//! - maintainers: `skeletons`, `docs`, `mutants`, `bench`, `bench-class`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod class;
mod grade;
mod labs;
mod lan;
#[cfg(feature = "tools")]
mod mutants;
mod skeletons;
mod student;
mod verbs;

// A student's build reads these verbs' command lines no further: the full build does.
#[cfg(feature = "tools")]
use class::bench::BenchClassArgs;
#[cfg(feature = "tools")]
use mutants::MutantArgs;
#[cfg(not(feature = "tools"))]
use verbs::tools::Passed as MutantArgs;
#[cfg(not(feature = "tools"))]
use verbs::tools::Passed as BenchClassArgs;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "socklab's grader and maintainer tools",
    after_help = "Maintainers' commands (each has --help):\n  \
                  skeletons  Regenerate labs/ from solutions/ (refuses to overwrite a student's work)\n  \
                  docs       Regenerate the lab READMEs' check and step tables\n  \
                  mutants    Prove every check can fail, with deliberately buggy programs\n  \
                  bench      Load-test the lab3, lab6 and lab7 servers against tokio\n  \
                  bench-class  Time grading a class with --jobs 1 and in parallel"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Grade a lab (lab1 ... lab8, or `all`): your crate, the reference, or any program.
    Grade(verbs::grade::GradeArgs),
    /// The hint for the step you are at: the idea first, the API when asked again.
    Hint(student::hint::HintArgs),
    /// Every lab with its steps written, last score, and where you are.
    List(student::list::ListArgs),
    /// Grade a lab again on every save of its files (q quits, h hint).
    Watch(student::watch::WatchArgs),
    /// Put a lab back to its pristine skeleton, keeping a backup of your files.
    Reset(student::reset::ResetArgs),
    /// Write DIR/autograder.zip: a Gradescope autograder for one lab.
    Gradescope(verbs::gradescope::GradescopeArgs),
    /// Print (or --out FILE) the GitHub Classroom autograding workflow for one lab.
    Classroom(verbs::classroom::ClassroomArgs),
    /// Play a lab's session live with the reference programs narrating every call.
    Demo {
        /// lab1 ... lab8.
        lab: String,
        /// Pause before each call's line and each group of packets until Enter.
        #[arg(long)]
        step: bool,
    },
    /// Regenerate the tables of every lab README (checks, steps) between their markers.
    #[command(hide = true)]
    Docs(verbs::docs::DocsArgs),
    /// Regenerate the student skeletons in labs/ from the reference solutions.
    #[command(hide = true)]
    Skeletons(skeletons::SkeletonArgs),
    /// Build every mutant and check it fails exactly the checks it targets.
    #[command(hide = true)]
    Mutants(MutantArgs),
    /// Load-test the lab3, lab6 and lab7 servers and tokio side by side (the
    /// xtask-bench crate, built in release mode; `cargo xtask bench --help` for options).
    #[command(hide = true, disable_help_flag = true)]
    Bench {
        /// Passed to xtask-bench as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Two hosts, alpha and beta, on a private cable; `lan shell alpha|beta` enters one.
    Lan(lan::LanArgs),
    /// Time grading a class with --jobs 1 and in parallel; prove no verdict differs.
    #[command(hide = true)]
    BenchClass(BenchClassArgs),
}

fn main() -> ExitCode {
    // The init of a check's PID namespace (the sandbox): before anything else.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == grade::pidns::INIT_ARG)
    {
        grade::pidns::run_init();
    }
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Grade(args) => verbs::grade::run(&root, args),
        #[cfg(feature = "tools")]
        Command::Demo { lab, step } => verbs::demo::run(&root, &lab, step),
        Command::Hint(args) => student::hint::run(&root, args),
        Command::List(args) => student::list::run(&root, args),
        Command::Watch(args) => student::watch::run(&root, args),
        Command::Reset(args) => student::reset::run(&root, args),
        Command::Skeletons(args) => skeletons::run(&root, args).map(|()| true),
        Command::Docs(args) => verbs::docs::run(&root, args),
        #[cfg(feature = "tools")]
        Command::Mutants(args) => mutants::run(&root, args),
        Command::Bench { args } => verbs::bench::run(&root, &args),
        Command::Lan(args) => lan::run(args),
        #[cfg(feature = "tools")]
        Command::Gradescope(args) => verbs::gradescope::run(&root, args),
        Command::Classroom(args) => verbs::classroom::run(&root, args),
        #[cfg(feature = "tools")]
        Command::BenchClass(args) => class::bench::run(&root, args),
        // A student's build leaves these out (etherparse, zip, toml, serde's derive):
        // run them from the build that has them.
        #[cfg(not(feature = "tools"))]
        Command::Demo { .. }
        | Command::Gradescope(_)
        | Command::Mutants(_)
        | Command::BenchClass(_) => verbs::tools::run(&root),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            // `{:#}` prints the context chain on one line ("cannot read X: No such file");
            // `{:?}` would print it over several lines, with a backtrace when asked.
            eprintln!("xtask: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The workspace root: xtask lives one level below it. `SOCKLAB_ROOT` overrides it
/// (the tests point it at a scratch copy, so they never write to the real labs/).
fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("SOCKLAB_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(root);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
