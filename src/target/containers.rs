//! The containers target: the services of a [`ServicesFile`] started with
//! testcontainers on a private network, for a whole run.
//!
//! Start order is file order. Each service gets the run's labels, the faults
//! in its `faults_env`, its own `env`, host entries for the aliases of the
//! services started before it (their addresses on the private network), and
//! its port published on 127.0.0.1 only, on an ephemeral port. A service is
//! up when `GET {health}` answers 200.
//!
//! **Invariants:** nothing is pulled (a missing image is an error, never a
//! pull); nothing listens beyond loopback; everything started carries the
//! label `dev.chaperone.run` so `ci/cleanup.sh` can remove a killed run's
//! leftovers; [`Environment::shutdown`] (or, failing that, `Drop`) removes every
//! container and then the network.
//!
//! Knob: `CHAPERONE_START_TIMEOUT_SECS` bounds the wait for health (default 60).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clinic::FaultSet;
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{NetworkCreateRequest, PortBinding};
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::core::{Host, IntoContainerPort};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::images;
use super::services::{ImageSource, ServicesFile};

/// The label every container and network of a run carries; its value is the run id.
pub const RUN_LABEL: &str = "dev.chaperone.run";

/// The label naming the CI job a run belongs to (`CHAPERONE_RUN_ID`), so a
/// job's clean-up (`ci/cleanup.sh JOB`) removes its own runs and never a
/// parallel job's.
pub const JOB_LABEL: &str = "dev.chaperone.job";

/// The job id from `CHAPERONE_RUN_ID`, if set: 1 to 64 characters of
/// `A-Z a-z 0-9 _ . -`, so it is safe as a label value and a shell word.
fn job_id() -> Result<Option<String>, StartError> {
    let Ok(job) = std::env::var("CHAPERONE_RUN_ID") else {
        return Ok(None);
    };
    let valid = (1..=64).contains(&job.len())
        && job
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !valid {
        return Err(StartError::Config(
            "CHAPERONE_RUN_ID must be 1 to 64 characters of A-Z, a-z, 0-9, `_`, `.` or `-`".into(),
        ));
    }
    Ok(Some(job))
}

/// The label naming the service a container runs.
pub const SERVICE_LABEL: &str = "dev.chaperone.service";

/// Why an environment could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No Docker engine answered.
    #[error("no Docker engine answers ({0}); start one or use --target embedded")]
    NoEngine(String),
    /// The target file needs something the user must provide (an image, a binary).
    #[error("{0}")]
    Config(String),
    /// The engine failed to start something, or a service never became healthy.
    #[error("{0}")]
    Failed(String),
}

impl StartError {
    /// Exit code: 2 for what the user must fix in their set-up, 3 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => 2,
            StartError::NoEngine(_) | StartError::Failed(_) => 3,
        }
    }
}

/// One started service.
struct Running {
    name: String,
    container: ContainerAsync<GenericImage>,
}

/// A started set of services. Dropping it removes them.
pub struct Environment {
    run_id: String,
    /// The CI job (`CHAPERONE_RUN_ID`) this run belongs to, if any.
    job: Option<String>,
    network: Option<String>,
    docker: Docker,
    running: Vec<Running>,
    api_url: String,
    /// The store service's base URL on loopback, if the file names one.
    store_url: Option<String>,
    startup: Duration,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("run_id", &self.run_id)
            .field("services", &self.running.len())
            .finish_non_exhaustive()
    }
}

