//! The user agent as a line of the call-leg contract ([`flowgate_line::Line`]).
//!
//! [`SipLine`] wraps a running [`UserAgent`]: the runtime places, answers, holds and ends
//! SIP calls exactly as it does modem calls, and reads one ordered [`LegEvent`] stream.
//!
//! **Why it lives here** and not in the firmware: the dependency direction is
//! `flowgate_line` ← `flowgate_sip` ← `flowgate` (firmware). Every transport implements the
//! contract next to its driver (the modem in `flowgate_board::modem::line`), so the
//! firmware holds only `Arc<dyn Line>` and never names a SIP type for calls; the adapter
//! is tested with two user agents in this crate, without the daemon.
//!
//! One line is the whole user agent: it places calls to `sip:` URIs, to registrar
//! extensions and to numbers through the trunk it is given for them, and receives every authenticated
//! call (trusted trunk sources and digest-authenticated extensions — the user agent never
//! reports anything else). Leg ids are the user agent's call ids: the runtime's leg id for
//! an outgoing call, the user agent's v7 UUID for an incoming one.
//!
//! Ordering: one task reads the user agent's events and is the only sender of the line's
//! stream. An outgoing leg is recorded before the INVITE is sent, so the task always knows
//! the legs it reads about. Events that are not about calls (trunk registrations,
//! extensions, qualify) go out on a second channel, [`SipNotices`], for the gateway's
//! status and event log.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flowgate_line::{
    Availability, Capabilities, Cause, DtmfSource, EndCause, LegAudio, LegDetails, LegError,
    LegEvent, LegFuture, LegId, Line, LineEventSender, LineEvents, Party, Placement, Progress,
    TransferTarget, Transport, line_events,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::SipConfig;
use crate::ua::{AuthIdentity, Destination, UaError, UaEvent, UserAgent};

/// How long each digit of `send_dtmf` lasts (RFC 4733 event duration, INFO `Duration`).
const DIGIT_DURATION: Duration = Duration::from_millis(100);

/// The final NOTIFY status of an attended REFER whose `Replaces` names a dialog at the
/// gateway's own address that it does not have (ended, or never there): RFC 3891's
/// answer to an INVITE with such a `Replaces`.
const REPLACES_UNKNOWN: u16 = 481;

/// The final NOTIFY status of a blind REFER to an address the gateway must not dial for
/// the peer: a trunk's proxy (a call there would present the gateway's credentials).
const REFER_FORBIDDEN: u16 = 403;

/// The final NOTIFY status of a blind REFER whose target has no user part to call.
const REFER_NO_USER: u16 = 404;

/// Events of the user agent that are not about a call: trunk registrations, qualify
/// results and registrar extensions (`UaEvent::Registration`, `TrunkReachable`,
/// `Extension`).
pub type SipNotices = mpsc::UnboundedReceiver<UaEvent>;

/// What the line knows about one of its legs besides its id (API, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipLegInfo {
    /// SIP Call-ID of the dialog.
    pub sip_call_id: String,
    /// The far end's address: the Request-URI we called, or the caller's `From` URI.
    pub remote_uri: String,
    /// How an incoming call was authenticated (`None` for outgoing calls).
    pub auth: Option<AuthIdentity>,
}

/// The whole user agent as one line. Cheap to share (`Arc`).
pub struct SipLine {
    id: String,
    ua: UserAgent,
    routing: Routing,
    legs: Arc<Mutex<HashMap<LegId, SipLegInfo>>>,
    transfers: Transfers,
    events: Mutex<Option<LineEvents>>,
    stopped: Arc<AtomicBool>,
}

/// How a placement's address becomes a [`Destination`].
#[derive(Debug, Clone, Default)]
struct Routing {
    /// Registrar extensions (a bare user that is one of these is called as the extension).
    extensions: Vec<String>,
    /// The trunk numbers go out through.
    trunk: Option<String>,
}

impl Routing {
    fn of(config: &SipConfig, number_trunk: Option<&str>) -> Self {
        Self {
            extensions: config.extensions.iter().map(|e| e.user.clone()).collect(),
            trunk: number_trunk
                .filter(|name| config.trunks.iter().any(|t| t.name == *name))
                .map(str::to_owned),
        }
    }

