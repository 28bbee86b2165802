//! `email_send` through an SMTP relay (`[email]` in the config).
//!
//! VoIPBIN hands e-mail to a provider (SendGrid, Mailgun); the gateway hands it to an SMTP
//! relay on the LAN or at the ISP. The message is built from the action's options (plain
//! text body, `email`-type destinations) and recordings are attached by id, as VoIPBIN's
//! email manager does (`reference_type: recording`). The send runs inside the command and
//! is bounded by `email.timeout_secs`: `email_send` is a "swallow" action, so a relay that
//! is down fails the action and the flow goes on, as it does when VoIPBIN's provider fails.
//!
//! TLS is rustls (the same stack as the HTTP client): `starttls` (upgrade required, port 587),
//! `tls` (implicit TLS, port 465) or `none` (loopback or a trusted LAN relay only). The trusted
//! roots are the image's CA bundle (`crate::tls`) plus `ca_file`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flowgate_flows::model::{EmailAttachment, EmailSendOption};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::Db;

/// `[email]`: the SMTP relay `email_send` goes through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// Relay host name or address; empty = `email_send` is not available.
    pub host: String,
    /// Relay port; 0 = the security's usual port (587 `starttls`, 465 `tls`, 25 `none`).
    pub port: u16,
    /// `starttls`, `tls` or `none`.
    pub security: String,
    /// SMTP AUTH user; empty = no authentication.
    pub username: String,
    /// SMTP AUTH password.
    pub password: String,
    /// The From address (`Name <addr>` or `addr`).
    pub from: String,
    /// Extra trusted CA certificate (PEM file) for a relay with a private CA; empty = the
    /// image's CA bundle only (`crate::tls`).
    pub ca_file: String,
    /// Bound on one send (connect, TLS, auth, data), seconds.
    pub timeout_secs: u64,
    /// Largest total size of the attachments of one message, MiB.
    pub max_attachments_mib: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 0,
            security: "starttls".into(),
            username: String::new(),
            password: String::new(),
            from: String::new(),
            ca_file: String::new(),
            timeout_secs: 30,
            max_attachments_mib: 10,
        }
    }
}

const SECURITIES: &[&str] = &["starttls", "tls", "none"];

impl EmailConfig {
    /// Every problem with these settings as `(key, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, message: String| problems.push((format!("email.{key}"), message));
        if !SECURITIES.contains(&self.security.as_str()) {
            bad(
                "security",
                format!(
                    "{:?} must be one of {}",
                    self.security,
                    SECURITIES.join(", ")
                ),
            );
        }
        if !(1..=600).contains(&self.timeout_secs) {
            bad("timeout_secs", "must be between 1 and 600 seconds".into());
        }
        if !(1..=100).contains(&self.max_attachments_mib) {
            bad(
                "max_attachments_mib",
                "must be between 1 and 100 MiB".into(),
            );
        }
        if self.host.trim().is_empty() {
            return problems;
        }
        if self.from.parse::<Mailbox>().is_err() {
            bad(
                "from",
                format!(
                    "{:?} is not an e-mail address (needed when email.host is set)",
                    self.from
                ),
            );
        }
        if self.username.is_empty() != self.password.is_empty() {
            bad(
                "password",
                "username and password are set together or not at all".into(),
            );
        }
        if !self.ca_file.is_empty() && !Path::new(&self.ca_file).is_file() {
            bad(
                "ca_file",
                format!("{:?} is not a readable file", self.ca_file),
            );
        }
        problems
    }

    fn port(&self) -> u16 {
        match (self.port, self.security.as_str()) {
            (0, "tls") => 465,
            (0, "none") => 25,
            (0, _) => 587,
            (p, _) => p,
        }
    }
}

/// Why an e-mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// `[email] host` is empty.
    #[error("no SMTP relay is configured ([email] host)")]
    NotConfigured,
    /// The action's options cannot make a message.
    #[error("{0}")]
    Invalid(String),
    /// An attachment could not be found or read.
    #[error("attachment {reference_type} {reference_id}: {reason}")]
    Attachment {
        /// `recording`, ….
        reference_type: String,
        /// The id as given.
        reference_id: String,
        /// What went wrong.
        reason: String,
    },
    /// TLS settings (CA file) are unusable.
    #[error("TLS settings: {0}")]
    Tls(String),
    /// The relay refused or the connection failed.
    #[error("SMTP relay {relay}: {reason}")]
    Smtp {
        /// `host:port`.
        relay: String,
        /// The relay's answer or the failure.
        reason: String,
    },
    /// The relay did not finish in `timeout_secs`.
    #[error("SMTP relay {0}: timed out")]
    Timeout(String),
}

