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
    "transcribe_created",
    "transcribe_done",
    "transcribe_failed",
    "number_updated",
    "modem_updated",
    "sip_updated",
    "line_updated",
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
    /// Analog ports: the FXS dial plan, FXO answering, per-port settings.
    pub analog: AnalogConfig,
    /// Audio, TTS and tones.
    pub media: MediaConfig,
    /// The SIP user agent: trunks, the registrar, RTP.
    pub sip: SipSection,
    /// Logging.
    pub log: LogConfig,
    /// The SMTP relay of `email_send`.
    pub email: crate::runtime::email::EmailConfig,
    /// The speech-to-text engine of the `transcribe_*` actions.
    pub transcribe: crate::runtime::transcribe::TranscribeConfig,
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
    /// A request's whole head (request line and headers) must arrive within this many
    /// milliseconds of the server waiting for it; also how long an idle kept-alive
    /// connection stays open.
    pub header_read_timeout_ms: u64,
    /// The longest pause inside a request body, milliseconds.
    pub idle_timeout_ms: u64,
    /// Open API connections at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 4 * 1024 * 1024,
            long_poll_max_secs: 60,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            max_connections: 64,
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

/// `[analog]`: what the gateway does with the board's analog ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalogConfig {
    /// Extension numbers a phone on an FXS port can dial besides the ports' own (numbers
    /// bound to flows): dialling one routes at once.
    pub extensions: Vec<String>,
    /// First digit that selects an outside line; `""` for none.
    pub outside_prefix: String,
    /// Digit that ends dialling at once; `""` for none.
    pub terminator: String,
    /// Route what was dialled after this long without a further digit, ms.
    pub interdigit_timeout_ms: u32,
    /// Reorder tone when no digit comes this long after the dial tone, ms.
    pub first_digit_timeout_ms: u32,
    /// FXS: the shortest on-hook break that is a hook flash, ms (shorter breaks up to
    /// 120 ms are dial pulses; between those and this, nothing).
    pub flash_min_ms: u16,
    /// FXS: the longest on-hook break that is a hook flash, ms; longer is a hang-up, so it
    /// is also how long a hang-up takes to be noticed.
    pub flash_max_ms: u16,
    /// FXO ports answer by themselves at the end of this ring; 0 = only the flow answers.
    pub answer_after_rings: u8,
    /// Per-port settings, by port id of the board profile.
    pub ports: Vec<AnalogPortConfig>,
}

impl Default for AnalogConfig {
    fn default() -> Self {
        Self {
            extensions: Vec::new(),
            outside_prefix: "0".into(),
            terminator: "#".into(),
            interdigit_timeout_ms: 4000,
            first_digit_timeout_ms: 15_000,
            flash_min_ms: 100,
            flash_max_ms: 800,
            answer_after_rings: 0,
            ports: Vec::new(),
        }
    }
}

/// One `[[analog.ports]]` entry: overrides of one port of the board profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalogPortConfig {
    /// The port id in the board profile (`fxs0`).
    pub id: String,
    /// FXS: the port's own extension (the caller of its calls, and how it is rung).
    #[serde(default)]
    pub extension: Option<String>,
    /// The country (line impedance, ringing, tones, caller ID); the profile's otherwise.
    #[serde(default)]
    pub country: Option<String>,
    /// FXO: the exchange line's own number (the callee of its incoming calls).
    #[serde(default)]
    pub number: Option<String>,
    /// FXO: answer at the end of this ring (0 = only the flow answers); `answer_after_rings`
    /// otherwise.
    #[serde(default)]
    pub answer_after_rings: Option<u8>,
}