    /// The destination of `to`: a full `sip:` address (in `uri`, or a number with a
    /// host), an extension, or a number through the trunk.
    fn destination(&self, to: &Party) -> Result<(Destination, String), String> {
        let address = if to.uri.trim().is_empty() {
            to.number.trim()
        } else {
            to.uri.trim()
        };
        if address.is_empty() {
            return Err("the destination has neither a SIP address nor a number".into());
        }
        let bare = address
            .strip_prefix("sip:")
            .or_else(|| address.strip_prefix("SIP:"))
            .unwrap_or(address);
        if bare.contains('@') {
            let uri = format!("sip:{bare}");
            return Ok((Destination::Uri(uri.clone()), uri));
        }
        if self.extensions.iter().any(|e| e == bare) {
            return Ok((
                Destination::Extension(bare.to_owned()),
                format!("sip:{bare}"),
            ));
        }
        match &self.trunk {
            Some(trunk) => Ok((
                Destination::Trunk {
                    trunk: trunk.clone(),
                    number: bare.to_owned(),
                },
                format!("sip:{bare}@{trunk}"),
            )),
            None => Err(format!(
                "{bare:?} is neither a sip: address (user@host), a registrar extension, nor a number a trunk could take (no trunk configured)"
            )),
        }
    }
}

/// Legs handed over by a transfer their peer asked for: their `Ended` says
/// [`Cause::Transferred`] whoever sends the BYE.
type Transfers = Arc<Mutex<HashSet<LegId>>>;

/// Where a blind REFER's `Refer-To` points, as the party the runtime is asked to dial.
///
/// * the gateway itself (`sip:200@<our address>`): the number `200`, reached as a call from
///   the peer to the gateway would be (the runtime's routing decides, and refuses where
///   the peer could not have called it);
/// * a trunk's proxy: refused ([`REFER_FORBIDDEN`]) — the user agent answers a trunk's
///   challenges with the trunk's credentials, so such a call is the gateway's, not the
///   peer's, to pay for;
/// * any other `sip:` address: that address, over SIP (the peer could call it itself; the
///   gateway presents no credentials to it).
fn transfer_party(uri: &str, own: &[SocketAddr], trunks: &[SocketAddr]) -> Result<Party, u16> {
    let parsed = crate::message::parse_uri(uri).map_err(|_| 400u16)?;
    let user = parsed
        .auth
        .as_ref()
        .map(|a| a.user.clone())
        .unwrap_or_default();
    if user.is_empty() {
        return Err(REFER_NO_USER);
    }
    let host = crate::message::uri_host(&parsed);
    let port = crate::message::uri_port(&parsed).unwrap_or(5060);
    let addr = host
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port));
    let is = |set: &[SocketAddr]| {
        addr.is_some_and(|a| {
            set.iter()
                .any(|o| o.port() == a.port() && (o.ip() == a.ip() || o.ip().is_unspecified()))
        })
    };
    if is(own) {
        return Ok(Party::number(user));
    }
    if is(trunks) {
        return Err(REFER_FORBIDDEN);
    }
    Ok(Party {
        number: user,
        display_name: String::new(),
        uri: uri.to_owned(),
    })
}

/// Where an attended REFER whose `Replaces` names a dialog the gateway does not have
/// points: the `Refer-To` address (checked as a blind one's, [`transfer_party`]) with the
/// `Replaces` as a URI header, so the INVITE the runtime has placed there carries it.
/// The gateway's own address is refused ([`REPLACES_UNKNOWN`]): the dialog would be one
/// of its own, and it has none by that name.
fn replacing_party(
    uri: &str,
    dialog: &crate::refer::DialogRef,
    own: &[SocketAddr],
    trunks: &[SocketAddr],
) -> Result<Party, u16> {
    let party = transfer_party(uri, own, trunks)?;
    if party.uri.is_empty() {
        return Err(REPLACES_UNKNOWN);
    }
    Ok(Party {
        uri: format!("{}?{}", party.uri, dialog.uri_header()),
        ..party
    })
}

