//! Layered configuration: built-in defaults, then a TOML file, then `IMS_*` environment
//! variables (`__` separates sections: `IMS_SERVER__LISTEN`), then command-line flags.
//! Every key is documented in `docs/configuration.md`.

use engine::billing::BillingSettings;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use inference::analyzer::{FaceSettings, InferenceSettings};
use media::fetch::FetchSettings;
use serde::{Deserialize, Serialize};
use server::console::ConsoleSettings;
use server::{HistorySettings, ServerSettings, TaskSettings};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the database and the master key file live.
    pub data_dir: PathBuf,
    /// The master key sealing API secrets, as 64 hex digits. Unset: the file
    /// `<data_dir>/master.key`, created on first start.
    pub master_key: Option<String>,
    pub storage: StorageSettings,
    pub server: ServerSettings,
    pub fetch: FetchSettings,
    pub inference: InferenceSettings,
    pub faces: FaceSettings,
    pub history: HistorySettings,
    pub tasks: TaskSettings,
    pub console: ConsoleSettings,
    pub billing: BillingSettings,
    pub log: LogSettings,
    pub bootstrap: BootstrapSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("data"),
            master_key: None,
            storage: StorageSettings::default(),
            server: ServerSettings::default(),
            fetch: FetchSettings::default(),
            inference: InferenceSettings::default(),
            faces: FaceSettings::default(),
            history: HistorySettings::default(),
            tasks: TaskSettings::default(),
            console: ConsoleSettings::default(),
            billing: BillingSettings::default(),
            log: LogSettings::default(),
            bootstrap: BootstrapSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Unset: SQLite, `ims.db` in `data_dir`. `postgres://user:password@host:port/database`
    /// (or `postgresql://`, with libpq's parameters such as `?host=/run/postgresql`): the
    /// PostgreSQL database every node of a cluster shares. Its password is never printed.
    pub url: Option<String>,
}

/// A database URL with its password (if any) hidden, for messages and `ims config`.
pub fn redacted_url(url: &str) -> String {
    let mut shown = url.to_string();
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if let Some((user_info, host)) = authority.rsplit_once('@') {
            if let Some((user, _)) = user_info.split_once(':') {
                shown = format!("{scheme}://{user}:<redacted>@{host}{}", &rest[authority.len()..]);
            }
        }
    }
    let mut parts: Vec<String> = shown.split('&').map(String::from).collect();
    for part in &mut parts {
        if let Some(at) = part.find("password=") {
            part.replace_range(at + "password=".len().., "<redacted>");
        }
    }
    parts.join("&")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A `tracing` filter, e.g. `info` or `info,server=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { level: "info".into(), format: LogFormat::Text }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapSettings {
    /// On a first start with no account, create a main account of this name with one key.
    pub account_name: String,
    /// Print that account's SecretId and SecretKey on standard output at start (not to the
    /// log). Turn off in production.
    pub print_credentials: bool,
}

impl Default for BootstrapSettings {
    fn default() -> Self {
        BootstrapSettings { account_name: "default".into(), print_credentials: true }
    }
}

/// The keys an `IMS_*` variable may set (`data_dir`, `server__listen`): the settings' own, taken
/// from their defaults so that a new section is settable at once; other `IMS_*` variables
/// (`IMS_TEST_PYTHON`, `IMS_CACHE_DIR`) are not configuration.
fn settable_from_environment(key: &str) -> bool {
    static TOP_LEVEL: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> = std::sync::OnceLock::new();
    let top_level = TOP_LEVEL.get_or_init(|| match serde_json::to_value(Settings::default()) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    });
    match key.split_once("__") {
        Some((section, _)) => top_level.get(section).is_some_and(serde_json::Value::is_object),
        None => top_level.get(key).is_some_and(|v| !v.is_object()),
    }
}

impl Settings {
    /// Defaults, then the file (if any), then the environment, then `overrides` (the flags).
    pub fn load(file: Option<&Path>, overrides: Figment) -> Result<Settings, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "configuration file {} does not exist",
                    file.display()
                ))));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let env = Env::prefixed("IMS_")
            .filter(|key| settable_from_environment(&key.as_str().to_ascii_lowercase()))
            .split("__");
        figment.merge(env).merge(overrides).extract().map_err(Box::new)
    }

    /// The configuration as TOML, with the master key hidden.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.master_key.is_some() {
            shown.master_key = Some("<redacted>".into());
        }
        shown.storage.url = shown.storage.url.as_deref().map(redacted_url);
        toml::to_string_pretty(&shown).expect("settings serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ims.toml");
        std::fs::write(&file, "data_dir = \"/from/file\"\n[server]\nsync_per_second = 7\nasync_per_second = 3\n")
            .unwrap();
        let overrides = Figment::new().merge(Serialized::default("server.async_per_second", 9));
        let s = Settings::load(Some(&file), overrides).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/from/file"));
        assert_eq!(s.server.sync_per_second, 7);
        assert_eq!(s.server.async_per_second, 9, "flags win over the file");
        assert_eq!(s.server.listen.port(), 8080, "defaults fill the rest");
    }

    #[test]
    fn every_section_and_top_level_key_is_settable_from_the_environment() {
        for key in
            ["data_dir", "master_key", "server__listen", "console__enabled", "faces__max_per_image", "log__level"]
        {
            assert!(settable_from_environment(key), "{key}");
        }
        for key in ["test_python", "cache_dir", "server", "nowhere__listen"] {
            assert!(!settable_from_environment(key), "{key}");
        }
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ims.toml");
        std::fs::write(&file, "[server]\nlisten_port = 1\n").unwrap();
        assert!(Settings::load(Some(&file), Figment::new()).is_err());
        assert!(Settings::load(Some(&dir.path().join("absent.toml")), Figment::new()).is_err());
    }

    #[test]
    fn database_passwords_are_redacted() {
        for (url, shown) in [
            ("postgres://ims:s3cret@db:5432/ims", "postgres://ims:<redacted>@db:5432/ims"),
            (
                "postgresql://ims@db/ims?password=s3cret&sslmode=disable",
                "postgresql://ims@db/ims?password=<redacted>&sslmode=disable",
            ),
            ("postgresql:///ims?host=/run/postgresql", "postgresql:///ims?host=/run/postgresql"),
        ] {
            assert_eq!(redacted_url(url), shown);
            let s = Settings { storage: StorageSettings { url: Some(url.into()) }, ..Settings::default() };
            assert!(!s.to_redacted_toml().contains("s3cret"));
        }
    }

    #[test]
    fn master_key_is_redacted() {
        let s = Settings { master_key: Some("00".repeat(32)), ..Settings::default() };
        assert!(!s.to_redacted_toml().contains(&"00".repeat(32)));
    }
}