/// Problems of `[analog]`, as `(key, message)`.
fn analog_problems(a: &AnalogConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_digit())
    };
    for (i, e) in a.extensions.iter().enumerate() {
        if !digits(e, 8) {
            out.push((
                format!("analog.extensions[{i}]"),
                format!("{e:?} must be 1-8 digits"),
            ));
        }
    }
    if a.extensions.len() > 24 {
        out.push(("analog.extensions".into(), "at most 24 extensions".into()));
    }
    let one_key = |s: &str| {
        s.is_empty() || (s.chars().count() == 1 && s.chars().all(|c| "0123456789*#".contains(c)))
    };
    if !one_key(&a.outside_prefix) {
        out.push((
            "analog.outside_prefix".into(),
            "must be one digit, * or #, or \"\"".into(),
        ));
    }
    if !one_key(&a.terminator) {
        out.push((
            "analog.terminator".into(),
            "must be one digit, * or #, or \"\"".into(),
        ));
    }
    if !a.outside_prefix.is_empty() && a.outside_prefix == a.terminator {
        out.push((
            "analog.terminator".into(),
            "must differ from outside_prefix".into(),
        ));
    }
    if !(1000..=30_000).contains(&a.interdigit_timeout_ms) {
        out.push((
            "analog.interdigit_timeout_ms".into(),
            "must be between 1000 and 30000 ms".into(),
        ));
    }
    if !(2000..=120_000).contains(&a.first_digit_timeout_ms) {
        out.push((
            "analog.first_digit_timeout_ms".into(),
            "must be between 2000 and 120000 ms".into(),
        ));
    }
    if !(50..=1000).contains(&a.flash_min_ms) {
        out.push((
            "analog.flash_min_ms".into(),
            "must be between 50 and 1000 ms".into(),
        ));
    }
    if !(200..=2000).contains(&a.flash_max_ms) || a.flash_max_ms <= a.flash_min_ms {
        out.push((
            "analog.flash_max_ms".into(),
            "must be between 200 and 2000 ms and above flash_min_ms".into(),
        ));
    }
    if a.answer_after_rings > 20 {
        out.push(("analog.answer_after_rings".into(), "must be 0-20".into()));
    }
    for (i, p) in a.ports.iter().enumerate() {
        let k = |f: &str| format!("analog.ports[{i}].{f}");
        if p.id.trim().is_empty() {
            out.push((k("id"), "must name a port of the board profile".into()));
        }
        if a.ports[..i].iter().any(|q| q.id == p.id) {
            out.push((k("id"), "duplicate port id".into()));
        }
        if let Some(e) = &p.extension
            && !digits(e, 8)
        {
            out.push((k("extension"), format!("{e:?} must be 1-8 digits")));
        }
        if let Some(c) = &p.country
            && flowgate_analog::country::country(c).is_none()
        {
            out.push((k("country"), format!("unknown country {c:?}")));
        }
        if let Some(n) = &p.number
            && !n.chars().all(|c| c.is_ascii_digit() || "+ -".contains(c))
        {
            out.push((k("number"), format!("{n:?} is not a phone number")));
        }
        if p.answer_after_rings.is_some_and(|r| r > 20) {
            out.push((k("answer_after_rings"), "must be 0-20".into()));
        }
    }
    out
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

/// `[sip]`: the SIP user agent — one line (`sip`) that places and takes calls to and from
/// trunks (a PBX, a provider), IP phones registered to its registrar, and `sip:` addresses.
///
/// The default trusts `127.0.0.1` as a trunk (`[[sip.trunks]] name = "local"`), so a SIP tool
/// on the gateway itself can call flows without credentials; a config that lists its own
/// `[[sip.trunks]]` replaces it. Nothing else is trusted: other sources are challenged
/// (extensions) or refused, and no unauthenticated call ever reaches a modem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipSection {
    /// Run the SIP user agent.
    pub enabled: bool,
    /// Address the UDP and TCP listeners bind (`ADDR:PORT`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// Transports to listen on: `udp`, `tcp`.
    pub transports: Vec<flowgate_sip::transaction::Transport>,
    /// Address written into Via/Contact/SDP when it differs from `listen`'s (wildcard
    /// binds, NAT).
    pub public_ip: Option<std::net::IpAddr>,
    /// Realm of the digest challenges the registrar and the gateway send.
    pub realm: String,
    /// A registrar extension created for trying things out: its password is generated on
    /// first start, kept in `<data>/sip-demo-password` and printed once. `""` = none.
    pub demo_extension: String,
    /// Trunks: `name`, `proxy` (`IP:PORT` of the registrar/PBX), `domain`, `transport`,
    /// `username`/`password` + `register` (credentials) or `trusted_sources` (CIDRs of an
    /// IP-authenticated peer), `expires_secs`, `qualify`, `max_calls` (calls at once, 0 = no limit).
    pub trunks: Vec<flowgate_sip::config::TrunkConfig>,
    /// The trunk that numbers the routing table sends to the `sip` line go out through;
    /// `""`: the line takes only `sip:` addresses and extensions.
    pub number_trunk: String,
    /// Extensions of the registrar: `user`, `password` (8+ characters), `display_name`.
    pub extensions: Vec<flowgate_sip::config::ExtensionConfig>,
    /// Who may talk SIP to the gateway (`allow`/`deny` CIDRs), per-source rate limit
    /// (`rate_per_sec`, `rate_burst`), bans after failed authentications
    /// (`ban_after_failures`, `ban_secs`), and whether unknown sources get a challenge or a
    /// flat 403 (`challenge_unknown`).
    pub security: flowgate_sip::config::SecurityConfig,
    /// RTP: `port_min`/`port_max` (the media port range), `codecs` (`PCMU`, `PCMA`),
    /// `telephone_event_pt`, `jitter_min_ms`/`jitter_max_ms`.
    pub rtp: flowgate_sip::config::RtpConfig,
}