/// Connect to the local engine and check it answers.
pub async fn docker() -> Result<Docker, StartError> {
    let docker =
        Docker::connect_with_local_defaults().map_err(|e| StartError::NoEngine(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| StartError::NoEngine(e.to_string().replace('\n', " ")))?;
    Ok(docker)
}

/// A run id unique on this host: pid, time, counter.
fn run_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}-{:x}-{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn start_timeout() -> Duration {
    std::env::var("CHAPERONE_START_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

/// Poll `url` until it answers 200, the container stops, or the timeout.
async fn wait_healthy(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    container: &ContainerAsync<GenericImage>,
    timeout: Duration,
) -> Result<(), StartError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().as_u16() == 200
        {
            return Ok(());
        }
        if !container.is_running().await.unwrap_or(false) {
            let code = container.exit_code().await.ok().flatten();
            return Err(StartError::Failed(format!(
                "service `{name}` exited before it was healthy (exit code {})",
                code.map_or("unknown".to_string(), |c| c.to_string())
            )));
        }
        if Instant::now() >= deadline {
            return Err(StartError::Failed(format!(
                "service `{name}` did not answer 200 on its health path within {}s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Environment {
    /// Start every service of `file` with `faults`, in order, and wait for each
    /// to be healthy. On failure, whatever was started is removed.
    pub async fn start(file: &ServicesFile, faults: &FaultSet) -> Result<Environment, StartError> {
        let started = Instant::now();
        if !faults.is_empty() && !file.takes_faults() {
            return Err(StartError::Config(format!(
                "{}: --fault given but no service has `faults_env`",
                file.source
            )));
        }
        let docker = docker().await?;
        // Resolve every image before starting anything: a missing image is the
        // user's to fix, and is never pulled.
        let mut images = Vec::new();
        for service in &file.services {
            let (image, tag) = match &service.source {
                ImageSource::Tag(tag) => {
                    let reference = format!("{}:{tag}", service.image);
                    if docker.inspect_image(&reference).await.is_err() {
                        return Err(StartError::Config(format!(
                            "{}: image {reference} (service `{}`) is not present locally; build or load it \
                             (chaperone never pulls)",
                            file.source, service.name
                        )));
                    }
                    (service.image.clone(), tag.clone())
                }
                ImageSource::BuildClinic => {
                    let binary =
                        images::clinic_binary().map_err(|e| StartError::Config(e.to_string()))?;
                    let built = images::ensure_clinic_image(&docker, &binary, false)
                        .await
                        .map_err(|e| StartError::Failed(e.to_string()))?;
                    (built.image, built.tag)
                }
            };
            images.push((image, tag));
        }

        let run_id = run_id();
        let job = job_id()?;
        let network = format!("chaperone-{run_id}");
        // The environment exists before anything is created, so that if this
        // future is dropped half-way (Ctrl-C), its `Drop` removes whatever
        // the engine did create, by name and by label.
        let mut env = Environment {
            run_id: run_id.clone(),
            job: job.clone(),
            network: Some(network.clone()),
            docker: docker.clone(),
            running: Vec::new(),
            api_url: String::new(),
            store_url: None,
            startup: Duration::ZERO,
        };
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".to_string()),
                labels: Some(
                    [(RUN_LABEL.to_string(), run_id.clone())]
                        .into_iter()
                        .chain(job.iter().map(|j| (JOB_LABEL.to_string(), j.clone())))
                        .collect::<HashMap<_, _>>(),
                ),
                ..Default::default()
            })
            .await
            .map_err(|e| StartError::Failed(format!("cannot create network: {e}")))?;

        match env.start_services(file, faults, &images, &network).await {
            Ok(()) => {
                env.startup = started.elapsed();
                Ok(env)
            }
            Err(error) => {
                env.shutdown().await;
                Err(error)
            }
        }
    }

    async fn start_services(
        &mut self,
        file: &ServicesFile,
        faults: &FaultSet,
        images: &[(String, String)],
        network: &str,
    ) -> Result<(), StartError> {
        let client = crate::driver::http_client();
        let timeout = start_timeout();
        let mut hosts: Vec<(String, IpAddr)> = Vec::new();
        for (service, (image, tag)) in file.services.iter().zip(images) {
            let port = service.port;
            let mut request = GenericImage::new(image.as_str(), tag.as_str())
                .with_exposed_port(port.tcp())
                .with_network(network)
                .with_container_name(format!("{network}-{}", service.name))
                .with_label(RUN_LABEL, self.run_id.as_str())
                .with_label(JOB_LABEL, self.job.as_deref().unwrap_or(""))
                .with_label(SERVICE_LABEL, service.name.as_str())
                .with_cmd(service.command.iter().cloned())
                .with_startup_timeout(timeout)
                .with_host_config_modifier(move |host| {
                    // Publish on loopback only, on an ephemeral host port.
                    host.publish_all_ports = Some(false);
                    host.port_bindings = Some(HashMap::from([(
                        format!("{port}/tcp"),
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".to_string()),
                            host_port: Some(String::new()),
                        }]),
                    )]));
                });
            for (key, value) in &service.env {
                request = request.with_env_var(key.as_str(), value.as_str());
            }
            if let Some(name) = &service.faults_env {
                request = request.with_env_var(name.as_str(), faults.to_string());
            }
            for (alias, ip) in &hosts {
                request = request.with_host(alias.as_str(), Host::Addr(*ip));
            }
            let container = request.start().await.map_err(|e| {
                StartError::Failed(format!(
                    "cannot start service `{}`: {}",
                    service.name,
                    e.to_string().replace('\n', " ")
                ))
            })?;
            let host_port = container.get_host_port_ipv4(port.tcp()).await;
            let ip = container.get_bridge_ip_address().await;
            self.running.push(Running {
                name: service.name.clone(),
                container,
            });
            let running = &self.running[self.running.len() - 1].container;
            if !running.is_running().await.unwrap_or(false) {
                let code = running.exit_code().await.ok().flatten();
                return Err(StartError::Failed(format!(
                    "service `{}` exited as it started (exit code {}); check its image and command",
                    service.name,
                    code.map_or("unknown".to_string(), |c| c.to_string())
                )));
            }
            let (host_port, ip) = match (host_port, ip) {
                (Ok(p), Ok(ip)) => (p, ip),
                (Err(e), _) | (_, Err(e)) => {
                    return Err(StartError::Failed(format!(
                        "service `{}` has no address: {e}",
                        service.name
                    )));
                }
            };
            let base = format!("http://127.0.0.1:{host_port}");
            wait_healthy(
                &client,
                &format!("{base}{}", service.health),
                &service.name,
                running,
                timeout,
            )
            .await?;
            hosts.push((service.alias.clone(), ip));
            if service.store.is_some() {
                self.store_url = Some(base.clone());
            }
            if std::ptr::eq(service, &file.services[file.api]) {
                self.api_url = base;
            }
        }
        Ok(())
    }

    /// The store service's base URL on loopback, if the file names one.
    pub fn store_url(&self) -> Option<&str> {
        self.store_url.as_deref()
    }

    /// The API's base URL on loopback (`http://127.0.0.1:PORT`).
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The id in every container's and the network's `dev.chaperone.run` label.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The container id of a service, by name.
    pub fn container_id(&self, service: &str) -> Option<&str> {
        self.running
            .iter()
            .find(|r| r.name == service)
            .map(|r| r.container.id())
    }

    /// Time from the start call to every service healthy.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// Remove every container, then the network. Errors are ignored: a
    /// container already gone is what we want.
    pub async fn shutdown(mut self) {
        let running = std::mem::take(&mut self.running);
        let network = self.network.take();
        remove(&self.docker, &self.run_id, running, network, 1).await;
    }
}

/// Remove a run: its known containers, then anything else carrying its label
/// (a container whose creation was under way when a start was interrupted),
/// then its network. After an interrupted start, sweep twice, a moment
/// apart: a create request the engine had already accepted may land after
/// the first sweep.
async fn remove(
    docker: &Docker,
    run_id: &str,
    running: Vec<Running>,
    network: Option<String>,
    sweeps: u32,
) {
    for running in running.into_iter().rev() {
        let _ = running.container.rm().await;
    }
    let label = format!("{RUN_LABEL}={run_id}");
    for sweep in 0..sweeps {
        if sweep > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        if let Ok(left) = docker.list_containers(Some(options)).await {
            for container in left {
                if let Some(id) = container.id {
                    let _ = docker
                        .remove_container(
                            &id,
                            Some(
                                RemoveContainerOptionsBuilder::new()
                                    .force(true)
                                    .v(true)
                                    .build(),
                            ),
                        )
                        .await;
                }
            }
        }
        if let Some(network) = &network {
            let _ = docker.remove_network(network).await;
        }
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        if self.running.is_empty() && self.network.is_none() {
            return;
        }
        // Not shut down explicitly (a panic, an interrupted start): remove
        // everything from a thread of our own, which works whether or not the
        // caller is inside a runtime.
        let running = std::mem::take(&mut self.running);
        let network = self.network.take();
        let run_id = self.run_id.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                // A client of this runtime's own: the caller's may be gone.
                let Ok(docker) = Docker::connect_with_local_defaults() else {
                    return;
                };
                remove(&docker, &run_id, running, network, 2).await;
            });
        });
        let _ = cleanup.join();
    }
}
