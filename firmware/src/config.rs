//! The daemon's configuration: one serde struct, loaded from TOML, then validated.
//!
//! Parsing and validation are separate steps (ripgrep's low/high args): serde checks the
//! shape (unknown keys are errors, so a typo never silently falls back to a default), then
//! [`Config::validate`] checks the values and reports *every* problem with the key it
//! belongs to. The documented default file, `config/default.toml`, is compiled in and
//! printed by `flowgate config default`; a test keeps it equal to [`Config::default`].

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The documented default configuration, as printed by `flowgate config default`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Event types a webhook target may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "activeflow_created",
    "activeflow_updated",
    "activeflow_deleted",
    "flow_created",
    "flow_updated",
    "flow_deleted",
    "call_created",
    "call_updated",
    "message_created",
    "message_updated",
    "recording_created",
    "recording_updated",
    "recording_deleted",
    "number_updated",
    "modem_updated",
];

/// Tone zones known to the DSP tone table.
const TONE_ZONES: &[&str] = &[
    "us", "uk", "de", "fr", "nl", "dk", "se", "es", "it", "in", "au", "jp", "cn", "br", "za",
];

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The LAN API.
    pub api: ApiConfig,
    /// Where state lives.
    pub data: DataConfig,
    /// Which hardware.
    pub board: BoardConfig,
    /// Flow engine guards.
    pub engine: EngineConfig,
    /// Outgoing HTTP (`fetch`, `webhook_send`, webhooks).
    pub http: HttpConfig,
    /// SMS sending policy.
    pub sms: SmsConfig,
    /// Calls: ringing and routing.
    pub calls: CallsConfig,
    /// The routing table: which lines an outbound call tries (`[[routes]]`; empty = the
    /// built-in table, see `runtime::lines`).
    pub routes: Vec<crate::runtime::Route>,
    /// Audio, TTS and tones.
    pub media: MediaConfig,
    /// Logging.
    pub log: LogConfig,
    /// Event webhook targets.
    pub webhooks: Vec<WebhookTarget>,
}

/// `[api]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address, `ADDR:PORT`.
    pub listen: String,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Longest long-poll wait, seconds.
    pub long_poll_max_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 4 * 1024 * 1024,
            long_poll_max_secs: 60,
        }
    }
}

/// `[data]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Data directory.
    pub dir: PathBuf,
    /// sled cache, MiB.
    pub cache_mib: u64,
    /// Events kept in the log.
    pub event_retention: u64,
    /// The most the data directory may hold, MiB (database, recordings, caches).
    pub max_disk_mib: u64,
    /// Ended activeflows, calls, messages, recordings and events older than this many days
    /// are removed.
    pub retention_days: u64,
    /// Ended activeflows kept at most (oldest removed first).
    pub keep_activeflows: u64,
    /// Ended calls kept at most.
    pub keep_calls: u64,
    /// Settled SMS kept at most.
    pub keep_messages: u64,
    /// Ended recordings (and their files) kept at most.
    pub keep_recordings: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./flowgate-data"),
            cache_mib: 8,
            event_retention: 100_000,
            max_disk_mib: 1024,
            retention_days: 30,
            keep_activeflows: 20_000,
            keep_calls: 20_000,
            keep_messages: 50_000,
            keep_recordings: 2_000,
        }
    }
}

/// `[board]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoardConfig {
    /// Profile name (board/boards) or path to a profile TOML.
    pub profile: String,
}

impl Default for BoardConfig {
    fn default() -> Self {
        Self {
            profile: "simulated".into(),
        }
    }
}

/// `[engine]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Default time zone for `condition_datetime`.
    pub timezone: String,
    /// Lifetime action budget of one activeflow.
    pub max_executions: u64,
    /// Actions per engine run before yielding.
    pub max_iterations_per_run: u64,
    /// Longest on-complete chain.
    pub max_chain_depth: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            max_executions: 10_000,
            max_iterations_per_run: 1000,
            max_chain_depth: 4,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Request timeout, ms.
    pub timeout_ms: u64,
    /// Largest `fetch` response, bytes.
    pub max_response_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// `[sms]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// Attempts before a message is failed.
    pub send_attempts: u32,
    /// First retry delay, seconds (doubles per attempt).
    pub retry_base_secs: u64,
    /// Request delivery reports.
    pub delivery_reports: bool,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            send_attempts: 5,
            retry_base_secs: 5,
            delivery_reports: true,
        }
    }
}

