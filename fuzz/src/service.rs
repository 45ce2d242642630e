//! The services `flows` fuzzes in-process, and how they are reset.
//!
//! A [`Service`] is anything with an axum [`Router`] in front of it (a tower
//! service becomes one with `Router::new().fallback_service(service)`) that
//! can forget its state between runs. Reusing one service per fuzzing
//! process and resetting it is what makes `flows` fast: opening a database
//! and building the routers was over half of an input's time.

use axum::Router;
use chaperone::driver::StoreSpec;
use chaperone::target::ServicesFile;
use clinic::media::MediaState;
use clinic::{Config, FaultSet, MediaLink, api, media};

/// A service `flows` fuzzes in-process: the reference clinic ([`Clinic`]),
/// or a team's own (see `fuzz/README.md`, "Fuzz your own service").
pub trait Service {
    /// Forget every patient, appointment, call and recording, as if the
    /// service had just started. Called before every run of a flow (the
    /// fuzzed run and each run of a patient alone), so it must be complete:
    /// anything left over makes an input's outcome depend on earlier inputs.
    fn reset(&mut self);

    /// The router every request of a run is sent to (cloning a `Router` is
    /// cheap; it is called once per run).
    fn router(&self) -> Router;

    /// The media store erasure is checked in, if the harness can read it:
    /// its router, and how to list it and read an object (as a target
    /// file's `store = { list, ids, object }`). `None`: erasure is judged
    /// through the service's own routes only.
    fn store(&self) -> Option<(Router, StoreSpec)> {
        None
    }
}

/// The reference clinic in-process: the api router over an in-process media
/// router, in-memory SQLite, with `faults` planted. Built once; [`reset`]
/// deletes every row and clears the caches and the media store.
///
/// [`reset`]: Service::reset
pub struct Clinic {
    state: api::ApiState,
    api: Router,
    store: MediaState,
    media: Router,
    spec: StoreSpec,
}

impl Clinic {
    /// A clinic with `faults` planted.
    pub fn new(faults: &FaultSet) -> Clinic {
        let config = Config {
            faults: faults.clone(),
            db_path: None,
        };
        let store = MediaState::default();
        let media = media::router(store.clone());
        let state = api::ApiState::new(&config, MediaLink::InProcess(media.clone()))
            .expect("an in-memory database always opens and takes its schema");
        let spec = ServicesFile::clinic()
            .store()
            .map(|(_, spec)| spec.clone())
            .expect("the built-in target file names the media store");
        Clinic {
            api: api::router(state.clone()),
            state,
            store,
            media,
            spec,
        }
    }
}

impl Service for Clinic {
    fn reset(&mut self) {
        self.state.reset();
        self.store.clear();
    }

    fn router(&self) -> Router {
        self.api.clone()
    }

    fn store(&self) -> Option<(Router, StoreSpec)> {
        Some((self.media.clone(), self.spec.clone()))
    }
}
