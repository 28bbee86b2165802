//! SIP on the gateway: starts the user agent from `[sip]`, wraps it in the `sip` line
//! (`flowgate_sip::line::SipLine`, which the runtime uses like any other line), keeps the
//! demo extension's password, and writes trunk-registration and extension changes into the
//! event log (`sip_updated`).
//!
//! The calls themselves need nothing here: an incoming SIP call is a leg on the `sip` line,
//! so `runtime::calls::events` runs the flow bound to its number or routes it out by
//! `[[routes]]` like any incoming leg. The user agent only ever reports calls from trusted
//! trunk sources and digest-authenticated extensions, which is what keeps unauthenticated
//! callers away from the modems (toll fraud).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flowgate_sip::line::{SipLine, SipNotices};
use flowgate_sip::ua::{UaEvent, UserAgent};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::model::derived_id;
use crate::store::{Batch, Db};

/// The id of the SIP line (routes name it; its calls carry it as `line_id`).
pub const LINE_ID: &str = "sip";

/// Where the demo extension's password is kept, in the data directory.
pub const DEMO_PASSWORD_FILE: &str = "sip-demo-password";

/// Why SIP could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipStartError {
    /// The demo extension's password could not be read or written.
    #[error("SIP demo extension password in {path}: {source}")]
    DemoPassword {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The user agent could not start (config, sockets).
    #[error("SIP user agent on {listen}: {source}")]
    UserAgent {
        /// The configured listen address.
        listen: String,
        /// What failed.
        source: flowgate_sip::ua::UaError,
    },
}

/// The demo extension's credentials.
#[derive(Debug, Clone)]
pub struct DemoExtension {
    /// The extension (digest username).
    pub user: String,
    /// Its password.
    pub password: String,
    /// Whether this start generated the password (print it once).
    pub created: bool,
}

/// The running SIP side.
pub struct Sip {
    line: Arc<SipLine>,
    demo: Option<DemoExtension>,
}

impl Sip {
    /// Starts the user agent and its line from `config.sip`; `None` when SIP is off.
    pub async fn start(config: &Config) -> Result<Option<(Self, SipNotices)>, SipStartError> {
        let section = &config.sip;
        if !section.enabled {
            return Ok(None);
        }
        let demo = if section.demo_extension.is_empty() {
            None
        } else {
            let (password, created) = load_or_create_password(&config.data.dir)?;
            Some(DemoExtension {
                user: section.demo_extension.clone(),
                password,
                created,
            })
        };
        let ua_config = section.user_agent(
            demo.as_ref().map(|d| d.password.as_str()),
            config.calls.ring_timeout_secs,
        );
        let (ua, events) = UserAgent::start(ua_config.clone())
            .await
            .map_err(|source| SipStartError::UserAgent {
                listen: section.listen.to_string(),
                source,
            })?;
        let number_trunk = Some(section.number_trunk.as_str()).filter(|t| !t.is_empty());
        let (line, notices) = SipLine::new(LINE_ID, ua, events, &ua_config, number_trunk);
        info!(udp = %line.user_agent().udp_addr(), trunks = ua_config.trunks.len(), extensions = ua_config.extensions.len(), "SIP user agent up");
        Ok(Some((Self { line, demo }, notices)))
    }

    /// The line.
    pub fn line(&self) -> &Arc<SipLine> {
        &self.line
    }

    /// The user agent.
    pub fn user_agent(&self) -> &UserAgent {
        self.line.user_agent()
    }

    /// The demo extension, if configured.
    pub fn demo(&self) -> Option<&DemoExtension> {
        self.demo.as_ref()
    }
}

/// The demo password: read from `<data>/sip-demo-password`, or generated and written there
/// (0600) on first start. Returns it and whether it was created now.
fn load_or_create_password(data: &Path) -> Result<(String, bool), SipStartError> {
    let path = data.join(DEMO_PASSWORD_FILE);
    let err = |source| SipStartError::DemoPassword {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 8 => return Ok((text.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    // 16 characters a softphone's settings dialog takes without fuss.
    // 32 symbols: a random byte modulo 32 picks each one uniformly.
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    let password: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(err)?;
    file.write_all(password.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok((password, true))
}

/// Writes the user agent's registration, reachability and extension changes into the
/// event log as `sip_updated` events, until `cancel`.
pub fn spawn_notices(db: Db, mut notices: SipNotices, cancel: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let notice = tokio::select! {
                _ = cancel.cancelled() => return,
                n = notices.recv() => n,
            };
            let Some(notice) = notice else { return };
            let (resource, data) = match &notice {
                UaEvent::Registration { trunk, state } => {
                    info!(trunk, ?state, "SIP trunk registration");
                    (
                        derived_id(&["sip", "trunk", trunk]),
                        serde_json::json!({"kind": "trunk_registration", "trunk": trunk, "state": state}),
                    )
                }
                UaEvent::TrunkReachable { trunk, reachable } => (
                    derived_id(&["sip", "trunk", trunk]),
                    serde_json::json!({"kind": "trunk_reachable", "trunk": trunk, "reachable": reachable}),
                ),
                UaEvent::Extension { user, registered } => {
                    info!(user, registered, "SIP extension");
                    (
                        derived_id(&["sip", "extension", user]),
                        serde_json::json!({"kind": "extension", "user": user, "registered": registered}),
                    )
                }
                _ => continue,
            };
            let mut batch = Batch::new();
            batch.event("sip_updated", resource, data);
            if let Err(e) = db.store.commit(batch) {
                warn!(cause = %e, "sip_updated event not stored");
            }
        }
    });
}
