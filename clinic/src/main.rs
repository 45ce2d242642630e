//! The `clinic` binary: runs the api service, the media service, or both.
//!
//! `main` parses the command line, dispatches on the subcommand and maps the
//! outcome to an exit code: `0` clean shutdown, `1` the service failed, `2`
//! usage or configuration error (an unknown fault among them). Ctrl-C and
//! SIGTERM shut the services down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use clinic::{Config, Fault, FaultSet, MediaLink, api, media};

/// The reference telehealth service Chaperone tests against, with plantable
/// privacy faults.
#[derive(Debug, Parser)]
#[command(name = "clinic", version, propagate_version = true)]
#[command(
    after_help = "Run `clinic faults` to list the plantable faults. With no fault the clinic is correct."
)]
struct Cli {
    /// What to run.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the api service (patients, appointments, calls, recordings) against a
    /// running media service.
    Api(ApiArgs),
    /// Run the media service (recording bytes, in memory, no auth: keep it on a
    /// private network).
    Media(MediaArgs),
    /// Run both services in one process; prints their URLs, one per line.
    Serve(ServeArgs),
    /// List the plantable faults, one per line: name, then what goes wrong.
    Faults,
}

#[derive(Debug, Args)]
struct ApiArgs {
    /// Address to listen on.
    #[arg(long, env = "CLINIC_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base URL of the media service, e.g. http://127.0.0.1:8081.
    #[arg(long, env = "CLINIC_MEDIA_URL", value_name = "URL")]
    media_url: String,
    /// SQLite database file, created if missing [default: in memory].
    #[arg(long, env = "CLINIC_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(flatten)]
    faults: FaultArgs,
}

#[derive(Debug, Args)]
struct MediaArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address for the api service [default: an ephemeral loopback port].
    #[arg(long, default_value = "127.0.0.1:0")]
    api_listen: SocketAddr,
    /// Address for the media service [default: an ephemeral loopback port].
    #[arg(long, default_value = "127.0.0.1:0")]
    media_listen: SocketAddr,
    /// SQLite database file, created if missing [default: in memory].
    #[arg(long, env = "CLINIC_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(flatten)]
    faults: FaultArgs,
}

#[derive(Debug, Args)]
struct FaultArgs {
    /// Plant a fault (repeatable, or comma-separated). `--fault` replaces
    /// CLINIC_FAULTS rather than adding to it.
    #[arg(
        long = "fault",
        value_name = "NAME",
        env = "CLINIC_FAULTS",
        value_delimiter = ','
    )]
    faults: Vec<String>,
}

impl FaultArgs {
    fn parse(&self) -> Result<FaultSet, clinic::UnknownFault> {
        FaultSet::parse_list(&self.faults.join(","))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Faults => {
            print_faults();
            return ExitCode::SUCCESS;
        }
        Command::Api(args) => match args.faults.parse() {
            Ok(faults) => run(run_api(args, faults)),
            Err(err) => return usage_error(&err),
        },
        Command::Serve(args) => match args.faults.parse() {
            Ok(faults) => run(run_serve(args, faults)),
            Err(err) => return usage_error(&err),
        },
        Command::Media(args) => run(run_media(args)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// How a run went wrong, which decides the exit code.
enum Failure {
    /// Bad configuration: exit code 2.
    Usage(anyhow::Error),
    /// The service could not run: exit code 1.
    Runtime(anyhow::Error),
}

fn usage_error(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(2)
}

fn print_faults() {
    let width = Fault::ALL
        .iter()
        .map(|fault| fault.name().len())
        .max()
        .unwrap_or(0);
    for fault in Fault::ALL {
        println!("{:width$}  {}", fault.name(), fault.summary());
    }
}

fn run(future: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let runtime = tokio::runtime::Runtime::new()
        .context("cannot start the tokio runtime")
        .map_err(Failure::Runtime)?;
    runtime.block_on(future)
}

fn faults_label(faults: &FaultSet) -> String {
    if faults.is_empty() {
        "none".to_owned()
    } else {
        faults.to_string()
    }
}

async fn run_api(args: ApiArgs, faults: FaultSet) -> Result<(), Failure> {
    let link = MediaLink::http(&args.media_url).map_err(|err| Failure::Usage(err.into()))?;
    let config = Config {
        faults,
        db_path: args.db,
    };
    let state = api::ApiState::new(&config, link).map_err(|err| Failure::Runtime(err.into()))?;
    let (listener, addr) = clinic::bind("api", args.listen)
        .await
        .map_err(|err| Failure::Runtime(err.into()))?;
    let shutdown = ShutdownSignal::install()?;
    println!(
        "clinic api listening on {addr} (faults: {})",
        faults_label(&config.faults)
    );
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown.received())
        .await
        .context("the api service failed")
        .map_err(Failure::Runtime)
}

async fn run_media(args: MediaArgs) -> Result<(), Failure> {
    let (listener, addr) = clinic::bind("media", args.listen)
        .await
        .map_err(|err| Failure::Runtime(err.into()))?;
    let shutdown = ShutdownSignal::install()?;
    println!("clinic media listening on {addr}");
    axum::serve(listener, media::router(media::MediaState::default()))
        .with_graceful_shutdown(shutdown.received())
        .await
        .context("the media service failed")
        .map_err(Failure::Runtime)
}

async fn run_serve(args: ServeArgs, faults: FaultSet) -> Result<(), Failure> {
    let label = faults_label(&faults);
    let config = Config {
        faults,
        db_path: args.db,
    };
    let clinic = clinic::start_on(config, args.api_listen, args.media_listen)
        .await
        .map_err(|err| Failure::Runtime(err.into()))?;
    let shutdown = ShutdownSignal::install()?;
    println!("api {}", clinic.api_url());
    println!("media {}", clinic.media_url());
    eprintln!("clinic serving (faults: {label}); Ctrl-C to stop");
    shutdown.received().await;
    clinic.shutdown().await;
    Ok(())
}

/// The shutdown signals (SIGINT, SIGTERM), with their handlers installed when
/// this is made: a signal that arrives right after the ready line is printed
/// then starts a graceful shutdown instead of killing the process.
struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Installs the handlers; must run inside the tokio runtime.
    fn install() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind| {
                signal(kind)
                    .context("cannot install a signal handler")
                    .map_err(Failure::Runtime)
            };
            Ok(ShutdownSignal {
                interrupt: install(SignalKind::interrupt())?,
                terminate: install(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(ShutdownSignal {})
        }
    }

    /// Resolves on the first signal.
    async fn received(self) {
        #[cfg(unix)]
        {
            let ShutdownSignal {
                mut interrupt,
                mut terminate,
            } = self;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
