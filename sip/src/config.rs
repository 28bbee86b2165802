//! Configuration of the user agent as serde structs (the firmware's config embeds
//! [`SipConfig`] later); every field documented, [`SipConfig::validate`] checks them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::auth::Algorithm;
use crate::transaction::{Timers, Transport};

/// A configuration problem, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("sip config: {field}: {problem}")]
pub struct ConfigError {
    /// Dotted path of the field.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

fn err(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Serde helper: a `Duration` as integer milliseconds.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Deserializes from milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// The whole SIP configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address the UDP and TCP listeners bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Transports to listen on.
    pub transports: Vec<Transport>,
    /// Address written into Via/Contact/SDP when it differs from `listen`'s IP (NAT,
    /// wildcard binds). Default: the listen IP.
    pub public_ip: Option<IpAddr>,
    /// Realm of the digest challenges this UA sends (registrar and callers).
    pub realm: String,
    /// Digest algorithms offered in challenges, one challenge header each, preferred
    /// first (RFC 8760). Default `["MD5"]` alone: baresip 1.0 (libre) gives up on any
    /// challenge list with a SHA-256 entry — tested — and older phones are alike; add
    /// `"SHA-256"` where every phone supports it.
    pub challenge_algorithms: Vec<Algorithm>,
    /// How long a nonce this UA issues stays valid (seconds); older ones get `stale=true`.
    pub nonce_lifetime_secs: u64,
    /// Transaction timers.
    pub timers: Timers,
    /// `User-Agent`/`Server` header value.
    pub user_agent: String,
    /// Trunks: registrations and IP-authenticated peers.
    pub trunks: Vec<TrunkConfig>,
    /// Extensions of the built-in registrar (IP phones).
    pub extensions: Vec<ExtensionConfig>,
    /// Who may talk to this UA at all, and how hard.
    pub security: SecurityConfig,
    /// RTP media.
    pub rtp: RtpConfig,
    /// Seconds a call may ring unanswered before it is given up (outgoing: CANCEL).
    pub ring_timeout_secs: u64,
    /// Interval of qualify OPTIONS to trunks with `qualify = true` (seconds).
    pub qualify_interval_secs: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            transports: vec![Transport::Udp, Transport::Tcp],
            public_ip: None,
            realm: "flowgate".into(),
            challenge_algorithms: vec![Algorithm::Md5],
            nonce_lifetime_secs: 300,
            timers: Timers::default(),
            user_agent: "Flowgate".into(),
            trunks: Vec::new(),
            extensions: Vec::new(),
            security: SecurityConfig::default(),
            rtp: RtpConfig::default(),
            ring_timeout_secs: 120,
            qualify_interval_secs: 60,
        }
    }
}

/// A SIP trunk: a PBX or provider this UA registers to and/or accepts calls from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Name used in events and logs.
    pub name: String,
    /// Where requests to the trunk go (`host:port`, an IP address).
    pub proxy: SocketAddr,
    /// Domain used in the AoR and Request-URIs (default: the proxy's IP).
    #[serde(default)]
    pub domain: Option<String>,
    /// Transport to the trunk.
    #[serde(default = "default_udp")]
    pub transport: Transport,
    /// Username for digest authentication and the AoR user (None: no credentials).
    #[serde(default)]
    pub username: Option<String>,
    /// Password for digest authentication.
    #[serde(default)]
    pub password: Option<String>,
    /// Register to the trunk (needs `username`).
    #[serde(default)]
    pub register: bool,
    /// Requested registration lifetime (seconds).
    #[serde(default = "default_expires")]
    pub expires_secs: u32,
    /// Addresses (CIDR) whose requests are this trunk's: IP-authenticated, trusted.
    #[serde(default)]
    pub trusted_sources: Vec<String>,
    /// Send OPTIONS pings every `qualify_interval_secs`.
    #[serde(default)]
    pub qualify: bool,
    /// Calls at once on this trunk, incoming and outgoing together (0: no limit). An
    /// INVITE from the trunk beyond it gets `503` (a PBX tries its next route); an
    /// outgoing call beyond it fails over to the next line, as an unreachable trunk does.
    #[serde(default)]
    pub max_calls: u32,
}

impl TrunkConfig {
    /// A trunk named `name` at `proxy` with what the configuration file defaults to for
    /// the rest: UDP, no credentials, no registration, no trusted sources, no qualify, no
    /// call limit. Set what differs with struct update syntax.
    pub fn new(name: impl Into<String>, proxy: SocketAddr) -> Self {
        Self {
            name: name.into(),
            proxy,
            domain: None,
            transport: default_udp(),
            username: None,
            password: None,
            register: false,
            expires_secs: default_expires(),
            trusted_sources: Vec::new(),
            qualify: false,
            max_calls: 0,
        }
    }
}

fn default_udp() -> Transport {
    Transport::Udp
}
fn default_expires() -> u32 {
    300
}

/// An extension of the built-in registrar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionConfig {
    /// User part (`201`); also the digest username.
    pub user: String,
    /// Digest password.
    pub password: String,
    /// Display name for calls from this extension.
    #[serde(default)]
    pub display_name: String,
}

/// Access control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Networks (CIDR or single addresses) allowed to send anything; empty = everyone
    /// (still challenged unless trusted).
    pub allow: Vec<String>,
    /// Networks always refused (checked before `allow`).
    pub deny: Vec<String>,
    /// Requests per source address per second before it is answered `503` (0 = no limit).
    pub rate_per_sec: u32,
    /// Burst allowance of the rate limit.
    pub rate_burst: u32,
    /// Failed authentications from one source before it is banned.
    pub ban_after_failures: u32,
    /// How long a ban lasts (seconds).
    pub ban_secs: u64,
    /// What unknown, unauthenticated sources get: a digest challenge (they may be
    /// extensions) or a flat `403`.
    pub challenge_unknown: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            deny: Vec::new(),
            rate_per_sec: 50,
            rate_burst: 100,
            ban_after_failures: 5,
            ban_secs: 600,
            challenge_unknown: true,
        }
    }
}