impl SipLine {
    /// The line `id` over a user agent started with `config`, and its event stream.
    /// Numbers (not `sip:` addresses, not extensions) go out through `number_trunk`, a
    /// trunk of `config` (without one, the line refuses them). Starts the task that feeds
    /// the line's stream (it ends with the user agent) and returns the line with the user
    /// agent's other events.
    pub fn new(
        id: impl Into<String>,
        ua: UserAgent,
        ua_events: mpsc::UnboundedReceiver<UaEvent>,
        config: &SipConfig,
        number_trunk: Option<&str>,
    ) -> (Arc<Self>, SipNotices) {
        let (tx, rx) = line_events();
        let (notice_tx, notices) = mpsc::unbounded_channel();
        let legs = Arc::new(Mutex::new(HashMap::new()));
        let transfers = Transfers::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let mut own = vec![ua.udp_addr()];
        own.extend(ua.tcp_addr());
        if let Some(ip) = config.public_ip {
            own.extend(own.clone().iter().map(|a| SocketAddr::new(ip, a.port())));
        }
        let line = Arc::new(Self {
            id: id.into(),
            ua: ua.clone(),
            routing: Routing::of(config, number_trunk),
            legs: Arc::clone(&legs),
            transfers: Arc::clone(&transfers),
            events: Mutex::new(Some(rx)),
            stopped: Arc::clone(&stopped),
        });
        let translator = Translator {
            line: line.id.clone(),
            ua,
            legs,
            transfers,
            own,
            trunks: config.trunks.iter().map(|t| t.proxy).collect(),
            tx,
            notices: notice_tx,
            stopped,
        };
        tokio::spawn(translator.run(ua_events));
        (line, notices)
    }

    /// The user agent (status, shutdown).
    pub fn user_agent(&self) -> &UserAgent {
        &self.ua
    }

    /// What the line knows about a live leg.
    pub fn leg_info(&self, leg: LegId) -> Option<SipLegInfo> {
        lock(&self.legs).get(&leg).cloned()
    }

    fn known(&self, leg: LegId) -> Result<(), LegError> {
        if lock(&self.legs).contains_key(&leg) {
            Ok(())
        } else {
            Err(LegError::NoSuchLeg {
                line: self.id.clone(),
                leg,
            })
        }
    }

