//! Target files: containerised services described in TOML (`--target FILE.toml`).
//!
//! A file names the services to start, in order, on one private network, and
//! which of them is the API the driver talks to. `ci/targets/clinic.toml`, the
//! reference clinic as two containers, is built into the binary and is what
//! `--target containers` means.
//!
//! ```toml
//! api = "api"                      # the service the driver talks to
//!
//! [[services]]
//! name = "media"
//! image = "chaperone-clinic"
//! build = "clinic"                 # or `tag = "1.2"` for an image you built
//! command = ["media", "--listen", "0.0.0.0:8081"]
//! port = 8081                      # the port it listens on inside
//! health = "/healthz"              # GET answers 200 once ready
//! alias = "media"                  # how later services reach it
//! ```
//!
//! Optional per service: `env` (a table of strings), `faults_env` (the
//! variable `--fault` names are passed in, comma-separated), and `store`
//! for the one service that keeps recording bytes and can list them
//! ([`StoreSpec`]: erasure is then checked in the store itself).
//!
//! **Invariants:** a parsed [`ServicesFile`] is valid: names and aliases are
//! unique hostnames, exactly one of `tag`/`build` is set, `api` names a
//! service. Every error is one line naming the file and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

pub use crate::driver::StoreSpec;

/// `ci/targets/clinic.toml`, the built-in meaning of `--target containers`.
pub const CLINIC_TOML: &str = include_str!("../../ci/targets/clinic.toml");

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An image already present in the local engine under this tag; never pulled.
    Tag(String),
    /// The clinic image, built locally from the clinic binary on demand and
    /// tagged by the binary's content hash.
    BuildClinic,
}

/// One containerised service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its name, unique in the file (also in container names).
    pub name: String,
    /// The image repository, without tag.
    pub image: String,
    /// The tag, or how to build it.
    pub source: ImageSource,
    /// Arguments given to the image's entrypoint.
    pub command: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// The variable that carries `--fault` names, if the service takes faults.
    pub faults_env: Option<String>,
    /// The TCP port it listens on inside the container.
    pub port: u16,
    /// The path that answers 200 when the service is ready.
    pub health: String,
    /// The hostname later services reach it by on the private network.
    pub alias: String,
    /// Where it keeps recording bytes, if it is a store the harness may list.
    pub store: Option<StoreSpec>,
}

/// A validated target file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicesFile {
    /// How the user named it: `containers` or the file's path.
    pub source: String,
    /// The services, in start order.
    pub services: Vec<Service>,
    /// Index into `services` of the API the driver talks to.
    pub api: usize,
    /// The binding file to drive the API with (`binding = "bindings/x.toml"`,
    /// relative to the target file); `--binding` overrides it.
    pub binding: Option<std::path::PathBuf>,
}

/// A target file that cannot be used: one line, naming file and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {problem}")]
pub struct ServicesError {
    /// The file as named.
    pub file: String,
    /// The offending field (`services[1].port`), or `file` for the whole.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    api: String,
    binding: Option<String>,
    services: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    image: String,
    tag: Option<String>,
    build: Option<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    faults_env: Option<String>,
    port: i64,
    health: String,
    alias: String,
    store: Option<RawStore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    list: String,
    ids: String,
    object: String,
    grace_ms: Option<u64>,
}