/// Sends `option` through the relay of `config`; recordings are read from `recordings_dir`.
pub(crate) async fn send(
    config: &EmailConfig,
    db: &Db,
    recordings_dir: Option<&Path>,
    option: &EmailSendOption,
) -> Result<(), EmailError> {
    if config.host.trim().is_empty() {
        return Err(EmailError::NotConfigured);
    }
    let attachments = load_attachments(config, db, recordings_dir, &option.attachments).await?;
    let message = build_message(config, option, attachments)?;
    let transport = transport(config).await?;
    let relay = format!("{}:{}", config.host, config.port());
    let limit = Duration::from_secs(config.timeout_secs);
    match tokio::time::timeout(limit, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(EmailError::Smtp {
            relay,
            reason: describe(&e),
        }),
        Err(_) => Err(EmailError::Timeout(relay)),
    }
}

/// The full error chain: lettre's top-level text alone ("Connection error") hides the cause.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One file to attach.
struct Loaded {
    name: String,
    content_type: ContentType,
    bytes: Vec<u8>,
}

async fn load_attachments(
    config: &EmailConfig,
    db: &Db,
    recordings_dir: Option<&Path>,
    wanted: &[EmailAttachment],
) -> Result<Vec<Loaded>, EmailError> {
    let budget = config.max_attachments_mib.saturating_mul(1024 * 1024);
    let mut total = 0u64;
    let mut loaded = Vec::new();
    for attachment in wanted {
        let failed = |reason: String| EmailError::Attachment {
            reference_type: attachment.reference_type.clone(),
            reference_id: attachment.reference_id.to_string(),
            reason,
        };
        if attachment.reference_type != "recording" {
            return Err(failed(
                "unknown reference_type (the gateway attaches recordings)".into(),
            ));
        }
        let Some(id) = attachment.reference_id.non_nil() else {
            return Err(failed("no recording id".into()));
        };
        let paths = recording_files(db, recordings_dir, id).map_err(failed)?;
        for path in paths {
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| failed(format!("{}: {e}", path.display())))?;
            total = total.saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
            if total > budget {
                return Err(failed(format!(
                    "attachments exceed email.max_attachments_mib ({} MiB)",
                    config.max_attachments_mib
                )));
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("{id}.wav"));
            loaded.push(Loaded {
                name,
                content_type: ContentType::parse("audio/wav").map_err(|e| failed(e.to_string()))?,
                bytes,
            });
        }
    }
    Ok(loaded)
}

/// The files of recording `id`; only names inside the recordings directory are followed.
fn recording_files(
    db: &Db,
    recordings_dir: Option<&Path>,
    id: Uuid,
) -> Result<Vec<PathBuf>, String> {
    let Some(dir) = recordings_dir else {
        return Err("the gateway runs without a media layer".into());
    };
    let recording = match db.recordings.get(id) {
        Ok(Some(r)) => r,
        Ok(None) => return Err("no such recording".into()),
        Err(e) => return Err(e.to_string()),
    };
    if recording.status != crate::model::RecordingStatus::Ended {
        return Err("the recording has not ended yet".into());
    }
    recording
        .filenames
        .iter()
        .map(|name| {
            let plain = Path::new(name)
                .file_name()
                .is_some_and(|f| f == std::ffi::OsStr::new(name));
            if plain {
                Ok(dir.join(name))
            } else {
                Err(format!("refusing file name {name:?}"))
            }
        })
        .collect()
}