    fn error(&self, e: UaError) -> LegError {
        leg_error(&self.id, e)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Maps a user agent error to the contract's.
fn leg_error(line: &str, e: UaError) -> LegError {
    let line = line.to_owned();
    match e {
        UaError::NoCall(leg) => LegError::NoSuchLeg { line, leg },
        // Another line may reach what this one cannot: an unregistered extension, no
        // free RTP port, a stopped user agent, a trunk at its call limit.
        UaError::Route(_) | UaError::Media(_) | UaError::Stopped | UaError::TrunkFull { .. } => {
            LegError::Unavailable {
                line,
                reason: e.to_string(),
            }
        }
        UaError::Duplicate(_) | UaError::State { .. } => LegError::Invalid(e.to_string()),
        UaError::Refused(status) => LegError::Failed {
            line,
            reason: e.to_string(),
            cause: Some(EndCause::new(
                crate::cause::cause_from_sip(status),
                format!("SIP {status}"),
            )),
        },
        UaError::Config(_) | UaError::Io(_) | UaError::Timeout => LegError::Failed {
            line,
            reason: e.to_string(),
            cause: None,
        },
    }
}

impl Line for SipLine {
    fn id(&self) -> &str {
        &self.id
    }

    fn transport(&self) -> Transport {
        Transport::Sip
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            hold: true,
            transfer_to_leg: true,
            transfer_to_party: true,
            dtmf_signalled: true,
            early_media: true,
        }
    }

    fn availability(&self) -> Availability {
        if self.stopped.load(Ordering::Acquire) {
            Availability::Down {
                reason: "the SIP user agent stopped".into(),
            }
        } else {
            // The user agent carries as many calls as it has RTP ports; a call that finds
            // none fails over like an unavailable line.
            Availability::Ready
        }
    }

    fn own_party(&self) -> Party {
        Party {
            number: String::new(),
            display_name: String::new(),
            uri: format!("sip:{}", self.ua.udp_addr()),
        }
    }

    fn take_events(&self) -> Option<LineEvents> {
        lock(&self.events).take()
    }

    fn place(&self, leg: LegId, placement: Placement) -> LegFuture<'_, ()> {
        Box::pin(async move {
            let (destination, remote_uri) = self
                .routing
                .destination(&placement.to)
                .map_err(LegError::Invalid)?;
            // Known before the INVITE leaves: its first response finds the leg.
            lock(&self.legs).insert(
                leg,
                SipLegInfo {
                    sip_call_id: crate::ua::outgoing_call_id(leg),
                    remote_uri,
                    auth: None,
                },
            );
            match self.ua.call(leg, destination, placement.from).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Never sent: nothing will end it, so forget it here.
                    lock(&self.legs).remove(&leg);
                    Err(self.error(e))
                }
            }
        })
    }

    fn answer(&self, leg: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move {
            self.known(leg)?;
            self.ua.answer(leg).await.map_err(|e| self.error(e))
        })
    }

    fn hangup(&self, leg: LegId, cause: Cause) -> LegFuture<'_, ()> {
        Box::pin(async move {
            if self.known(leg).is_err() {
                return Ok(()); // already over
            }
            match self.ua.hangup(leg, cause).await {
                Ok(()) | Err(UaError::NoCall(_)) => Ok(()),
                Err(e) => Err(self.error(e)),
            }
        })
    }

    fn send_dtmf(&self, leg: LegId, digits: &str) -> LegFuture<'_, ()> {
        let digits = digits.to_owned();
        Box::pin(async move {
            self.known(leg)?;
            self.ua
                .send_dtmf(leg, &digits, DIGIT_DURATION)
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn hold(&self, leg: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move {
            self.known(leg)?;
            self.ua.hold(leg).await.map_err(|e| self.error(e))
        })
    }

    fn retrieve(&self, leg: LegId) -> LegFuture<'_, ()> {
        Box::pin(async move {
            self.known(leg)?;
            self.ua.retrieve(leg).await.map_err(|e| self.error(e))
        })
    }

    fn transfer(&self, leg: LegId, to: TransferTarget) -> LegFuture<'_, ()> {
        Box::pin(async move {
            self.known(leg)?;
            match to {
                TransferTarget::Leg(other) => {
                    self.known(other)?;
                    self.ua
                        .transfer_attended(leg, other)
                        .await
                        .map_err(|e| self.error(e))
                }
                TransferTarget::Party(party) => {
                    let (_, uri) = self
                        .routing
                        .destination(&party)
                        .map_err(LegError::Invalid)?;
                    if !uri.contains('@') {
                        return Err(LegError::Invalid(format!(
                            "a blind transfer needs a sip: address (user@host), not {uri:?}"
                        )));
                    }
                    self.ua.transfer(leg, &uri).await.map_err(|e| self.error(e))
                }
            }
        })
    }

    fn transfer_outcome(&self, leg: LegId, outcome: Result<(), Cause>) -> LegFuture<'_, ()> {
        Box::pin(async move {
            self.known(leg)?;
            let status = match outcome {
                Ok(()) => {
                    lock(&self.transfers).insert(leg);
                    200
                }
                Err(cause) => crate::cause::sip_status_for(cause),
            };
            self.ua
                .transfer_outcome(leg, status)
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn transfer_progress(&self, leg: LegId, progress: Progress) -> LegFuture<'_, ()> {
        Box::pin(async move {
            self.known(leg)?;
            // The REFER's NOTIFY 100 went out when it was accepted.
            let status = match progress {
                Progress::Trying => return Ok(()),
                Progress::Ringing => 180,
                Progress::EarlyMedia => 183,
            };
            self.ua
                .transfer_outcome(leg, status)
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn audio(&self, leg: LegId) -> LegAudio {
        match self.ua.take_audio(leg) {
            Ok(stream) => LegAudio::Port(Box::new(stream)),
            Err(e) => LegAudio::Unavailable(e.to_string()),
        }
    }

    fn leg_details(&self, leg: LegId) -> LegDetails {
        self.leg_info(leg)
            .map(|info| LegDetails {
                call_id: info.sip_call_id,
                remote_uri: info.remote_uri,
            })
            .unwrap_or_default()
    }
}

/// The task that turns user agent events into leg events.
struct Translator {
    line: String,
    ua: UserAgent,
    legs: Arc<Mutex<HashMap<LegId, SipLegInfo>>>,
    transfers: Transfers,
    /// The user agent's own addresses (a `Refer-To` at one of them names a number).
    own: Vec<SocketAddr>,
    /// The trunks' proxies (a `Refer-To` there is refused).
    trunks: Vec<SocketAddr>,
    tx: LineEventSender,
    notices: mpsc::UnboundedSender<UaEvent>,
    stopped: Arc<AtomicBool>,
}

impl Translator {
    async fn run(self, mut events: mpsc::UnboundedReceiver<UaEvent>) {
        while let Some(event) = events.recv().await {
            self.on_event(event).await;
        }
        // The user agent stopped: whatever was up is gone.
        self.stopped.store(true, Ordering::Release);
        let ended: Vec<LegId> = lock(&self.legs).drain().map(|(leg, _)| leg).collect();
        for leg in ended {
            self.send(LegEvent::Ended {
                leg,
                cause: EndCause::new(Cause::LineReset, "SIP user agent stopped"),
            });
        }
    }

    fn send(&self, event: LegEvent) {
        // The receiver is gone only at shutdown; nothing to do then.
        let _ = self.tx.send(event);
    }

    fn ours(&self, leg: LegId) -> bool {
        lock(&self.legs).contains_key(&leg)
    }

    async fn on_event(&self, event: UaEvent) {
        match event {
            UaEvent::Incoming {
                call,
                caller,
                callee,
                source,
                auth,
                sip_call_id,
                replaces,
            } => {
                info!(line = %self.line, leg = %call, %source, ?auth, %sip_call_id, caller = %caller.number, callee = %callee.number, replaces = ?replaces, "SIP call in");
                if replaces.is_some_and(|r| !self.ours(r)) {
                    // The replaced call is no longer this line's (it ended between the user
                    // agent matching it and this event): nothing to hand over.
                    if let Err(e) = self.ua.hangup(call, Cause::Rejected).await {
                        debug!(leg = %call, cause = %e, "refusal not sent");
                    }
                    return;
                }
                lock(&self.legs).insert(
                    call,
                    SipLegInfo {
                        sip_call_id,
                        remote_uri: caller.uri.clone(),
                        auth: Some(auth),
                    },
                );
                if let Some(replaced) = replaces {
                    // Answered at once by the runtime: no ringing to play.
                    self.send(LegEvent::Replacing {
                        leg: call,
                        caller,
                        callee,
                        replaced,
                    });
                    return;
                }
                // The gateway has taken the call and decides what to do with it: the caller
                // hears ringing meanwhile, as a GSM caller hears the network's alerting.
                if let Err(e) = self.ua.progress(call, false).await {
                    debug!(leg = %call, cause = %e, "180 not sent");
                }
                self.send(LegEvent::Incoming {
                    leg: call,
                    caller,
                    callee,
                });
            }
            UaEvent::Progress { call, progress } if self.ours(call) => {
                self.send(LegEvent::Progress {
                    leg: call,
                    progress,
                });
            }
            UaEvent::Answered { call } if self.ours(call) => {
                self.send(LegEvent::Answered { leg: call });
            }
            UaEvent::AudioReady { call } if self.ours(call) => {
                self.send(LegEvent::AudioReady { leg: call });
            }
            UaEvent::Dtmf { call, digit, .. } if self.ours(call) => {
                // RFC 4733 and INFO are both out of band: the media layer merges them with
                // what its in-band detector hears.
                self.send(LegEvent::Dtmf {
                    leg: call,
                    digit,
                    source: DtmfSource::Signalled,
                });
            }
            UaEvent::Held { call } if self.ours(call) => {
                self.send(LegEvent::Held { leg: call });
            }
            UaEvent::Retrieved { call } if self.ours(call) => {
                self.send(LegEvent::Retrieved { leg: call });
            }
            UaEvent::TransferRequested { call, target } if self.ours(call) => {
                self.on_transfer_requested(call, target).await;
            }
            UaEvent::TransferResult { call, status } => {
                // The peer's BYE (or ours after a successful REFER) ends the leg.
                info!(line = %self.line, leg = %call, status, "transfer result");
            }
            UaEvent::Ended { call, cause } => {
                if lock(&self.legs).remove(&call).is_none() {
                    return;
                }
                let detail = match cause.sip_status {
                    Some(status) => format!("SIP {status}: {}", cause.detail),
                    None => cause.detail.clone(),
                };
                let ended = if lock(&self.transfers).remove(&call) {
                    EndCause::new(Cause::Transferred, format!("transferred; {detail}"))
                } else {
                    EndCause {
                        cause: cause.cause,
                        q850: cause.q850,
                        detail,
                    }
                };
                self.send(LegEvent::Ended {
                    leg: call,
                    cause: ended,
                });
            }
            notice @ (UaEvent::Registration { .. }
            | UaEvent::TrunkReachable { .. }
            | UaEvent::Extension { .. }) => {
                let _ = self.notices.send(notice);
            }
            // Events about calls this line does not know (ended, or another owner's).
            UaEvent::Progress { .. }
            | UaEvent::Answered { .. }
            | UaEvent::AudioReady { .. }
            | UaEvent::Dtmf { .. }
            | UaEvent::Held { .. }
            | UaEvent::Retrieved { .. }
            | UaEvent::TransferRequested { .. } => {}
        }
    }

    /// The peer of `call` sent a REFER the user agent accepted (`202`, `100` NOTIFY sent;
    /// the user agent refused unauthenticated and malformed ones itself).
    ///
    /// * With `Replaces` naming another of our legs (an attended transfer through the
    ///   gateway): the runtime joins the two legs' far ends; the final NOTIFY says `200`,
    ///   the replaced leg is hung up as the target of an INVITE with `Replaces` would
    ///   (RFC 3891), and the referring leg ends with the peer's BYE (RFC 5589).
    /// * With `Replaces` naming a dialog elsewhere (the peer consulted the target without
    ///   the gateway): the gateway is the transferee — the runtime dials the `Refer-To`
    ///   address with the `Replaces` as a URI header, so the INVITE carries it and the
    ///   target swaps its consultation call for this one (RFC 5589 §7), and answers with
    ///   [`Line::transfer_outcome`] as for a blind transfer.
    /// * Without: a blind transfer — the runtime dials the target (or runs the flow bound
    ///   to a number of its own) and answers with [`Line::transfer_outcome`].
    async fn on_transfer_requested(&self, call: LegId, target: crate::ua::TransferTarget) {
        info!(line = %self.line, leg = %call, target = %target.uri, by = ?target.by, attended = target.replaces.is_some(), "the peer asks for a transfer");
        let mut replaces_elsewhere = None;
        if let Some(replaces) = target.replaces {
            match replaces.call.filter(|other| self.ours(*other)) {
                Some(other) => {
                    {
                        let mut transfers = lock(&self.transfers);
                        transfers.insert(call);
                        transfers.insert(other);
                    }
                    self.send(LegEvent::TransferRequested {
                        leg: call,
                        to: TransferTarget::Leg(other),
                    });
                    self.final_notify(call, 200).await;
                    if let Err(e) = self.ua.hangup(other, Cause::Transferred).await {
                        debug!(leg = %other, cause = %e, "replaced leg already gone");
                    }
                    return;
                }
                None => replaces_elsewhere = Some(replaces.dialog()),
            }
        }
        let party = match &replaces_elsewhere {
            None => transfer_party(&target.uri, &self.own, &self.trunks),
            Some(dialog) => {
                info!(leg = %call, target = %target.uri, sip_call_id = %dialog.call_id, "attended transfer to a dialog elsewhere: INVITE with Replaces");
                replacing_party(&target.uri, dialog, &self.own, &self.trunks)
            }
        };
        match party {
            Ok(party) => self.send(LegEvent::TransferRequested {
                leg: call,
                to: TransferTarget::Party(party),
            }),
            Err(status) => {
                warn!(leg = %call, target = %target.uri, status, "transfer refused");
                self.final_notify(call, status).await;
            }
        }
    }

    async fn final_notify(&self, call: LegId, status: u16) {
        if let Err(e) = self.ua.transfer_outcome(call, status).await {
            debug!(leg = %call, cause = %e, "transfer outcome not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ExtensionConfig, TrunkConfig};

    fn routing() -> Routing {
        let mut c = SipConfig::default();
        c.extensions.push(ExtensionConfig {
            user: "201".into(),
            password: "password1".into(),
            display_name: String::new(),
        });
        c.trunks.push(TrunkConfig::new(
            "pbx",
            "192.0.2.1:5060".parse().unwrap_or_else(|_| unreachable!()),
        ));
        Routing::of(&c, Some("pbx"))
    }

    #[test]
    fn addresses_become_uris_extensions_or_trunk_numbers() {
        let r = routing();
        let uri = |s: &str| Party {
            uri: s.into(),
            ..Party::default()
        };
        assert_eq!(
            r.destination(&uri("1000@127.0.0.1:5070")).unwrap().0,
            Destination::Uri("sip:1000@127.0.0.1:5070".into())
        );
        assert_eq!(
            r.destination(&uri("sip:1000@127.0.0.1")).unwrap().0,
            Destination::Uri("sip:1000@127.0.0.1".into())
        );
        assert_eq!(
            r.destination(&Party::number("201")).unwrap().0,
            Destination::Extension("201".into())
        );
        assert_eq!(
            r.destination(&Party::number("+4930123")).unwrap().0,
            Destination::Trunk {
                trunk: "pbx".into(),
                number: "+4930123".into()
            }
        );
        assert!(r.destination(&Party::default()).is_err());
        assert!(
            Routing::default()
                .destination(&Party::number("+4930123"))
                .is_err()
        );
    }

    #[test]
    fn refer_targets_are_numbers_here_addresses_elsewhere_and_never_a_trunk() {
        let own: Vec<SocketAddr> = vec!["127.0.0.1:5060".parse().unwrap()];
        let trunks: Vec<SocketAddr> = vec!["192.0.2.1:5060".parse().unwrap()];
        let t = |u: &str| transfer_party(u, &own, &trunks);
        assert_eq!(t("sip:200@127.0.0.1").unwrap(), Party::number("200"));
        assert_eq!(t("sip:200@127.0.0.1:5060").unwrap(), Party::number("200"));
        let elsewhere = t("sip:300@127.0.0.1:5070").unwrap();
        assert_eq!(elsewhere.number, "300");
        assert_eq!(elsewhere.uri, "sip:300@127.0.0.1:5070");
        assert_eq!(t("sip:+4490012345@192.0.2.1"), Err(REFER_FORBIDDEN));
        assert_eq!(t("sip:127.0.0.1"), Err(REFER_NO_USER));
        assert_eq!(t("sip:a b@"), Err(400));
        let any: Vec<SocketAddr> = vec!["0.0.0.0:5060".parse().unwrap()];
        assert_eq!(
            transfer_party("sip:200@10.0.0.5", &any, &trunks).unwrap(),
            Party::number("200")
        );
    }

    #[test]
    fn a_replaces_elsewhere_rides_on_the_address_but_never_at_home() {
        let own: Vec<SocketAddr> = vec!["127.0.0.1:5060".parse().unwrap()];
        let trunks: Vec<SocketAddr> = vec!["192.0.2.1:5060".parse().unwrap()];
        let dialog = crate::refer::DialogRef::parse("c1@pbx;to-tag=t;from-tag=f").unwrap();
        let p = replacing_party("sip:300@127.0.0.1:5070", &dialog, &own, &trunks).unwrap();
        assert_eq!(p.number, "300");
        let (uri, back) = crate::refer::split_uri_headers(&p.uri).unwrap();
        assert_eq!(uri, "sip:300@127.0.0.1:5070");
        assert_eq!(back, Some(dialog.clone()));
        assert_eq!(
            replacing_party("sip:300@127.0.0.1", &dialog, &own, &trunks),
            Err(REPLACES_UNKNOWN),
            "a dialog at the gateway's own address that it does not have"
        );
        assert_eq!(
            replacing_party("sip:300@192.0.2.1", &dialog, &own, &trunks),
            Err(REFER_FORBIDDEN)
        );
    }

    #[test]
    fn errors_map_to_the_contract() {
        assert!(leg_error("sip", UaError::Route("x".into())).fails_over());
        assert!(!leg_error("sip", UaError::Refused(486)).fails_over());
        assert!(matches!(
            leg_error("sip", UaError::NoCall(LegId::nil())),
            LegError::NoSuchLeg { .. }
        ));
    }
}