impl Default for SipSection {
    fn default() -> Self {
        let ua = flowgate_sip::config::SipConfig::default();
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            transports: ua.transports,
            public_ip: None,
            realm: ua.realm,
            demo_extension: "100".into(),
            trunks: vec![flowgate_sip::config::TrunkConfig {
                trusted_sources: vec!["127.0.0.1/32".into()],
                ..flowgate_sip::config::TrunkConfig::new(
                    "local",
                    SocketAddr::from(([127, 0, 0, 1], 5060)),
                )
            }],
            number_trunk: String::new(),
            extensions: Vec::new(),
            security: ua.security,
            rtp: ua.rtp,
        }
    }
}

impl SipSection {
    /// The user agent's configuration: this section, the demo extension (with its
    /// password, when there is one) and the gateway's ring timeout.
    pub fn user_agent(
        &self,
        demo_password: Option<&str>,
        ring_timeout_secs: u64,
    ) -> flowgate_sip::config::SipConfig {
        let mut extensions = self.extensions.clone();
        if let Some(password) = demo_password
            && !self.demo_extension.is_empty()
        {
            extensions.push(flowgate_sip::config::ExtensionConfig {
                user: self.demo_extension.clone(),
                password: password.to_owned(),
                display_name: "Demo".into(),
            });
        }
        flowgate_sip::config::SipConfig {
            listen: self.listen,
            transports: self.transports.clone(),
            public_ip: self.public_ip,
            realm: self.realm.clone(),
            trunks: self.trunks.clone(),
            extensions,
            security: self.security.clone(),
            rtp: self.rtp.clone(),
            ring_timeout_secs,
            ..flowgate_sip::config::SipConfig::default()
        }
    }

