//! The `tinyhealth` binary: `serve` runs the service, `faults` lists the
//! plantable faults.
//!
//! Exit codes: `0` clean shutdown, `1` the service failed, `2` usage or
//! configuration error (an unknown fault among them). Ctrl-C and SIGTERM shut
//! the service down gracefully.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tinyhealth::{Fault, FaultSet};

/// A small telehealth service (cookie sessions, cursor pages, signed download
/// links) with plantable privacy faults.
#[derive(Debug, Parser)]
#[command(name = "tinyhealth", version)]
#[command(
    after_help = "Run `tinyhealth faults` to list the plantable faults. With no fault the service is correct."
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service; prints its base URL on the first line.
    Serve {
        /// Port to listen on (0 for an ephemeral port).
        #[arg(long, default_value_t = 8090)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// Plant a fault (repeatable, or comma-separated). `--fault` replaces
        /// TINYHEALTH_FAULTS rather than adding to it.
        #[arg(
            long = "fault",
            value_name = "NAME",
            env = "TINYHEALTH_FAULTS",
            value_delimiter = ','
        )]
        faults: Vec<String>,
    },
    /// List the plantable faults, one per line: name, then what goes wrong.
    Faults,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Faults => {
            let width = Fault::ALL.iter().map(|f| f.name().len()).max().unwrap_or(0);
            for fault in Fault::ALL {
                println!("{:width$}  {}", fault.name(), fault.summary());
            }
            ExitCode::SUCCESS
        }
        Command::Serve { port, host, faults } => {
            let faults = match FaultSet::parse_list(&faults.join(",")) {
                Ok(faults) => faults,
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::from(2);
                }
            };
            match serve(SocketAddr::new(host, port), faults) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn serve(addr: SocketAddr, faults: FaultSet) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let label = if faults.is_empty() {
            "none".to_owned()
        } else {
            faults.to_string()
        };
        let running = tinyhealth::start(faults, addr).await?;
        // Handlers go in before the URL is printed, so a signal sent as soon
        // as a script reads that line still shuts down gracefully.
        let signal = shutdown_signal()?;
        println!("{}", running.url());
        eprintln!("tinyhealth serving (faults: {label}); Ctrl-C to stop");
        signal.await;
        running.shutdown().await;
        Ok(())
    })
}

/// Installs the SIGINT and SIGTERM handlers; the future resolves on the first.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install a signal handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install a signal handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
