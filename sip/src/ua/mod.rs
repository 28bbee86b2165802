//! The user agent: the tokio shell around the sans-IO cores.
//!
//! [`UserAgent::start`] binds the UDP socket and TCP listener and spawns one task that
//! owns every transaction, dialog, call, registration and the registrar. The returned
//! [`UserAgent`] is a cheap-to-clone handle whose async methods send commands to that
//! task; [`UaEvent`]s come out in order on one `tokio::sync::mpsc` receiver.
//!
//! ```text
//!  UserAgent (handle, Clone) ──Command──▶ core task ◀── UDP datagrams / TCP frames
//!                                            │  transactions · dialogs · calls · auth
//!  UnboundedReceiver<UaEvent> ◀──────────────┘  registrations · registrar · guard
//!  RtpStream (per call, taken with take_audio) ── media thread: read_frame/write_frame
//! ```
//!
//! Security: a call reaches the events only from a trusted trunk address
//! ([`AuthIdentity::Trunk`]) or after digest authentication as an extension
//! ([`AuthIdentity::Extension`]); anything else is challenged or refused with `403`.

mod core;
pub mod registrar;
pub mod registration;
pub mod security;
mod transport;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::cause::Cause;
use crate::config::{ConfigError, SipConfig};
use crate::rtp::RtpStream;
pub use flowgate_line::{Party, Progress};
pub use registration::RegState;

/// A call's id: chosen by the caller of [`UserAgent::call`] for outgoing calls (the
/// leg id), by the user agent for incoming ones.
pub type CallId = Uuid;

/// The SIP Call-ID of the outgoing call `id`: the id itself (a UUID is as unique as
/// Call-IDs must be), so the caller knows it before the INVITE leaves.
pub fn outgoing_call_id(id: CallId) -> String {
    format!("{}@flowgate", id.simple())
}

/// Errors of the user agent's API.
#[derive(Debug, Error)]
pub enum UaError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Binding or using a socket failed.
    #[error("SIP transport: {0}")]
    Io(#[from] std::io::Error),
    /// No call with this id (ended, or never existed).
    #[error("no call {0}")]
    NoCall(CallId),
    /// A call with this id exists already.
    #[error("call {0} exists already")]
    Duplicate(CallId),
    /// The operation does not fit the call's state (answering an outgoing call, holding
    /// an unanswered one, …).
    #[error("call {call}: {what}")]
    State {
        /// The call.
        call: CallId,
        /// What was wrong.
        what: String,
    },
    /// The destination cannot be reached: unknown trunk, extension not registered, a
    /// host name (this stack sends to IP addresses, trunks and extensions only).
    #[error("cannot route to {0}")]
    Route(String),
    /// The trunk has as many calls as its `max_calls` allows.
    #[error("trunk {trunk} is at its limit of {max} calls")]
    TrunkFull {
        /// The trunk's name.
        trunk: String,
        /// Its `max_calls`.
        max: u32,
    },
    /// The peer refused a mid-call request (re-INVITE, REFER, INFO) with this status.
    #[error("refused with {0}")]
    Refused(u16),
    /// A mid-call request got no response.
    #[error("request timed out")]
    Timeout,
    /// No free RTP port.
    #[error(transparent)]
    Media(#[from] crate::rtp::StreamError),
    /// The user agent task has stopped.
    #[error("user agent stopped")]
    Stopped,
}

/// How an incoming call was authenticated. There is deliberately no "unauthenticated"
/// value: such calls never reach the events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum AuthIdentity {
    /// From a trunk's trusted source address (IP authentication).
    Trunk(String),
    /// A registrar extension that passed digest authentication.
    Extension(String),
}

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event.
    Rfc4733,
    /// SIP INFO (`application/dtmf-relay` or `application/dtmf`).
    Info,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndCause {
    /// Neutral cause.
    pub cause: Cause,
    /// Q.850 value (from a `Reason` header when the peer sent one).
    pub q850: u8,
    /// The SIP status that ended it, when a final response did.
    pub sip_status: Option<u16>,
    /// Words.
    pub detail: String,
}

