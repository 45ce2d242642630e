//! What the commands share: the target and fault flags, failures with their
//! exit codes, output files, the progress bar, the async runtime, readiness
//! and Ctrl-C / SIGTERM handling.

use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::time::Duration;

use clap::Args;
use clinic::{Fault, FaultSet};

use std::sync::Arc;

use crate::binding::Binding;
use crate::driver::http::{BodyLimits, JSON_MAX_DEFAULT, MEDIA_MAX_DEFAULT};
use crate::runner::Progress;
use crate::target::{Target, TargetSpec};

#[derive(Debug, Args)]
pub(super) struct TargetArgs {
    /// `embedded` (the reference clinic in-process), `containers` (the clinic as
    /// two containers), a target file FILE.toml, or the base URL of a running clinic.
    // Parsed by `TargetArgs::spec`, not clap, so a target file's validation
    // error stays one line.
    #[arg(long, value_name = "embedded|containers|FILE.toml|URL")]
    pub(super) target: Option<String>,
    /// Plant a fault in the embedded clinic or the containers (repeatable); see `chaperone faults`.
    #[arg(long = "fault", value_name = "NAME")]
    pub(super) faults: Vec<String>,
    /// The binding file that says how the service's API performs each action
    /// (default: a target file's `binding`, else the reference clinic's
    /// built-in `bindings/clinic.toml`); see docs/bindings.md.
    #[arg(long, value_name = "FILE.toml")]
    pub(super) binding: Option<std::path::PathBuf>,
    /// Most bytes of a JSON (or any non-media) response body; a larger one is a target failure.
    #[arg(long, value_name = "BYTES", default_value_t = JSON_MAX_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=BODY_MAX_LIMIT))]
    pub(super) json_max_bytes: u64,
    /// Most bytes of a media (playback) response body; a larger one is a target failure.
    #[arg(long, value_name = "BYTES", default_value_t = MEDIA_MAX_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..=BODY_MAX_LIMIT))]
    pub(super) media_max_bytes: u64,
}

/// The largest body cap a user may ask for: 1 GiB. A larger cap would let
/// one response (times every concurrent patient in a soak) take the machine.
const BODY_MAX_LIMIT: u64 = 1 << 30;

/// `--noninterference WHEN`, for the commands that explore cases.
#[derive(Debug, Args)]
pub(super) struct NoninterferenceArgs {
    /// When a patient's steps are run again alone and compared: `suspect`
    /// (where a case gives cause: a valid step refused, an own finished
    /// recording missing) or `every` (every passed case too, one more case
    /// per patient). Default: the binding's `[noninterference] check`, else
    /// `suspect`.
    #[arg(long, value_name = "WHEN", value_parser = ["suspect", "every"])]
    pub(super) noninterference: Option<String>,
}

impl NoninterferenceArgs {
    /// `binding`, with the check asked for on the command line.
    pub(super) fn apply(&self, binding: Arc<Binding>) -> Arc<Binding> {
        match self
            .noninterference
            .as_deref()
            .and_then(crate::binding::NoninterferenceCheck::from_name)
        {
            Some(check) if check != binding.noninterference => {
                let mut changed = (*binding).clone();
                changed.noninterference = check;
                Arc::new(changed)
            }
            _ => binding,
        }
    }
}

impl TargetArgs {
    /// The binding to drive `spec` with: `--binding`, else the target
    /// file's, else the clinic's. A bad file is a usage error.
    pub(super) fn binding(&self, spec: &TargetSpec) -> Result<Arc<Binding>, Failure> {
        load_binding(self.binding.as_deref(), spec)
    }

    /// The `--target`, parsed; a bad name or target file is a usage error.
    pub(super) fn spec(&self) -> Result<Option<TargetSpec>, Failure> {
        self.target
            .as_deref()
            .map(|s| s.parse::<TargetSpec>().map_err(|e| usage(e.to_string())))
            .transpose()
    }

    /// The response body caps the flags ask for.
    pub(super) fn body_limits(&self) -> BodyLimits {
        // Both are at most BODY_MAX_LIMIT (clap checked), which fits a usize
        // on every platform Chaperone builds for.
        BodyLimits {
            json_max: usize::try_from(self.json_max_bytes).unwrap_or(JSON_MAX_DEFAULT),
            media_max: usize::try_from(self.media_max_bytes).unwrap_or(MEDIA_MAX_DEFAULT),
        }
    }

    /// The target for `spec` with `faults`, reading bodies under the flags' caps.
    pub(super) fn target(&self, spec: TargetSpec, faults: FaultSet) -> Target {
        Target::new(spec, faults).with_body_limits(self.body_limits())
    }
}