fn build_message(
    config: &EmailConfig,
    option: &EmailSendOption,
    attachments: Vec<Loaded>,
) -> Result<Message, EmailError> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| EmailError::Invalid(format!("email.from {:?}: {e}", config.from)))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(option.subject.clone());
    let mut recipients = 0;
    for destination in &option.destinations {
        if !destination.kind.is_empty() && destination.kind != "email" {
            return Err(EmailError::Invalid(format!(
                "destination {:?} has type {:?} (email required)",
                destination.target, destination.kind
            )));
        }
        let address = destination.target.parse().map_err(|e| {
            EmailError::Invalid(format!("destination {:?}: {e}", destination.target))
        })?;
        let name = if destination.target_name.is_empty() {
            None
        } else {
            Some(destination.target_name.clone())
        };
        builder = builder.to(Mailbox::new(name, address));
        recipients += 1;
    }
    if recipients == 0 {
        return Err(EmailError::Invalid("no destinations".into()));
    }
    let text = SinglePart::plain(option.content.clone());
    let built = if attachments.is_empty() {
        builder.singlepart(text)
    } else {
        let mut parts = MultiPart::mixed().singlepart(text);
        for a in attachments {
            parts = parts.singlepart(Attachment::new(a.name).body(a.bytes, a.content_type));
        }
        builder.multipart(parts)
    };
    built.map_err(|e| EmailError::Invalid(e.to_string()))
}

async fn transport(config: &EmailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailError> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
        .port(config.port())
        .timeout(Some(Duration::from_secs(config.timeout_secs)));
    if config.security != "none" {
        let mut tls =
            TlsParameters::builder(config.host.clone()).certificate_store(CertificateStore::None);
        // The image's CA bundle (no roots are compiled in); a relay with a private CA can do
        // with its `ca_file` alone.
        match crate::tls::Roots::get().certs() {
            Ok(roots) => {
                for der in roots {
                    let cert = Certificate::from_der(der.to_vec())
                        .map_err(|e| EmailError::Tls(describe(&e)))?;
                    tls = tls.add_root_certificate(cert);
                }
            }
            Err(e) if config.ca_file.is_empty() => return Err(EmailError::Tls(e.to_string())),
            Err(_) => {}
        }
        if !config.ca_file.is_empty() {
            let pem = tokio::fs::read(&config.ca_file)
                .await
                .map_err(|e| EmailError::Tls(format!("{}: {e}", config.ca_file)))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| EmailError::Tls(format!("{}: {}", config.ca_file, describe(&e))))?;
            tls = tls.add_root_certificate(cert);
        }
        let params = tls
            .build_rustls()
            .map_err(|e| EmailError::Tls(describe(&e)))?;
        builder = builder.tls(if config.security == "tls" {
            Tls::Wrapper(params)
        } else {
            Tls::Required(params)
        });
    }
    if !config.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            config.username.clone(),
            config.password.clone(),
        ));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowgate_flows::model::Address;

    fn configured() -> EmailConfig {
        EmailConfig {
            host: "relay.lan".into(),
            from: "Gateway <gw@example.com>".into(),
            ..EmailConfig::default()
        }
    }

    #[test]
    fn default_is_valid_and_unconfigured() {
        assert!(EmailConfig::default().problems().is_empty());
        assert_eq!(EmailConfig::default().port(), 587);
    }

    #[test]
    fn problems_name_their_keys() {
        let config = EmailConfig {
            host: "relay.lan".into(),
            security: "ssl".into(),
            username: "u".into(),
            from: "not an address".into(),
            ..EmailConfig::default()
        };
        let keys: Vec<String> = config.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["email.security", "email.from", "email.password"]);
    }

    #[test]
    fn ports_follow_security() {
        let mut c = configured();
        c.security = "tls".into();
        assert_eq!(c.port(), 465);
        c.security = "none".into();
        assert_eq!(c.port(), 25);
        c.port = 2525;
        assert_eq!(c.port(), 2525);
    }

    #[test]
    fn message_carries_recipients_subject_and_body() {
        let option = EmailSendOption {
            destinations: vec![Address {
                kind: "email".into(),
                target: "ops@example.com".into(),
                target_name: "Ops".into(),
                ..Address::default()
            }],
            subject: "Missed call".into(),
            content: "Call from +15550001".into(),
            ..EmailSendOption::default()
        };
        let message = build_message(&configured(), &option, Vec::new()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("To: Ops <ops@example.com>"), "{text}");
        assert!(text.contains("Subject: Missed call"), "{text}");
        assert!(text.contains("Call from +15550001"), "{text}");
    }

    #[test]
    fn bad_destinations_are_refused() {
        let mut option = EmailSendOption::default();
        assert!(matches!(
            build_message(&configured(), &option, Vec::new()),
            Err(EmailError::Invalid(_))
        ));
        option.destinations = vec![Address {
            kind: "tel".into(),
            target: "+1555".into(),
            ..Address::default()
        }];
        assert!(matches!(
            build_message(&configured(), &option, Vec::new()),
            Err(EmailError::Invalid(_))
        ));
    }
}