/// The target of a transfer the peer asked for (REFER).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferTarget {
    /// The `Refer-To` URI (headers stripped).
    pub uri: String,
    /// Attended transfer: the dialog to replace (RFC 3891), and our call for it if it is
    /// one of ours.
    pub replaces: Option<Replaces>,
    /// `Referred-By`, if any.
    pub referred_by: Option<String>,
    /// Who asked: the far end as the gateway authenticated it (a trunk's trusted source,
    /// the extension or trunk of the call). REFERs from anyone else are refused (`403`)
    /// and never become an event.
    pub by: AuthIdentity,
}

/// A `Replaces` target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replaces {
    /// SIP Call-ID of the dialog to replace.
    pub call_id: String,
    /// Its to-tag.
    pub to_tag: String,
    /// Its from-tag.
    pub from_tag: String,
    /// `early-only` (RFC 3891 §6.1).
    pub early_only: bool,
    /// Our call with that dialog, when we have it.
    pub call: Option<CallId>,
}

impl Replaces {
    /// The dialog it names, to put in a `Replaces` (header or URI header).
    pub fn dialog(&self) -> crate::refer::DialogRef {
        crate::refer::DialogRef {
            call_id: self.call_id.clone(),
            to_tag: self.to_tag.clone(),
            from_tag: self.from_tag.clone(),
            early_only: self.early_only,
        }
    }
}

/// Events, in order, on the user agent's stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UaEvent {
    /// A new authenticated incoming call (already answered `100 Trying`).
    Incoming {
        /// Its id.
        call: CallId,
        /// From.
        caller: Party,
        /// To / Request-URI user.
        callee: Party,
        /// Where the INVITE came from.
        source: SocketAddr,
        /// Who it is.
        auth: AuthIdentity,
        /// SIP Call-ID.
        sip_call_id: String,
        /// The confirmed call of ours this one takes the place of (its INVITE carried a
        /// `Replaces` naming it, RFC 3891: that call's far end transferred it here). The
        /// user agent leaves the replaced call up: its owner hands what it was doing over
        /// to the new call, then hangs the replaced one up.
        replaces: Option<CallId>,
    },
    /// Provisional progress of an outgoing call.
    Progress {
        /// The call.
        call: CallId,
        /// What.
        progress: Progress,
    },
    /// The call is answered (outgoing: 200 received; incoming: our 200 was ACKed).
    Answered {
        /// The call.
        call: CallId,
    },
    /// The call's audio can be taken with [`UserAgent::take_audio`].
    AudioReady {
        /// The call.
        call: CallId,
    },
    /// A digit from the peer.
    Dtmf {
        /// The call.
        call: CallId,
        /// `0-9*#A-D`.
        digit: char,
        /// How it came.
        source: DtmfSource,
    },
    /// The peer put the call on hold.
    Held {
        /// The call.
        call: CallId,
    },
    /// The peer took the call off hold.
    Retrieved {
        /// The call.
        call: CallId,
    },
    /// The peer asks to transfer the call (REFER, already accepted with 202); answer
    /// with [`UserAgent::transfer_outcome`].
    TransferRequested {
        /// The call.
        call: CallId,
        /// Where to.
        target: TransferTarget,
    },
    /// How a transfer we asked for (REFER) ended, from the peer's NOTIFY.
    TransferResult {
        /// The call.
        call: CallId,
        /// The final status of the transfer target's call (200 = done).
        status: u16,
    },
    /// The call ended (exactly once per call).
    Ended {
        /// The call.
        call: CallId,
        /// Why.
        cause: EndCause,
    },
    /// A trunk's registration state changed.
    Registration {
        /// The trunk.
        trunk: String,
        /// New state.
        state: RegState,
    },
    /// A trunk's qualify OPTIONS result changed.
    TrunkReachable {
        /// The trunk.
        trunk: String,
        /// Whether it answers.
        reachable: bool,
    },
    /// An extension registered or its last binding went away.
    Extension {
        /// The extension.
        user: String,
        /// Whether it has a binding now.
        registered: bool,
    },
}

