//! Starting and stopping a clinic: the database file, and start errors.

use std::path::PathBuf;

use clinic::{Config, StartError};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::Harness;

/// A database path unique to this test run, removed (with SQLite's side
/// files) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        let name = format!(
            "clinic-test-{}-{:016x}.db",
            std::process::id(),
            rand::random::<u64>()
        );
        TempDb(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn start_on_file(db: &TempDb) -> Harness {
    let config = Config {
        faults: Default::default(),
        db_path: Some(db.0.clone()),
    };
    let clinic = clinic::start(config).await.expect("clinic starts");
    let base = clinic.api_url();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    Harness { clinic, base, http }
}

#[tokio::test]
async fn a_database_file_keeps_patients_across_restarts() {
    // Goal: with db_path set, the api service's data outlives the process.
    // Method: register and book, shut down, start again on the same file, and
    // use the old token.
    let db = TempDb::new();
    let first = start_on_file(&db).await;
    let alice = first.register("alice").await;
    let appointment = first.book(&alice).await;
    first.clinic.shutdown().await;

    let second = start_on_file(&db).await;
    assert_eq!(
        second.cancel(&alice, &appointment).await.status,
        StatusCode::NO_CONTENT
    );
    let booked = second
        .send_json(
            Method::POST,
            "/v1/appointments",
            Some(&alice.token),
            json!({ "slot": "s" }),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED);
    second.clinic.shutdown().await;
}

#[tokio::test]
async fn an_unopenable_database_is_a_start_error() {
    // Goal: a database that cannot be opened fails `start` with a typed error
    // naming the file, rather than a panic or a half-started clinic.
    let config = Config {
        faults: Default::default(),
        db_path: Some(PathBuf::from("/nonexistent-clinic-dir/clinic.db")),
    };
    let err = clinic::start(config).await.expect_err("cannot open");
    assert!(matches!(err, StartError::Database { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot open the database /nonexistent-clinic-dir/clinic.db"
    );
}