/// RTP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// First UDP port of the media range (even).
    pub port_min: u16,
    /// Last UDP port of the media range.
    pub port_max: u16,
    /// Codecs offered/accepted, in preference order: `PCMU`, `PCMA`.
    pub codecs: Vec<String>,
    /// Payload type offered for telephone-event.
    pub telephone_event_pt: u8,
    /// Jitter buffer: lowest target delay (ms).
    pub jitter_min_ms: u32,
    /// Jitter buffer: highest target delay (ms).
    pub jitter_max_ms: u32,
}

impl Default for RtpConfig {
    fn default() -> Self {
        Self {
            port_min: 20_000,
            port_max: 20_999,
            codecs: vec!["PCMU".into(), "PCMA".into()],
            telephone_event_pt: 101,
            jitter_min_ms: 20,
            jitter_max_ms: 200,
        }
    }
}

impl SipConfig {
    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.transports.is_empty() {
            return Err(err("transports", "at least one transport"));
        }
        if self.realm.is_empty() || self.realm.contains('"') {
            return Err(err("realm", "must be non-empty and without quotes"));
        }
        if self.challenge_algorithms.is_empty() {
            return Err(err("challenge_algorithms", "at least one algorithm"));
        }
        if self.nonce_lifetime_secs == 0 {
            return Err(err("nonce_lifetime_secs", "must be > 0"));
        }
        let t = &self.timers;
        if t.t1.is_zero() || t.t2 < t.t1 || t.t4.is_zero() {
            return Err(err("timers", "need 0 < t1 <= t2 and t4 > 0"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, tr) in self.trunks.iter().enumerate() {
            let f = |n: &str| format!("trunks[{i}].{n}");
            if tr.name.is_empty() || !names.insert(tr.name.clone()) {
                return Err(err(f("name"), "empty or duplicate"));
            }
            if tr.register && (tr.username.is_none() || tr.password.is_none()) {
                return Err(err(f("register"), "needs username and password"));
            }
            if tr.register && tr.expires_secs < 30 {
                return Err(err(f("expires_secs"), "at least 30"));
            }
            for c in &tr.trusted_sources {
                crate::ua::security::Cidr::parse(c).map_err(|e| err(f("trusted_sources"), e))?;
            }
        }
        let mut users = std::collections::HashSet::new();
        for (i, e) in self.extensions.iter().enumerate() {
            if e.user.is_empty()
                || !e
                    .user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
            {
                return Err(err(
                    format!("extensions[{i}].user"),
                    "letters, digits, - _ . + only",
                ));
            }
            if !users.insert(e.user.clone()) {
                return Err(err(format!("extensions[{i}].user"), "duplicate"));
            }
            if e.password.len() < 8 {
                return Err(err(
                    format!("extensions[{i}].password"),
                    "at least 8 characters",
                ));
            }
        }
        for (name, list) in [
            ("security.allow", &self.security.allow),
            ("security.deny", &self.security.deny),
        ] {
            for c in list {
                crate::ua::security::Cidr::parse(c).map_err(|e| err(name, e))?;
            }
        }
        let r = &self.rtp;
        if r.port_min == 0 || r.port_max < r.port_min.saturating_add(1) {
            return Err(err("rtp.port_min/port_max", "need 0 < port_min < port_max"));
        }
        if r.codecs.is_empty() {
            return Err(err("rtp.codecs", "at least one codec"));
        }
        for c in &r.codecs {
            if crate::sdp::Codec::from_name(c).is_none() {
                return Err(err("rtp.codecs", format!("unknown codec {c} (PCMU, PCMA)")));
            }
        }
        if !(96..=127).contains(&r.telephone_event_pt) {
            return Err(err(
                "rtp.telephone_event_pt",
                "dynamic payload type 96..=127",
            ));
        }
        if r.jitter_min_ms < 20 || r.jitter_max_ms < r.jitter_min_ms || r.jitter_max_ms > 1000 {
            return Err(err(
                "rtp.jitter",
                "need 20 <= jitter_min_ms <= jitter_max_ms <= 1000",
            ));
        }
        Ok(())
    }

    /// The ring timeout.
    pub fn ring_timeout(&self) -> Duration {
        Duration::from_secs(self.ring_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_trunk_is_what_a_file_with_only_name_and_proxy_gives() {
        let t: TrunkConfig =
            toml::from_str("name = \"pbx\"\nproxy = \"192.0.2.1:5060\"\n").unwrap();
        assert_eq!(
            t,
            TrunkConfig::new("pbx", "192.0.2.1:5060".parse().unwrap())
        );
    }

    #[test]
    fn default_is_valid_and_round_trips_through_toml() {
        let c = SipConfig::default();
        c.validate().unwrap();
        let text = toml::to_string(&c).unwrap();
        let back: SipConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn rejects_bad_fields() {
        let mut c = SipConfig::default();
        c.rtp.codecs = vec!["G729".into()];
        assert_eq!(c.validate().unwrap_err().field, "rtp.codecs");
        let mut c = SipConfig::default();
        c.extensions.push(ExtensionConfig {
            user: "201".into(),
            password: "short".into(),
            display_name: String::new(),
        });
        assert!(c.validate().unwrap_err().field.contains("password"));
        let mut c = SipConfig::default();
        c.security.allow.push("10.0.0.0/33".into());
        assert_eq!(c.validate().unwrap_err().field, "security.allow");
        assert!(toml::from_str::<SipConfig>("bogus = 1").is_err());
    }
}