/// `[calls]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// How long an outbound call (`call`, `connect`, `POST /calls`, a transfer) may ring
    /// before it is given up, seconds.
    pub ring_timeout_secs: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            ring_timeout_secs: 60,
        }
    }
}

/// `[media]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// TTS binary.
    pub tts_command: String,
    /// Default `talk` language.
    pub default_language: String,
    /// Prompt/audio cache cap, MiB.
    pub cache_mib: u64,
    /// Music-on-hold file; empty = generated.
    pub music_on_hold: String,
    /// Country tone set.
    pub tone_zone: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            tts_command: "espeak-ng".into(),
            default_language: "en-US".into(),
            cache_mib: 64,
            music_on_hold: String::new(),
            tone_zone: "us".into(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// EnvFilter directive.
    pub filter: String,
    /// `text`, `json` (both on stderr) or `journald` (the journal's native protocol,
    /// tracing fields as journal fields).
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: "text".into(),
        }
    }
}

/// One `[[webhooks]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// Where events are POSTed.
    pub url: String,
    /// Event types to send; empty = all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Sent as a bearer token when set.
    #[serde(default)]
    pub secret: Option<String>,
}

/// One problem found by [`Config::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    /// The dotted key, e.g. `api.listen` or `webhooks[1].url`.
    pub key: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message: names the key, line and column.
        message: String,
    },
    /// Values are out of range or inconsistent.
    #[error("invalid configuration:\n{}", Problems(.0))]
    Invalid(Vec<ConfigProblem>),
}