/// A failure that ends the command with a one-line message and an exit code.
pub(super) struct Failure {
    pub(super) code: u8,
    pub(super) message: String,
}

pub(super) fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

pub(super) fn unknown(message: impl Into<String>) -> Failure {
    Failure {
        code: 3,
        message: message.into(),
    }
}

/// Load `--binding FILE`, else the target file's binding, else the clinic's.
pub(super) fn load_binding(
    path: Option<&Path>,
    spec: &TargetSpec,
) -> Result<Arc<Binding>, Failure> {
    let from_target = match spec {
        TargetSpec::Containers(file) => file.binding.as_deref(),
        _ => None,
    };
    match path.or(from_target) {
        Some(path) => Binding::load(path)
            .map(Arc::new)
            .map_err(|e| usage(e.to_string())),
        None => Ok(Arc::new(Binding::clinic())),
    }
}

pub(super) fn parse_faults(names: &[String]) -> Result<FaultSet, Failure> {
    let mut set = FaultSet::default();
    for name in names {
        let fault: Fault = name.parse().map_err(|e| usage(format!("{e}")))?;
        set.insert(fault);
    }
    Ok(set)
}

pub(super) fn check_fault_target(spec: &TargetSpec, faults: &FaultSet) -> Result<(), Failure> {
    if matches!(spec, TargetSpec::Url(_)) && !faults.is_empty() {
        return Err(usage(
            "--fault plants faults in the embedded clinic or containers only; a URL target runs the faults it was \
             started with (e.g. `clinic serve --fault NAME`), so drop --fault or use --target embedded|containers",
        ));
    }
    if !faults.is_empty() && !spec.plants_faults() {
        return Err(usage(format!(
            "--fault given but no service in {spec} has `faults_env`; drop --fault or add it to the target file"
        )));
    }
    Ok(())
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| unknown(format!("cannot start the async runtime: {e}")))?;
    {
        let _inside = rt.enter();
        listen_for_signals();
    }
    Ok(rt)
}

pub(super) fn fault_list(faults: &FaultSet) -> String {
    if faults.is_empty() {
        "none".to_string()
    } else {
        faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A progress bar on a terminal, nothing otherwise (CI logs stay clean).
pub(super) struct Bar(pub(super) Option<indicatif::ProgressBar>);

impl Bar {
    pub(super) fn new(total: u32) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(u64::from(total));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} cases {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }
}

impl Progress for Bar {
    fn case_done(&mut self, done: u32, _total: u32) {
        if let Some(bar) = &self.0 {
            bar.set_position(u64::from(done));
        }
    }

    fn shrinking(&mut self, runs: u32, len: usize) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!(
                "| violation found, shrinking: {len} steps after {runs} runs"
            ));
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

pub(super) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish() % 1_000_000
}

pub(super) fn scenario_file_name(spec: &TargetSpec, faults: &FaultSet, seed: u64) -> String {
    let label = match spec {
        TargetSpec::Url(_) => "url".to_string(),
        TargetSpec::Embedded | TargetSpec::Containers(_) if faults.is_empty() => {
            "clean".to_string()
        }
        TargetSpec::Embedded | TargetSpec::Containers(_) => faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join("+"),
    };
    format!("{label}-seed-{seed}.toml")
}

/// Fail early, before any exploration, if outputs could not be written.
pub(super) fn writable_dir(dir: &Path) -> Result<(), Failure> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    // Nothing is created here: a directory appears only when a file is
    // written into it, so a run without a finding leaves no empty
    // `scenarios/found/`. The nearest existing ancestor must be a writable
    // directory.
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => return Ok(()),
        }
    }
    let meta = std::fs::metadata(existing)
        .map_err(|e| usage(format!("cannot use {}: {e}", existing.display())))?;
    if !meta.is_dir() {
        return Err(usage(format!(
            "cannot create output directory {}: {} is not a directory",
            dir.display(),
            existing.display()
        )));
    }
    if meta.permissions().readonly() {
        return Err(usage(format!(
            "output directory {} is read-only",
            existing.display()
        )));
    }
    Ok(())
}

/// How the user can run chaperone again: `chaperone` when this very binary
/// is on PATH, otherwise the README's `cargo run --release --` form.
pub(super) fn invocation() -> &'static str {
    let on_path = || -> Option<bool> {
        let me = std::env::current_exe().ok()?.canonicalize().ok()?;
        let path = std::env::var_os("PATH")?;
        Some(std::env::split_paths(&path).any(|dir| {
            dir.join("chaperone")
                .canonicalize()
                .is_ok_and(|found| found == me)
        }))
    };
    if on_path().unwrap_or(false) {
        "chaperone"
    } else {
        "cargo run --release --"
    }
}