/// A hostname label: what Docker accepts as a name and a resolver as a host.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl ServicesFile {
    /// The service that is a store, with its description.
    pub fn store(&self) -> Option<(&Service, &StoreSpec)> {
        self.services
            .iter()
            .find_map(|s| s.store.as_ref().map(|store| (s, store)))
    }

    /// The built-in reference clinic (`--target containers`).
    pub fn clinic() -> ServicesFile {
        // The built-in file is tested to parse; failing here is a build defect.
        ServicesFile::parse("containers", CLINIC_TOML).expect("ci/targets/clinic.toml is valid")
    }

    /// Read and validate a target file.
    pub fn read(path: &Path) -> Result<ServicesFile, ServicesError> {
        let file = path.display().to_string();
        // A target file is a few hundred bytes; the bound keeps a hostile
        // path (a device, a huge file) from being read whole.
        let bytes =
            crate::scenario::read_bounded(path, 1024 * 1024).map_err(|e| ServicesError {
                file: file.clone(),
                field: "file".into(),
                problem: format!("cannot read: {e}"),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| ServicesError {
            file: file.clone(),
            field: "file".into(),
            problem: "cannot read: not UTF-8 text".into(),
        })?;
        ServicesFile::parse(&file, &text)
    }

    /// Parse and validate the text of a target file named `file`.
    pub fn parse(file: &str, text: &str) -> Result<ServicesFile, ServicesError> {
        let error = |field: String, problem: String| ServicesError {
            file: file.to_string(),
            field,
            problem,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let field = match line {
                Some(line) => format!("line {line}"),
                None => "file".to_string(),
            };
            // toml's message names the field (`missing field `port``); keep one line.
            error(field, e.message().replace('\n', " ").trim().to_string())
        })?;
        if raw.services.is_empty() {
            return Err(error(
                "services".into(),
                "at least one [[services]] entry is needed".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut aliases = BTreeSet::new();
        let mut services = Vec::new();
        for (i, s) in raw.services.into_iter().enumerate() {
            let at = |f: &str| format!("services[{i}].{f}");
            if !is_label(&s.name) {
                return Err(error(
                    at("name"),
                    format!(
                        "`{}` is not a lowercase hostname label (a-z, 0-9, -)",
                        s.name
                    ),
                ));
            }
            if !names.insert(s.name.clone()) {
                return Err(error(at("name"), format!("`{}` is used twice", s.name)));
            }
            if s.image.is_empty()
                || s.image.contains(':') && !s.image.contains('/')
                || s.image.chars().any(char::is_whitespace)
            {
                return Err(error(
                    at("image"),
                    format!(
                        "`{}` is not an image name without tag (put the tag in `tag`)",
                        s.image
                    ),
                ));
            }
            let source = match (s.tag, s.build) {
                (Some(tag), None) if !tag.is_empty() && !tag.contains(char::is_whitespace) => {
                    ImageSource::Tag(tag)
                }
                (Some(tag), None) => {
                    return Err(error(at("tag"), format!("`{tag}` is not a tag")));
                }
                (None, Some(build)) if build == "clinic" => ImageSource::BuildClinic,
                (None, Some(build)) => {
                    return Err(error(
                        at("build"),
                        format!("`{build}` cannot be built; the only buildable image is `clinic`"),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(error(at("tag"), "give `tag` or `build`, not both".into()));
                }
                (None, None) => {
                    return Err(error(
                        at("tag"),
                        "missing: give `tag` (an image present locally) or `build = \"clinic\"`"
                            .into(),
                    ));
                }
            };
            let port = u16::try_from(s.port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    error(at("port"), format!("{} is not a port (1..=65535)", s.port))
                })?;
            if !s.health.starts_with('/') || s.health.chars().any(char::is_whitespace) {
                return Err(error(
                    at("health"),
                    format!("`{}` is not a path starting with `/`", s.health),
                ));
            }
            if !is_label(&s.alias) {
                return Err(error(
                    at("alias"),
                    format!(
                        "`{}` is not a lowercase hostname label (a-z, 0-9, -)",
                        s.alias
                    ),
                ));
            }
            if !aliases.insert(s.alias.clone()) {
                return Err(error(at("alias"), format!("`{}` is used twice", s.alias)));
            }
            for key in s.env.keys() {
                if !is_env_name(key) {
                    return Err(error(
                        format!("services[{i}].env.{key}"),
                        "not an environment variable name".into(),
                    ));
                }
            }
            if let Some(name) = &s.faults_env
                && !is_env_name(name)
            {
                return Err(error(
                    at("faults_env"),
                    format!("`{name}` is not an environment variable name"),
                ));
            }
            let store = match s.store {
                None => None,
                Some(store) => {
                    let path_ok =
                        |p: &str| p.starts_with('/') && !p.chars().any(char::is_whitespace);
                    if !path_ok(&store.list) {
                        return Err(error(
                            at("store.list"),
                            format!("`{}` is not a path starting with `/`", store.list),
                        ));
                    }
                    if !path_ok(&store.object) || !store.object.contains("{id}") {
                        return Err(error(
                            at("store.object"),
                            format!(
                                "`{}` is not a path starting with `/` with `{{id}}` where the object's id goes",
                                store.object
                            ),
                        ));
                    }
                    if !(store.ids.is_empty() || store.ids.starts_with('/')) {
                        return Err(error(
                            at("store.ids"),
                            format!(
                                "`{}` is not a JSON pointer (`/ids`, or empty for a bare array)",
                                store.ids
                            ),
                        ));
                    }
                    if services.iter().any(|s: &Service| s.store.is_some()) {
                        return Err(error(
                            at("store"),
                            "only one service may be the store".into(),
                        ));
                    }
                    let grace_ms = store
                        .grace_ms
                        .unwrap_or(crate::driver::store::STORE_GRACE_DEFAULT_MS);
                    if grace_ms > 60_000 {
                        return Err(error(
                            at("store.grace_ms"),
                            format!("{grace_ms} is over a minute (60000)"),
                        ));
                    }
                    Some(StoreSpec {
                        list: store.list,
                        ids: store.ids,
                        object: store.object,
                        grace_ms,
                    })
                }
            };
            services.push(Service {
                name: s.name,
                image: s.image,
                source,
                command: s.command,
                env: s.env,
                faults_env: s.faults_env,
                port,
                health: s.health,
                alias: s.alias,
                store,
            });
        }
        let api = services
            .iter()
            .position(|s| s.name == raw.api)
            .ok_or_else(|| {
                error(
                    "api".into(),
                    format!("`{}` names no service in [[services]]", raw.api),
                )
            })?;
        let binding = raw.binding.map(|b| {
            let relative = std::path::PathBuf::from(&b);
            match std::path::Path::new(file).parent() {
                Some(dir) if relative.is_relative() && file != "containers" => dir.join(relative),
                _ => relative,
            }
        });
        Ok(ServicesFile {
            source: file.to_string(),
            services,
            api,
            binding,
        })
    }

    /// Whether any service takes `--fault` names.
    pub fn takes_faults(&self) -> bool {
        self.services.iter().any(|s| s.faults_env.is_some())
    }
}

#[cfg(test)]
mod tests {
    //! Goal: the built-in file parses; every validation error names its field on one line.

    use super::*;

    const GOOD: &str = r#"
api = "web"
[[services]]
name = "web"
image = "example/web"
tag = "1.0"
port = 80
health = "/health"
alias = "web"
"#;

    fn err(text: &str) -> String {
        let e = ServicesFile::parse("t.toml", text).expect_err("invalid");
        let s = e.to_string();
        assert!(!s.contains('\n'), "one line: {s}");
        s
    }

    #[test]
    fn built_in_clinic_file_parses() {
        let file = ServicesFile::clinic();
        assert_eq!(file.services.len(), 2);
        assert_eq!(file.services[file.api].name, "api");
        assert!(file.takes_faults());
        assert!(
            file.services
                .iter()
                .all(|s| s.source == ImageSource::BuildClinic)
        );
        // The media service is the store erasure is checked in.
        let (service, store) = file.store().expect("a store");
        assert_eq!(service.name, "media");
        assert_eq!(store.object, "/media/{id}");
    }

    #[test]
    fn a_minimal_file_parses() {
        let file = ServicesFile::parse("t.toml", GOOD).expect("valid");
        assert_eq!(file.services[0].source, ImageSource::Tag("1.0".into()));
        assert!(!file.takes_faults());
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("port = 80", "port = 70000", "services[0].port"),
            ("port = 80", "", "missing field `port`"),
            (
                "health = \"/health\"",
                "health = \"health\"",
                "services[0].health",
            ),
            ("alias = \"web\"", "alias = \"Web_1\"", "services[0].alias"),
            ("name = \"web\"", "name = \"\"", "services[0].name"),
            ("api = \"web\"", "api = \"nope\"", "t.toml: api:"),
            ("tag = \"1.0\"", "", "services[0].tag"),
            (
                "tag = \"1.0\"",
                "tag = \"1\"\nbuild = \"clinic\"",
                "services[0].tag",
            ),
            ("tag = \"1.0\"", "build = \"nginx\"", "services[0].build"),
            (
                "image = \"example/web\"",
                "image = \"web:1\"",
                "services[0].image",
            ),
            (
                "port = 80",
                "port = 80\nenv = { \"A-B\" = \"x\" }",
                "services[0].env.A-B",
            ),
            (
                "port = 80",
                "port = 80\nfaults_env = \"1X\"",
                "services[0].faults_env",
            ),
            (
                "port = 80",
                "port = 80\nimage_tag = \"x\"",
                "unknown field `image_tag`",
            ),
            (
                "port = 80",
                "port = 80\nstore = { list = \"media\", ids = \"/ids\", object = \"/m/{id}\" }",
                "services[0].store.list",
            ),
            (
                "port = 80",
                "port = 80\nstore = { list = \"/m\", ids = \"/ids\", object = \"/m/x\" }",
                "services[0].store.object",
            ),
            (
                "port = 80",
                "port = 80\nstore = { list = \"/m\", ids = \"ids\", object = \"/m/{id}\" }",
                "services[0].store.ids",
            ),
            (
                "port = 80",
                "port = 80\nstore = { list = \"/m\", ids = \"/ids\" }",
                "missing field `object`",
            ),
            (
                "port = 80",
                "port = 80\nstore = { list = \"/m\", ids = \"/ids\", object = \"/m/{id}\", grace_ms = 3600000 }",
                "services[0].store.grace_ms",
            ),
            (
                "port = 80",
                "port = 80\nstore = { list = \"/m\", ids = \"/ids\", object = \"/m/{id}\", grace_ms = -1 }",
                "line",
            ),
        ];
        for (from, to, expected) in cases {
            let text = GOOD.replacen(from, to, 1);
            let message = err(&text);
            assert!(
                message.contains(expected),
                "{from} -> {to}: `{message}` lacks `{expected}`"
            );
        }
        assert!(err("api = \"x\"\nservices = []").contains("services:"));
    }
}