    /// Problems, as `(key, message)`.
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !self.enabled {
            return out;
        }
        // A stand-in password: the real one is generated at start and always valid.
        let ua = self.user_agent(Some("demo-password"), 60);
        if let Err(e) = ua.validate() {
            out.push((format!("sip.{}", e.field), e.problem));
        }
        if !self.number_trunk.is_empty() && !self.trunks.iter().any(|t| t.name == self.number_trunk)
        {
            out.push((
                "sip.number_trunk".into(),
                format!(
                    "{:?} is not the name of a sip.trunks entry",
                    self.number_trunk
                ),
            ));
        }
        if self
            .extensions
            .iter()
            .any(|e| e.user == self.demo_extension)
        {
            out.push((
                "sip.demo_extension".into(),
                format!(
                    "{:?} is also in sip.extensions: name another demo extension or \"\"",
                    self.demo_extension
                ),
            ));
        }
        out
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Log filter: `target=level` directives and a bare default level, comma-separated
    /// ([`parse_log_filter`]).
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
        if !(100..=600_000).contains(&self.api.header_read_timeout_ms) {
            bad(
                "api.header_read_timeout_ms",
                "must be between 100 and 600000 milliseconds".into(),
            );
        }
        if !(100..=600_000).contains(&self.api.idle_timeout_ms) {
            bad(
                "api.idle_timeout_ms",
                "must be between 100 and 600000 milliseconds".into(),
            );
        }
        if !(1..=10_000).contains(&self.api.max_connections) {
            bad("api.max_connections", "must be between 1 and 10000".into());
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
        // From the image's tzdata (`flowgate_flows::tz`, installed by main before the config
        // is validated); UTC needs none.
        if let Err(e) = flowgate_flows::tz::lookup(&self.engine.timezone) {
            bad("engine.timezone", format!("{e} (e.g. Europe/Berlin)"));
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
        for (key, message) in self.sip.problems() {
            bad(&key, message);
        }
        for (key, message) in analog_problems(&self.analog) {
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
        if let Err(e) = parse_log_filter(&self.log.filter) {
            bad(
                "log.filter",
                format!(
                    "{:?} is not a valid log filter (e.g. info,flowgate=debug): {e}",
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
        for (key, message) in self.email.problems() {
            bad(&key, message);
        }
        for (key, message) in self.transcribe.problems() {
            bad(&key, message);
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

/// Parses a log filter (`[log] filter`, `RUST_LOG`): comma-separated `target=level`
/// directives (`flowgate::sip=debug`; a target matches itself and every module below it,
/// the longest match wins) and at most one bare level for everything else
/// (`info,flowgate=debug,sled=warn`; `off` silences). An empty filter logs errors only.
///
/// The daemon filters by target only (tracing-subscriber's `Targets`): `EnvFilter`'s span
/// and field directives (`target[span{field=value}]=level`) need a regex engine that was
/// ~0.25 MB of the board's binary, so they are refused here with a clear message instead
/// of being silently ignored.
pub fn parse_log_filter(text: &str) -> Result<tracing_subscriber::filter::Targets, String> {
    let directives: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Ok(tracing_subscriber::filter::Targets::new()
            .with_default(tracing::level_filters::LevelFilter::ERROR));
    }
    if let Some(d) = directives.iter().find(|d| d.contains(['[', '{'])) {
        return Err(format!(
            "{d:?}: span and field filters are not supported, only target=level"
        ));
    }
    directives.join(",").parse().map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filters_are_target_directives() {
        use tracing::Level;
        let f = parse_log_filter("info, flowgate::sip=debug ,sled=warn").unwrap();
        assert!(f.would_enable("flowgate::sip::dialog", &Level::DEBUG));
        assert!(!f.would_enable("flowgate::sip", &Level::TRACE));
        assert!(!f.would_enable("sled::pagecache", &Level::INFO));
        assert!(f.would_enable("hyper", &Level::INFO));
        assert!(!f.would_enable("hyper", &Level::DEBUG));
        let off = parse_log_filter("off").unwrap();
        assert!(!off.would_enable("flowgate", &Level::ERROR));
        let empty = parse_log_filter("").unwrap();
        assert!(empty.would_enable("flowgate", &Level::ERROR));
        assert!(!empty.would_enable("flowgate", &Level::WARN));
        // EnvFilter's span and field directives are refused, not ignored.
        let e = parse_log_filter("info,flowgate[call{id=1}]=debug").unwrap_err();
        assert!(e.contains("span and field filters"), "{e}");
        assert!(parse_log_filter("flowgate=loud").is_err());
        let mut config = Config::default();
        config.log.filter = "flowgate[span]=debug".into();
        assert!(config.validate().is_err());
    }

    #[test]
    fn documented_default_is_the_default() {
        let parsed = Config::parse(DEFAULT_TOML, Path::new("default.toml")).unwrap();
        assert_eq!(parsed, Config::default());
        parsed.validate().unwrap();
    }

    #[test]
    fn sip_problems_name_their_keys_and_custom_trunks_replace_the_trusted_local_one() {
        let text = r#"
            [sip]
            number_trunk = "nope"
            extensions = [{ user = "100", password = "long-enough" }]
            [[sip.trunks]]
            name = "pbx"
            proxy = "192.0.2.1:5060"
            trusted_sources = ["10.0.0.0/33"]
        "#;
        let config = Config::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(
            config.sip.trunks.len(),
            1,
            "the local trunk is the default only"
        );
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sip.trunks[0].trusted_sources",
                "sip.number_trunk",
                "sip.demo_extension"
            ]
        );
        let off = Config::parse(
            "[sip]\nenabled = false\nnumber_trunk = \"x\"\n",
            Path::new("c"),
        )
        .unwrap();
        off.validate().unwrap();
    }

    #[test]
    fn analog_flash_window_is_checked() {
        let ok = Config::parse(
            "[analog]\nflash_min_ms = 300\nflash_max_ms = 1100\n",
            Path::new("c.toml"),
        )
        .unwrap();
        ok.validate().unwrap();
        let config = Config::parse(
            "[analog]\nflash_min_ms = 900\nflash_max_ms = 600\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["analog.flash_max_ms"]);
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