/// The command that replays the scenario at `shown` against `spec` (the
/// target is named unless it is the embedded default: a scenario file never
/// chooses its target), through `binding` when the run was given one with
/// `--binding` (replay does not look a binding up by the name the scenario
/// records).
pub(super) fn replay_command(shown: &str, spec: &TargetSpec, binding: Option<&Path>) -> String {
    let mut command = match spec {
        TargetSpec::Embedded => format!("{} replay {shown}", invocation()),
        _ => format!("{} replay {shown} --target {spec}", invocation()),
    };
    if let Some(file) = binding {
        command.push_str(&format!(" --binding {}", file.display()));
    }
    command
}

pub(super) fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| usage(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    crate::report::write_atomic(path, text)
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}

/// Make `target` ready (containers start here), or fail with its exit code:
/// 2 for a set-up the user must fix (a missing image or binary), 3 otherwise.
pub(super) fn ready(rt: &tokio::runtime::Runtime, target: &Target) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let result = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            result = target.ready() => Some(result),
            () = stop => None,
        }
    });
    match result {
        Some(Ok(())) => {
            if let Some(startup) = target.with_environment(|e| e.startup()) {
                outln!(
                    "containers up in {:.1}s (run id {}; removed on exit)",
                    startup.as_secs_f64(),
                    target
                        .with_environment(|e| e.run_id().to_string())
                        .unwrap_or_default()
                );
                let _ = std::io::stdout().flush();
            }
            Ok(())
        }
        Some(Err(e)) => {
            rt.block_on(target.shutdown());
            let code = e.exit_code();
            let message = match e {
                crate::target::ReadyError::Unhealthy(e) => format!(
                    "target {} is unreachable or unhealthy: {e}; start it or check --target",
                    target.spec()
                ),
                crate::target::ReadyError::Start(e) => {
                    format!("target {} could not start: {e}", target.spec())
                }
            };
            Err(Failure { code, message })
        }
        None => {
            rt.block_on(target.shutdown());
            Err(unknown(format!(
                "interrupted after {:.1}s while starting the target; everything started was removed",
                started.elapsed().as_secs_f64()
            )))
        }
    }
}

/// Set once Ctrl-C or SIGTERM (a CI runner cancelling the job) arrived.
pub(super) static STOP: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> =
    std::sync::OnceLock::new();

/// Listen for Ctrl-C and SIGTERM for the rest of the process, from the
/// moment the runtime exists: a signal that arrives between two steps of a
/// command is remembered, not lost. Call inside the runtime.
pub(super) fn listen_for_signals() {
    STOP.get_or_init(|| {
        let (tx, rx) = tokio::sync::watch::channel(false);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut interrupt = signal(SignalKind::interrupt()).ok();
            let mut terminate = signal(SignalKind::terminate()).ok();
            tokio::spawn(async move {
                // The first signal asks for a clean stop (steps in flight
                // finish, containers are removed, the report is written);
                // a second one means the user will not wait: exit at once.
                for count in 1..=2 {
                    match (&mut interrupt, &mut terminate) {
                        (Some(interrupt), Some(terminate)) => {
                            tokio::select! {
                                _ = interrupt.recv() => {}
                                _ = terminate.recv() => {}
                            }
                        }
                        _ => {
                            let _ = tokio::signal::ctrl_c().await;
                        }
                    }
                    if count == 1 {
                        let _ = tx.send(true);
                    }
                }
                eprintln!(
                    "interrupted again: exiting at once, no verdict; containers a run started may be left \
                     (ci/cleanup.sh RUN_ID removes them)"
                );
                std::process::exit(3);
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
        });
        rx
    });
}

/// Resolves once Ctrl-C or SIGTERM has arrived (at once if it already has).
pub(super) fn interrupted() -> impl Future<Output = ()> {
    let stop = STOP.get().cloned();
    async move {
        match stop {
            Some(mut stop) => {
                if stop.wait_for(|stopped| *stopped).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// Run `work`; on Ctrl-C or SIGTERM remove the target's containers and fail
/// with exit 3 (no verdict).
pub(super) fn until_interrupted<T>(
    rt: &tokio::runtime::Runtime,
    target: &Target,
    work: impl Future<Output = T>,
) -> Result<T, Failure> {
    let outcome = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            out = work => Some(out),
            () = stop => None,
        }
    });
    match outcome {
        Some(out) => Ok(out),
        None => {
            rt.block_on(target.shutdown());
            Err(unknown(
                "interrupted: no verdict; every container started was removed",
            ))
        }
    }
}