struct Problems<'a>(&'a [ConfigProblem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {}: {}", p.key, p.message)?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Self::parse(&text, path)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (shape only; call [`Config::validate`] after).
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })
    }

    /// The listen address (valid after [`Config::validate`]).
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.api.listen.parse().map_err(|_| {
            ConfigError::Invalid(vec![ConfigProblem {
                key: "api.listen".into(),
                message: format!("{:?} is not an ADDR:PORT socket address", self.api.listen),
            }])
        })
    }

    /// Checks every value; returns all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, message: String| {
            problems.push(ConfigProblem {
                key: key.to_owned(),
                message,
            })
        };

        if self.api.listen.parse::<SocketAddr>().is_err() {
            bad(
                "api.listen",
                format!(
                    "{:?} is not an ADDR:PORT socket address (e.g. 127.0.0.1:8080)",
                    self.api.listen
                ),
            );
        }
        if self.api.max_body_bytes < 1024 {
            bad("api.max_body_bytes", "must be at least 1024 bytes".into());
        }
        if !(1..=3600).contains(&self.api.long_poll_max_secs) {
            bad(
                "api.long_poll_max_secs",
                "must be between 1 and 3600 seconds".into(),
            );
        }
        if self.data.dir.as_os_str().is_empty() {
            bad("data.dir", "must not be empty".into());
        }
        if self.data.cache_mib == 0 {
            bad("data.cache_mib", "must be at least 1 MiB".into());
        }
        if self.data.event_retention < 100 {
            bad(
                "data.event_retention",
                "must keep at least 100 events".into(),
            );
        }
        if self.data.max_disk_mib < 64 {
            bad(
                "data.max_disk_mib",
                "must be at least 64 MiB (sled needs room to compact, and 16 MiB stay free)".into(),
            );
        }
        if !(1..=3650).contains(&self.data.retention_days) {
            bad(
                "data.retention_days",
                "must be between 1 and 3650 days".into(),
            );
        }
        for (key, value) in [
            ("data.keep_activeflows", self.data.keep_activeflows),
            ("data.keep_calls", self.data.keep_calls),
            ("data.keep_messages", self.data.keep_messages),
            ("data.keep_recordings", self.data.keep_recordings),
        ] {
            if value < 10 {
                bad(key, "must keep at least 10".into());
            }
        }
        if self.board.profile.trim().is_empty() {
            bad(
                "board.profile",
                "must name a board profile or a profile file".into(),
            );
        }
        if self.engine.timezone.parse::<chrono_tz::Tz>().is_err() {
            bad(
                "engine.timezone",
                format!(
                    "{:?} is not an IANA time zone name (e.g. Europe/Berlin)",
                    self.engine.timezone
                ),
            );
        }
        if self.engine.max_executions == 0 {
            bad("engine.max_executions", "must be at least 1".into());
        }
        if self.engine.max_iterations_per_run == 0 {
            bad("engine.max_iterations_per_run", "must be at least 1".into());
        }
        if self.engine.max_chain_depth > 32 {
            bad("engine.max_chain_depth", "must be at most 32".into());
        }
        if !(100..=300_000).contains(&self.http.timeout_ms) {
            bad(
                "http.timeout_ms",
                "must be between 100 and 300000 ms".into(),
            );
        }
        if self.http.max_response_bytes < 1024 {
            bad(
                "http.max_response_bytes",
                "must be at least 1024 bytes".into(),
            );
        }
        if !(1..=50).contains(&self.sms.send_attempts) {
            bad("sms.send_attempts", "must be between 1 and 50".into());
        }
        if !(1..=3600).contains(&self.sms.retry_base_secs) {
            bad(
                "sms.retry_base_secs",
                "must be between 1 and 3600 seconds".into(),
            );
        }
        if !(5..=600).contains(&self.calls.ring_timeout_secs) {
            bad(
                "calls.ring_timeout_secs",
                "must be between 5 and 600 seconds".into(),
            );
        }
        for (key, message) in crate::runtime::Routes::problems(&self.routes) {
            bad(&key, message);
        }
        if self.media.tts_command.trim().is_empty() {
            bad(
                "media.tts_command",
                "must name the TTS program (e.g. espeak-ng)".into(),
            );
        }
        if self.media.default_language.trim().is_empty() {
            bad(
                "media.default_language",
                "must be a BCP 47 tag such as en-US".into(),
            );
        }
        if !TONE_ZONES.contains(&self.media.tone_zone.as_str()) {
            bad(
                "media.tone_zone",
                format!(
                    "{:?} is not one of {}",
                    self.media.tone_zone,
                    TONE_ZONES.join(", ")
                ),
            );
        }
        if self
            .log
            .filter
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            bad(
                "log.filter",
                format!(
                    "{:?} is not a valid log filter (e.g. info,flowgate=debug)",
                    self.log.filter
                ),
            );
        }
        if !["text", "json", "journald"].contains(&self.log.format.as_str()) {
            bad(
                "log.format",
                format!(
                    "{:?} must be \"text\", \"json\" or \"journald\"",
                    self.log.format
                ),
            );
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            let ok_scheme = hook.url.starts_with("http://") || hook.url.starts_with("https://");
            if !ok_scheme || reqwest::Url::parse(&hook.url).is_err() {
                bad(
                    &format!("webhooks[{i}].url"),
                    format!("{:?} is not an http(s) URL", hook.url),
                );
            }
            for (j, kind) in hook.events.iter().enumerate() {
                if !EVENT_TYPES.contains(&kind.as_str()) {
                    bad(
                        &format!("webhooks[{i}].events[{j}]"),
                        format!("unknown event type {kind:?}"),
                    );
                }
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_default_is_the_default() {
        let parsed = Config::parse(DEFAULT_TOML, Path::new("default.toml")).unwrap();
        assert_eq!(parsed, Config::default());
        parsed.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = Config::parse("[api]\nlisten_addr = \"x\"\n", Path::new("c.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("listen_addr"), "{text}");
    }

    #[test]
    fn validation_reports_every_problem_with_its_key() {
        let text = r#"
            [api]
            listen = "nowhere"
            [engine]
            timezone = "Mars/Olympus"
            [media]
            tone_zone = "xx"
            [[webhooks]]
            url = "ftp://x"
            events = ["activeflow_updated", "bogus"]
        "#;
        let config = Config::parse(text, Path::new("c.toml")).unwrap();
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "api.listen",
                "engine.timezone",
                "media.tone_zone",
                "webhooks[0].url",
                "webhooks[0].events[1]"
            ]
        );
    }
}
