//! The command line: `run`, `replay`, `soak`, `faults`, `import-fuzz`, `gate`, `images build`.
//!
//! One module per command, each with its clap arguments and its body; the
//! flags and helpers they share (target and fault flags, failures, output
//! files, the runtime and signals) live in [`common`]. Exit codes
//! (DESIGN.md): 0 pass, 1 privacy violation, 2 usage or configuration
//! error, 3 unknown (the target failed, or too little of the model was
//! exercised). Every error is one line on stderr.

/// `println!` that never panics: on a closed or full stdout
/// (`chaperone faults | head -1`) the text is lost, the command goes on and
/// exits with its verdict's code.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that never panics (see `outln!`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod binding;
mod common;
mod faults;
mod gate;
mod images;
mod import_fuzz;
mod replay;
mod run;
mod soak;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Hunt cross-patient privacy leaks in a telehealth service.
#[derive(Debug, Parser)]
#[command(name = "chaperone", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 pass, 1 privacy violation, 2 usage error, 3 unknown (target failed)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explore random patient flows, shrink any leak to a minimal scenario file.
    Run(run::RunArgs),
    /// Replay a scenario file; say REPRODUCED, FLAKY or FIXED.
    Replay(replay::ReplayArgs),
    /// Many concurrent patients for a while: live progress, a journal, a report.
    Soak(soak::SoakArgs),
    /// List the reference clinic's plantable faults.
    Faults,
    /// Turn a `flows` fuzz crash input into a scenario file that `replay` reproduces.
    ImportFuzz(import_fuzz::ImportFuzzArgs),
    /// The CI gate: replay every scenario in scenarios/, then explore fixed seeds (strict: completeness warnings fail it).
    Gate(gate::GateArgs),
    /// Bindings: check that one drives a service.
    #[command(subcommand)]
    Binding(binding::BindingCommand),
    /// Container images.
    #[command(subcommand)]
    Images(images::ImagesCommand),
}

/// Parse arguments, run the command, return its exit code.
pub fn main() -> ExitCode {
    let process_start = std::time::Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `chaperone` or `chaperone images` alone: clap shows the help, and
        // this is still a usage error.
        Err(help)
            if help.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            eprintln!("error: {}", missing_command_line(&help.to_string()));
            return ExitCode::from(2);
        }
        Err(error) if error.use_stderr() => {
            // One line, like every other error, that keeps clap's meaning.
            eprintln!("error: {}", clap_error_line(&error.to_string()));
            return ExitCode::from(2);
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args, process_start),
        Command::Replay(args) => replay::replay(args),
        Command::Soak(args) => soak::soak(args),
        Command::Faults => {
            faults::faults();
            Ok(0)
        }
        Command::ImportFuzz(args) => import_fuzz::import_fuzz(args),
        Command::Gate(args) => gate::gate(args),
        Command::Images(images::ImagesCommand::Build(args)) => images::images_build(args),
        Command::Binding(command) => binding::binding(command),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// A clap error as one line: its message (every line up to the usage), its
/// usage line, and where to read more.
fn clap_error_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message: Vec<&str> = lines
        .iter()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .copied()
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let message = if message.is_empty() {
        "invalid arguments"
    } else {
        message
    };
    match lines.iter().find(|l| l.starts_with("Usage:")) {
        Some(usage) => format!("{message} ({usage}; see --help)"),
        None => format!("{message} (see chaperone --help)"),
    }
}

/// The help clap shows for a missing subcommand, as one line: the usage and
/// the commands to choose from.
fn missing_command_line(help: &str) -> String {
    let usage = help
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or("Usage: chaperone <COMMAND>");
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    format!(
        "a command is missing ({usage}; commands: {}; see --help)",
        commands.join(", ")
    )
}