/// Where an outgoing call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A SIP URI with an IP address host (`sip:1000@127.0.0.1:5070`).
    Uri(String),
    /// An extension of the built-in registrar.
    Extension(String),
    /// A number through a configured trunk.
    Trunk {
        /// Trunk name.
        trunk: String,
        /// Dialled number / user.
        number: String,
    },
}

/// The registrar's view of one extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionStatus {
    /// The extension.
    pub user: String,
    /// Contact URIs bound, with the seconds left.
    pub contacts: Vec<(String, u32)>,
}

/// A snapshot of the user agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Address the UDP socket is bound to.
    pub udp: SocketAddr,
    /// Address of the TCP listener, if any.
    pub tcp: Option<SocketAddr>,
    /// Each trunk's registration state.
    pub trunks: Vec<(String, RegState)>,
    /// Registered extensions.
    pub extensions: Vec<ExtensionStatus>,
    /// Calls held: in progress, plus ended outgoing ones still waiting for the final
    /// response to their CANCEL'd INVITE.
    pub calls: usize,
}

type Reply<T> = oneshot::Sender<Result<T, UaError>>;

/// Streams not yet taken, by call (shared by the task and the handles).
type Streams = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<CallId, RtpStream>>>;

#[derive(Debug)]
enum Command {
    Call {
        id: CallId,
        to: Destination,
        from: Party,
        reply: Reply<()>,
    },
    Answer {
        id: CallId,
        reply: Reply<()>,
    },
    Progress {
        id: CallId,
        early_media: bool,
        reply: Reply<()>,
    },
    Hangup {
        id: CallId,
        cause: Cause,
        reply: Reply<()>,
    },
    Dtmf {
        id: CallId,
        digits: String,
        duration: Duration,
        reply: Reply<()>,
    },
    Hold {
        id: CallId,
        hold: bool,
        reply: Reply<()>,
    },
    Refer {
        id: CallId,
        target: String,
        replaces: Option<CallId>,
        reply: Reply<()>,
    },
    TransferOutcome {
        id: CallId,
        status: u16,
        reply: Reply<()>,
    },
    Status {
        reply: oneshot::Sender<Status>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The handle on a running user agent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UserAgent {
    commands: mpsc::UnboundedSender<Command>,
    streams: Streams,
    udp: SocketAddr,
    tcp: Option<SocketAddr>,
}

impl UserAgent {
    /// Validates `config`, binds the transports and starts the user agent task.
    pub async fn start(
        config: SipConfig,
    ) -> Result<(UserAgent, mpsc::UnboundedReceiver<UaEvent>), UaError> {
        config.validate()?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let net = transport::Net::bind(&config).await?;
        let (udp, tcp) = (net.udp_addr(), net.tcp_addr());
        let streams = Streams::default();
        let core = core::Core::new(config, net, ev_tx, streams.clone())?;
        tokio::spawn(core.run(cmd_rx));
        Ok((
            UserAgent {
                commands: cmd_tx,
                streams,
                udp,
                tcp,
            },
            ev_rx,
        ))
    }

    /// The bound UDP address (the SIP address for `sip:…@addr`).
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    async fn ask<T>(&self, f: impl FnOnce(Reply<T>) -> Command) -> Result<T, UaError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(f(tx)).map_err(|_| UaError::Stopped)?;
        rx.await.map_err(|_| UaError::Stopped)?
    }

    /// Places a call: returns once the INVITE is sent; progress, answer and the end come
    /// as events (an `Ended` may come before this returns).
    pub async fn call(&self, id: CallId, to: Destination, from: Party) -> Result<(), UaError> {
        self.ask(|reply| Command::Call {
            id,
            to,
            from,
            reply,
        })
        .await
    }

    /// Answers an incoming call (200 with the SDP answer).
    pub async fn answer(&self, id: CallId) -> Result<(), UaError> {
        self.ask(|reply| Command::Answer { id, reply }).await
    }

    /// Sends 180 Ringing, or 183 Session Progress with SDP (early media: the call's audio
    /// flows before the answer).
    pub async fn progress(&self, id: CallId, early_media: bool) -> Result<(), UaError> {
        self.ask(|reply| Command::Progress {
            id,
            early_media,
            reply,
        })
        .await
    }

    /// Ends a call: refuses an unanswered incoming call with the cause's status, cancels
    /// an unanswered outgoing one, sends BYE otherwise. The `Ended` event follows.
    pub async fn hangup(&self, id: CallId, cause: Cause) -> Result<(), UaError> {
        self.ask(|reply| Command::Hangup { id, cause, reply }).await
    }

    /// Sends digits: RFC 4733 events when negotiated, SIP INFO otherwise.
    pub async fn send_dtmf(
        &self,
        id: CallId,
        digits: &str,
        duration: Duration,
    ) -> Result<(), UaError> {
        self.ask(|reply| Command::Dtmf {
            id,
            digits: digits.to_owned(),
            duration,
            reply,
        })
        .await
    }

    /// Puts the peer on hold (re-INVITE `sendonly`); returns when it accepted.
    pub async fn hold(&self, id: CallId) -> Result<(), UaError> {
        self.ask(|reply| Command::Hold {
            id,
            hold: true,
            reply,
        })
        .await
    }

    /// Takes the peer off hold (re-INVITE `sendrecv`).
    pub async fn retrieve(&self, id: CallId) -> Result<(), UaError> {
        self.ask(|reply| Command::Hold {
            id,
            hold: false,
            reply,
        })
        .await
    }

    /// Blind transfer: asks the peer to call `target` (REFER); returns when it accepted
    /// (202). The outcome arrives as [`UaEvent::TransferResult`].
    pub async fn transfer(&self, id: CallId, target: &str) -> Result<(), UaError> {
        self.ask(|reply| Command::Refer {
            id,
            target: target.to_owned(),
            replaces: None,
            reply,
        })
        .await
    }

    /// Attended transfer: asks the peer of `id` to replace our call `other` with a call
    /// to `other`'s peer (REFER with Replaces).
    pub async fn transfer_attended(&self, id: CallId, other: CallId) -> Result<(), UaError> {
        self.ask(|reply| Command::Refer {
            id,
            target: String::new(),
            replaces: Some(other),
            reply,
        })
        .await
    }

    /// Reports how a transfer the peer asked for goes: a final status (200, 503…) is the
    /// last NOTIFY and ends the subscription; a provisional one (180 while the target
    /// rings) is a NOTIFY that keeps it.
    pub async fn transfer_outcome(&self, id: CallId, status: u16) -> Result<(), UaError> {
        self.ask(|reply| Command::TransferOutcome { id, status, reply })
            .await
    }

    /// Takes the call's RTP stream (once) for the media thread; a plain call, so a
    /// line adapter can hand it out from a synchronous `audio(leg)`. The stream exists
    /// from the INVITE on (sent or received); `AudioReady` says when media flows.
    pub fn take_audio(&self, id: CallId) -> Result<RtpStream, UaError> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id)
            .ok_or(UaError::State {
                call: id,
                what: "no audio: the call ended, never existed, or its stream was taken".into(),
            })
    }

    /// A snapshot: registrations, extensions, call count.
    pub async fn status(&self) -> Result<Status, UaError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Status { reply: tx })
            .map_err(|_| UaError::Stopped)?;
        rx.await.map_err(|_| UaError::Stopped)
    }

    /// Hangs up every call (BYE/CANCEL/480), unregisters nothing (bindings expire), and
    /// stops the task.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown { reply: tx }).is_ok() {
            let _ = rx.await;
        }
    }
}
