//! The user agent's task: one owner for the transaction layer, calls and their dialogs,
//! registrations, the registrar and the access guard. It reads UDP datagrams, TCP
//! frames and commands, and runs its timers (2xx retransmission, ring timeouts,
//! registration refreshes, qualify pings) from one heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::Streams;
use super::registrar::{RegisterError, Registrar};
use super::registration::{RegAction, RegClient, RegState};
use super::security::{Admission, Cidr, Guard};
use super::transport::{Inbound, Net};
use super::{
    AuthIdentity, CallId, Command, Destination, DtmfSource, EndCause, ExtensionStatus, Party,
    Progress, Replaces, Status, TransferTarget, UaError, UaEvent,
};
use crate::auth::{Answer, Challenge, ClientAuth, DigestServer, Verdict};
use crate::cause::{Cause, cause_from_sip, reason_header_q850, sip_status_for};
use crate::config::SipConfig;
use crate::dialog::Dialog;
use crate::message::{
    self, Limits, Message, Method, NameAddr, Request, Response, Via, not_implemented, reason_phrase,
};
use crate::rtp::{JitterConfig, PortRange, RtpControl, RtpStream, SessionParams};
use crate::sdp::{self, Codec, Direction, LocalMedia, Negotiated, Sdp};
use crate::transaction::{Incoming, Peer, TransactionLayer, Transport, TxId, TxOutput};

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO, REGISTER";

/// The SIP extensions (option tags) this user agent implements: an INVITE that requires
/// any other gets `420` (RFC 3261 §8.2.2.3) rather than a call that would not behave as
/// the caller asked (`100rel` without PRACK, `timer` without refreshes).
const SUPPORTED: &str = "replaces";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Invite(CallId),
    Reinvite(CallId),
    Bye,
    Cancel,
    Refer(CallId),
    Notify,
    Info,
    Register(usize),
    Qualify(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Retx2xx(CallId),
    Ring(CallId),
    Reg(usize),
    Qualify(usize),
    Sweep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Incoming, not answered.
    Ringing,
    /// Incoming, 200 sent, waiting for the ACK.
    AwaitAck,
    /// Outgoing, no final response.
    Calling,
    /// Talking.
    Confirmed,
}

#[derive(Debug)]
struct Retx {
    bytes: Vec<u8>,
    peer: Peer,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

struct Call {
    incoming: bool,
    state: State,
    /// Emitted `Ended` already; kept only to finish the INVITE transaction.
    ended: bool,
    sip_call_id: String,
    local_tag: String,
    invite: Request,
    invite_tx: TxId,
    peer: Peer,
    dialog: Option<Dialog>,
    local: LocalMedia,
    negotiated: Option<Negotiated>,
    /// The SDP we answer with (incoming), or the offer we made (late offer / outgoing).
    sdp_body: String,
    late_offer: bool,
    ctl: RtpControl,
    audio_ready: bool,
    retx: Option<Retx>,
    got_provisional: bool,
    cancel_pending: bool,
    auth_nonce: Option<String>,
    trunk: Option<usize>,
    /// Who the far end is, as far as the gateway knows: how an incoming call
    /// authenticated, or the extension / trunk an outgoing call went to. A REFER is
    /// carried out only for a known far end (see `referrer`).
    auth: Option<AuthIdentity>,
    ack: Option<(Vec<u8>, Peer)>,
    held_by_remote: bool,
    local_hold: bool,
    pending: Option<(TxId, oneshot::Sender<Result<(), UaError>>)>,
    refer_sub: bool,
    ring_deadline: Instant,
}

pub(crate) struct Core {
    cfg: SipConfig,
    limits: Limits,
    net: Net,
    events: mpsc::UnboundedSender<UaEvent>,
    layer: TransactionLayer,
    ip: IpAddr,
    udp_port: u16,
    tcp_port: Option<u16>,
    /// Boxed: a call's state is about a kilobyte, and a map keeps up to twice its entries
    /// in empty slots (and four times while it grows).
    calls: HashMap<CallId, Box<Call>>,
    by_dialog: HashMap<(String, String), CallId>,
    invite_server: HashMap<TxId, CallId>,
    owners: HashMap<TxId, Owner>,
    digest: DigestServer,
    guard: Guard,
    registrar: Registrar,
    regs: Vec<Option<RegClient>>,
    reachable: Vec<Option<bool>>,
    trunk_cidrs: Vec<Vec<Cidr>>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    ports: PortRange,
    client_auth: ClientAuth,
    jitter: JitterConfig,
    codecs: Vec<Codec>,
    /// Each call's RTP stream until the media layer takes it (shared with the handle so
    /// `take_audio` is a plain call).
    streams: Streams,
}

fn rand_hex(bytes: usize) -> String {
    let mut v = vec![0u8; bytes];
    rand::fill(&mut v[..]);
    hex::encode(v)
}

fn new_branch() -> String {
    format!("z9hG4bK{}", rand_hex(8))
}

fn peer_of_uri(uri: &rsip::Uri) -> Option<Peer> {
    let host = message::uri_host(uri);
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let transport = match uri.transport() {
        Some(rsip::Transport::Tcp) => Transport::Tcp,
        _ => Transport::Udp,
    };
    Some(Peer {
        addr: SocketAddr::new(ip, message::uri_port(uri).unwrap_or(5060)),
        transport,
    })
}

fn party_of(value: Option<&str>) -> Party {
    match value.map(NameAddr::parse) {
        Some(Ok(n)) => Party {
            number: n.user(),
            display_name: n.display_name.clone(),
            uri: n.uri,
        },
        _ => Party::default(),
    }
}

impl Core {
    pub(crate) fn new(
        cfg: SipConfig,
        mut net: Net,
        events: mpsc::UnboundedSender<UaEvent>,
        streams: Streams,
    ) -> Result<Self, UaError> {
        let limits = Limits::default();
        net.spawn_listener(limits);
        let udp = net.udp_addr();
        let ip = cfg.public_ip.unwrap_or(if udp.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            udp.ip()
        });
        let now = Instant::now();
        let digest = DigestServer::new(
            &cfg.realm,
            &cfg.challenge_algorithms,
            Duration::from_secs(cfg.nonce_lifetime_secs),
            now,
        );
        let trunk_cidrs = cfg
            .trunks
            .iter()
            .map(|t| {
                t.trusted_sources
                    .iter()
                    .filter_map(|c| Cidr::parse(c).ok())
                    .collect()
            })
            .collect();
        let codecs = cfg
            .rtp
            .codecs
            .iter()
            .filter_map(|c| Codec::from_name(c))
            .collect();
        let jitter = JitterConfig {
            min_delay: Duration::from_millis(u64::from(cfg.rtp.jitter_min_ms)),
            max_delay: Duration::from_millis(u64::from(cfg.rtp.jitter_max_ms)),
        };
        let mut core = Self {
            limits,
            events,
            layer: TransactionLayer::new(cfg.timers),
            ip,
            udp_port: udp.port(),
            tcp_port: net.tcp_addr().map(|a| a.port()),
            net,
            calls: HashMap::new(),
            by_dialog: HashMap::new(),
            invite_server: HashMap::new(),
            owners: HashMap::new(),
            digest,
            guard: Guard::new(&cfg.security),
            registrar: Registrar::new(60, 3600),
            regs: Vec::new(),
            reachable: vec![None; cfg.trunks.len()],
            trunk_cidrs,
            timers: BinaryHeap::new(),
            ports: PortRange::new(cfg.rtp.port_min, cfg.rtp.port_max),
            client_auth: ClientAuth::default(),
            jitter,
            codecs,
            streams,
            cfg,
        };
        for i in 0..core.cfg.trunks.len() {
            let t = &core.cfg.trunks[i];
            let reg = if t.register {
                let domain = t.domain.clone().unwrap_or_else(|| t.proxy.ip().to_string());
                let user = t.username.clone().unwrap_or_default();
                let contact = core.contact(&user, t.transport);
                Some(RegClient::new(
                    &user,
                    t.password.as_deref().unwrap_or_default(),
                    &domain,
                    &contact,
                    t.expires_secs,
                ))
            } else {
                None
            };
            let mut reg = reg;
            if let Some(r) = reg.as_mut() {
                r.schedule(now);
            }
            core.regs.push(reg);
            if core.regs[i].is_some() {
                core.arm(now, Timer::Reg(i));
            }
            if core.cfg.trunks[i].qualify {
                core.arm(now, Timer::Qualify(i));
            }
        }
        core.arm(now + Duration::from_secs(10), Timer::Sweep);
        Ok(core)
    }

    fn arm(&mut self, at: Instant, t: Timer) {
        self.timers.push(Reverse((at, t)));
    }

    fn emit(&self, e: UaEvent) {
        let _ = self.events.send(e);
    }

    fn hostport(&self, transport: Transport) -> String {
        let port = match transport {
            Transport::Udp => self.udp_port,
            Transport::Tcp => self.tcp_port.unwrap_or(self.udp_port),
        };
        match self.ip {
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            IpAddr::V4(v4) => format!("{v4}:{port}"),
        }
    }

    fn contact(&self, user: &str, transport: Transport) -> String {
        let t = if transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        if user.is_empty() {
            format!("<sip:{}{t}>", self.hostport(transport))
        } else {
            format!("<sip:{user}@{}{t}>", self.hostport(transport))
        }
    }

    fn via(&self, transport: Transport) -> String {
        format!(
            "SIP/2.0/{} {};branch={};rport",
            transport.via_token(),
            self.hostport(transport),
            new_branch()
        )
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut inbound = self
            .net
            .inbound_rx
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1);
        let udp = self.net.udp.clone();
        let mut buf = vec![0u8; 65_536];
        loop {
            let deadline = self.next_deadline();
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        self.shutdown();
                        let _ = reply.send(());
                        break;
                    }
                    Some(c) => self.command(c),
                    None => {
                        self.shutdown();
                        break;
                    }
                },
                r = udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let data = buf[..n].to_vec();
                        self.on_bytes(&data, Peer { addr: from, transport: Transport::Udp });
                    }
                    Err(e) => debug!(error = %e, "UDP receive error"),
                },
                Some(inb) = inbound.recv() => match inb {
                    Inbound::Frame { bytes, peer } => self.on_bytes(&bytes, peer),
                    Inbound::Up { addr, tx } => self.net.conn_up(addr, tx),
                    Inbound::Down { addr } => self.net.conn_down(addr),
                },
                () = sleep => {}
            }
            self.on_timers(Instant::now());
        }
    }

    fn next_deadline(&mut self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let t = self
            .timers
            .peek()
            .map(|Reverse((at, _))| *at)
            .unwrap_or(far);
        self.layer.next_deadline().map_or(t, |l| l.min(t))
    }

    fn send(&mut self, peer: Peer, bytes: Vec<u8>) {
        tracing::trace!(to = %peer.addr, transport = ?peer.transport, first = %first_line(&bytes), "sip out");
        self.net.send(peer, bytes, self.limits);
    }

    fn perform(&mut self, outs: Vec<TxOutput>, now: Instant) {
        for o in outs {
            match o {
                TxOutput::Send { peer, bytes } => self.send(peer, bytes),
                TxOutput::Response { id, response } => self.on_client_response(id, response, now),
                TxOutput::Timeout { id, .. } => self.on_client_timeout(id, now),
                TxOutput::Terminated { id } => {
                    self.owners.remove(&id);
                    self.invite_server.remove(&id);
                }
            }
        }
    }

    fn send_request(&mut self, mut req: Request, peer: Peer, owner: Owner, now: Instant) -> TxId {
        req.headers.push_front("Via", self.via(peer.transport));
        if req.headers.get("User-Agent").is_none() {
            req.headers.push("User-Agent", self.cfg.user_agent.clone());
        }
        let (id, outs) = self.layer.send_request(req, peer, now);
        self.owners.insert(id, owner);
        self.perform(outs, now);
        id
    }

    fn respond(&mut self, tx: TxId, mut resp: Response, now: Instant) {
        if resp.headers.get("Server").is_none() {
            resp.headers.push("Server", self.cfg.user_agent.clone());
        }
        let outs = self.layer.respond(tx, &resp, now);
        self.perform(outs, now);
    }

    fn reply(&mut self, tx: TxId, req: &Request, status: u16, now: Instant) {
        let mut r = Response::to_request(req, status, reason_phrase(status));
        if status >= 200 && req.key().is_ok_and(|k| k.to_tag.is_none()) {
            r.set_to_tag(&rand_hex(4));
        }
        if status == 405 || status == 501 || (req.method == Method::Options && status == 200) {
            r.headers.push("Allow", ALLOW);
        }
        if req.method == Method::Options && status == 200 {
            r.headers.push("Accept", "application/sdp");
            r.headers.push("Supported", SUPPORTED);
        }
        self.respond(tx, r, now);
    }

    // ---------------------------------------------------------------- incoming bytes

    fn on_bytes(&mut self, data: &[u8], src: Peer) {
        let now = Instant::now();
        tracing::trace!(from = %src.addr, transport = ?src.transport, first = %first_line(data), "sip in");
        match message::parse(data, &self.limits) {
            Ok(Message::Request(req)) => self.on_request(req, src, now),
            Ok(Message::Response(resp)) => match self.layer.on_response(resp.clone(), now) {
                Some(outs) => self.perform(outs, now),
                None => self.on_stray_response(&resp),
            },
            Err(refusal) => {
                debug!(from = %src.addr, error = %refusal.error, "refused message");
                if let Some(r) = refusal.reply
                    && self.guard.admit(src.addr.ip(), false, now) == Admission::Allow
                {
                    self.send(src, r.to_bytes());
                }
            }
        }
    }

    fn trusted_trunk(&self, ip: IpAddr) -> Option<usize> {
        self.trunk_cidrs
            .iter()
            .position(|l| l.iter().any(|c| c.contains(ip)))
    }

    fn on_request(&mut self, mut req: Request, src: Peer, now: Instant) {
        // RFC 3261 §18.2.1 / RFC 3581: record where it really came from, so responses go
        // back there (symmetric responses through NAT).
        if let Some(v) = req.headers.get_mut("Via") {
            let parsed = Via::parse(v).ok();
            if let Some(p) = parsed {
                if p.host != src.addr.ip().to_string() && p.received.is_none() {
                    v.push_str(&format!(";received={}", src.addr.ip()));
                }
                if p.rport == Some(None) {
                    *v = v.replacen(";rport", &format!(";rport={}", src.addr.port()), 1);
                }
            }
        }
        let trusted = self.trusted_trunk(src.addr.ip());
        match self.guard.admit(src.addr.ip(), trusted.is_some(), now) {
            Admission::Allow => {}
            Admission::RateLimited => {
                debug!(from = %src.addr, "rate limited");
                return;
            }
            Admission::Denied | Admission::Banned => return,
        }
        match self.layer.on_request(&req, src, now) {
            Incoming::Absorbed(outs) => self.perform(outs, now),
            Incoming::Ack => self.on_ack(&req, now),
            Incoming::New(tx) => self.dispatch(tx, req, src, trusted, now),
        }
    }

    fn dispatch(
        &mut self,
        tx: TxId,
        req: Request,
        src: Peer,
        trusted: Option<usize>,
        now: Instant,
    ) {
        let Ok(key) = req.key() else { return };
        if let Some(to_tag) = &key.to_tag {
            let id = self
                .by_dialog
                .get(&(key.call_id.clone(), to_tag.clone()))
                .copied();
            match id {
                Some(id) if self.calls.get(&id).is_some_and(|c| !c.ended) => {
                    self.in_dialog(id, tx, req, src, trusted, now)
                }
                _ if req.method == Method::Options => self.reply(tx, &req, 200, now),
                _ => self.reply(tx, &req, 481, now),
            }
            return;
        }
        match &req.method {
            Method::Invite => {
                let unsupported = unsupported_requirements(&req);
                if unsupported.is_empty() {
                    self.incoming_invite(tx, req, src, trusted, now);
                } else {
                    debug!(from = %src.addr, %unsupported, "INVITE requires extensions this user agent lacks: 420");
                    let mut r = Response::to_request(&req, 420, reason_phrase(420));
                    r.set_to_tag(&rand_hex(4));
                    r.headers.push("Unsupported", unsupported);
                    self.respond(tx, r, now);
                }
            }
            Method::Register => self.on_register(tx, req, src, now),
            Method::Options => self.reply(tx, &req, 200, now),
            Method::Cancel => self.on_cancel(tx, &req, now),
            Method::Bye | Method::Refer | Method::Info | Method::Notify => {
                self.reply(tx, &req, 481, now)
            }
            Method::Other(_) => {
                let r = not_implemented(&req, ALLOW);
                self.respond(tx, r, now);
            }
            _ => self.reply(tx, &req, 405, now),
        }
    }

    /// Digest-authenticates a request from an extension; answers the challenge or the
    /// refusal itself and returns `None` when the request must not go on.
    fn authenticate(&mut self, tx: TxId, req: &Request, src: Peer, now: Instant) -> Option<String> {
        let Some(h) = req.headers.get("Authorization") else {
            if self.cfg.security.challenge_unknown && !self.cfg.extensions.is_empty() {
                self.challenge(tx, req, false, now);
            } else {
                self.reply(tx, req, 403, now);
            }
            return None;
        };
        let exts = &self.cfg.extensions;
        let verdict = match Answer::parse(h) {
            Ok(a) => self.digest.verify(&a, req.method.as_str(), now, |u| {
                exts.iter()
                    .find(|e| e.user == u)
                    .map(|e| e.password.clone())
            }),
            Err(e) => Verdict::Failed(e.to_string()),
        };
        match verdict {
            Verdict::Ok(user) => {
                self.guard.auth_ok(src.addr.ip());
                Some(user)
            }
            Verdict::Stale => {
                self.challenge(tx, req, true, now);
                None
            }
            Verdict::Failed(why) => {
                let banned = self.guard.auth_failed(src.addr.ip(), now);
                warn!(from = %src.addr, %why, banned, "authentication failed");
                self.reply(tx, req, 403, now);
                None
            }
        }
    }

    fn challenge(&mut self, tx: TxId, req: &Request, stale: bool, now: Instant) {
        let mut r = Response::to_request(req, 401, reason_phrase(401));
        r.set_to_tag(&rand_hex(4));
        for c in self.digest.challenge(now, stale) {
            r.headers.push("WWW-Authenticate", c);
        }
        self.respond(tx, r, now);
    }

    fn on_register(&mut self, tx: TxId, req: Request, src: Peer, now: Instant) {
        let Some(user) = self.authenticate(tx, &req, src, now) else {
            return;
        };
        let to_user = party_of(req.headers.get("To")).number;
        if to_user != user {
            let banned = self.guard.auth_failed(src.addr.ip(), now);
            warn!(%user, %to_user, banned, "REGISTER for another user");
            self.reply(tx, &req, 403, now);
            return;
        }
        let before = self.registrar.lookup(&user, now).is_some();
        match self
            .registrar
            .register(&user, &req, src.addr, src.transport, now)
        {
            Ok(bindings) => {
                let mut r = Response::to_request(&req, 200, "OK");
                r.set_to_tag(&rand_hex(4));
                for (c, secs) in &bindings {
                    r.headers.push("Contact", format!("<{c}>;expires={secs}"));
                }
                self.respond(tx, r, now);
                let after = !bindings.is_empty();
                if before != after {
                    info!(%user, registered = after, "extension registration");
                    self.emit(UaEvent::Extension {
                        user,
                        registered: after,
                    });
                }
            }
            Err(RegisterError::IntervalTooBrief(min)) => {
                let mut r = Response::to_request(&req, 423, reason_phrase(423));
                r.set_to_tag(&rand_hex(4));
                r.headers.push("Min-Expires", min.to_string());
                self.respond(tx, r, now);
            }
            Err(RegisterError::Bad(why)) => {
                debug!(%why, "bad REGISTER");
                self.reply(tx, &req, 400, now);
            }
        }
    }

    /// Whether trunk `t` has as many calls up (ringing or talking, either way) as its
    /// `max_calls` allows.
    fn trunk_full(&self, t: usize) -> bool {
        let max = self.cfg.trunks[t].max_calls;
        max > 0
            && self
                .calls
                .values()
                .filter(|c| !c.ended && c.trunk == Some(t))
                .count()
                >= usize::try_from(max).unwrap_or(usize::MAX)
    }

    fn local_media(&self, port: u16) -> LocalMedia {
        LocalMedia {
            addr: self.ip,
            port,
            codecs: self.codecs.clone(),
            telephone_event: Some(self.cfg.rtp.telephone_event_pt),
            direction: Direction::SendRecv,
            session_id: u64::from(rand::random::<u32>()),
            version: 1,
        }
    }

    fn bind_stream(&self, id: CallId) -> Result<(RtpStream, RtpControl, u16), UaError> {
        let placeholder = SessionParams {
            codec: self.codecs.first().copied().unwrap_or(Codec::Pcmu),
            payload_type: self
                .codecs
                .first()
                .copied()
                .unwrap_or(Codec::Pcmu)
                .payload_type(),
            telephone_event: None,
            remote: None,
            direction: Direction::SendRecv,
            symmetric: true,
        };
        let (mut stream, ctl) = RtpStream::bind(&self.ports, self.ip, placeholder, self.jitter)?;
        let events = self.events.clone();
        stream.set_dtmf_sink(Box::new(move |digit| {
            let _ = events.send(UaEvent::Dtmf {
                call: id,
                digit,
                source: DtmfSource::Rfc4733,
            });
        }));
        let port = stream.local_addr()?.port();
        Ok((stream, ctl, port))
    }

    fn incoming_invite(
        &mut self,
        tx: TxId,
        req: Request,
        src: Peer,
        trusted: Option<usize>,
        now: Instant,
    ) {
        if let Some(t) = trusted
            && self.trunk_full(t)
        {
            // 503: the PBX takes its next route (RFC 3261 §21.5.4), as it would for a
            // gateway that is down; nothing here is busy in the callee's sense.
            info!(trunk = %self.cfg.trunks[t].name, max = self.cfg.trunks[t].max_calls, "trunk at its call limit: INVITE refused");
            self.reply(tx, &req, 503, now);
            return;
        }
        let auth = match trusted {
            Some(t) => AuthIdentity::Trunk(self.cfg.trunks[t].name.clone()),
            None => match self.authenticate(tx, &req, src, now) {
                Some(u) => AuthIdentity::Extension(u),
                None => return,
            },
        };
        let replaces = match self.replaced_call(&req) {
            Ok(r) => r,
            Err(status) => {
                info!(%status, from = %src.addr, "INVITE with a Replaces the gateway cannot honour: refused");
                self.reply(tx, &req, status, now);
                return;
            }
        };
        let mut caller = party_of(req.headers.get("From"));
        if let AuthIdentity::Extension(u) = &auth {
            // An extension calls as itself: its number is what it authenticated as.
            caller.number = u.clone();
            if caller.display_name.is_empty()
                && let Some(e) = self.cfg.extensions.iter().find(|e| &e.user == u)
            {
                caller.display_name = e.display_name.clone();
            }
        }
        let mut callee = party_of(req.headers.get("To"));
        if let Ok(ruri) = NameAddr::parse(&req.uri) {
            callee.number = ruri.user();
        }
        let offer = if req.body.is_empty() {
            None
        } else {
            match Sdp::parse(&req.body) {
                Ok(s) => Some(s),
                Err(e) => {
                    debug!(error = %e, "bad SDP offer");
                    self.reply(tx, &req, 400, now);
                    return;
                }
            }
        };
        let id = Uuid::now_v7();
        let (stream, ctl, port) = match self.bind_stream(id) {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "no RTP port for an incoming call");
                self.reply(tx, &req, 503, now);
                return;
            }
        };
        let local = self.local_media(port);
        let (sdp_body, negotiated, late_offer) = match &offer {
            Some(o) => match sdp::answer(o, &local) {
                Ok((body, n)) => {
                    ctl.update(SessionParams::from_negotiated(&n, true));
                    (body, Some(n), false)
                }
                Err(_) => {
                    self.reply(tx, &req, 488, now);
                    return;
                }
            },
            None => (sdp::offer(&local), None, true),
        };
        let local_tag = rand_hex(6);
        let contact = self.contact(&callee.number, src.transport);
        let dialog = match Dialog::uas(&req, &local_tag, &contact) {
            Ok(d) => d,
            Err(e) => {
                debug!(error = %e, "INVITE cannot create a dialog");
                self.reply(tx, &req, 400, now);
                return;
            }
        };
        let sip_call_id = dialog.id.call_id.clone();
        self.reply_100(tx, &req, now);
        let ring_deadline = now + self.cfg.ring_timeout();
        let call = Call {
            incoming: true,
            state: State::Ringing,
            ended: false,
            sip_call_id: sip_call_id.clone(),
            local_tag: local_tag.clone(),
            invite: req,
            invite_tx: tx,
            peer: src,
            dialog: Some(dialog),
            local,
            negotiated,
            sdp_body,
            late_offer,
            ctl,
            audio_ready: false,
            retx: None,
            got_provisional: false,
            cancel_pending: false,
            auth_nonce: None,
            trunk: trusted,
            auth: Some(auth.clone()),
            ack: None,
            held_by_remote: false,
            local_hold: false,
            pending: None,
            refer_sub: false,
            ring_deadline,
        };
        self.calls.insert(id, Box::new(call));
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, stream);
        self.by_dialog.insert((sip_call_id.clone(), local_tag), id);
        self.invite_server.insert(tx, id);
        self.arm(ring_deadline, Timer::Ring(id));
        info!(call = %id, %sip_call_id, from = %src.addr, replaces = ?replaces, "incoming call");
        self.emit(UaEvent::Incoming {
            call: id,
            caller,
            callee,
            source: src.addr,
            auth,
            sip_call_id,
            replaces,
        });
    }

    fn reply_100(&mut self, tx: TxId, req: &Request, now: Instant) {
        let r = Response::to_request(req, 100, "Trying");
        self.respond(tx, r, now);
    }

    fn on_cancel(&mut self, tx: TxId, req: &Request, now: Instant) {
        let Some(inv) = self.layer.find_invite_for_cancel(req) else {
            self.reply(tx, req, 481, now);
            return;
        };
        self.reply(tx, req, 200, now);
        if !self.layer.is_pending_invite(inv) {
            return;
        }
        let Some(&id) = self.invite_server.get(&inv) else {
            return;
        };
        if let Some(c) = self.calls.get(&id) {
            let mut r = Response::to_request(&c.invite, 487, reason_phrase(487));
            r.set_to_tag(&c.local_tag);
            self.respond(inv, r, now);
        }
        self.end_call(id, Cause::Cancelled, None, "caller cancelled");
        self.forget(id);
    }

    fn on_ack(&mut self, req: &Request, now: Instant) {
        let Ok(k) = req.key() else { return };
        let Some(tag) = k.to_tag else { return };
        let Some(&id) = self.by_dialog.get(&(k.call_id, tag)) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        c.retx = None;
        if c.late_offer && !req.body.is_empty() {
            c.late_offer = false;
            if let Ok(ans) = Sdp::parse(&req.body)
                && let Ok(n) = sdp::accept_answer(&c.local, &ans)
            {
                c.ctl.update(SessionParams::from_negotiated(&n, true));
                c.negotiated = Some(n);
            }
        }
        if c.state == State::AwaitAck {
            c.state = State::Confirmed;
            self.emit(UaEvent::Answered { call: id });
        }
        let _ = now;
    }

    fn on_stray_response(&mut self, resp: &Response) {
        // A 2xx retransmission after the INVITE transaction ended: re-send our ACK.
        if !(200..300).contains(&resp.status) {
            return;
        }
        let Ok(k) = resp.key() else { return };
        if k.cseq_method != Method::Invite {
            return;
        }
        if let Some(&id) = self.by_dialog.get(&(k.call_id, k.from_tag))
            && let Some((bytes, peer)) = self.calls.get(&id).and_then(|c| c.ack.clone())
        {
            self.send(peer, bytes);
        }
    }

    // ---------------------------------------------------------------- in-dialog

    fn in_dialog_peer(&self, c: &Call) -> Peer {
        peer_for(c.incoming, c.peer, c.dialog.as_ref())
    }
}

/// Where in-dialog requests go: the first route, else (outgoing calls) the remote
/// target, else where the call came from (incoming: the source, NAT-friendly).
fn peer_for(incoming: bool, fallback: Peer, dialog: Option<&Dialog>) -> Peer {
    {
        if let Some(d) = dialog {
            if let Some(first) = d.route_set.first()
                && let Ok(n) = NameAddr::parse(first)
                && let Some(p) = peer_of_uri(&n.parsed)
            {
                return p;
            }
            if !incoming
                && let Ok(u) = message::parse_uri(&d.remote_target)
                && let Some(p) = peer_of_uri(&u)
            {
                return Peer {
                    transport: fallback.transport,
                    ..p
                };
            }
        }
        fallback
    }
}

impl Core {
    fn in_dialog(
        &mut self,
        id: CallId,
        tx: TxId,
        req: Request,
        src: Peer,
        trusted: Option<usize>,
        now: Instant,
    ) {
        let check = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.dialog.as_mut())
            .map(|d| d.on_request(&req));
        if let Some(Err(e)) = check {
            debug!(call = %id, error = %e, "in-dialog request refused");
            self.reply(tx, &req, 500, now);
            return;
        }
        match &req.method {
            Method::Bye => {
                self.reply(tx, &req, 200, now);
                let q = req.headers.get("Reason").and_then(reason_header_q850);
                let cause = q.map_or(Cause::Normal, Cause::from_q850);
                self.end_call(id, cause, q, "remote hangup");
                self.forget(id);
            }
            Method::Invite => self.reinvite(id, tx, req, now),
            Method::Refer => self.on_refer(id, tx, req, src, trusted, now),
            Method::Info => {
                let digit = dtmf_from_info(&req);
                self.reply(tx, &req, 200, now);
                if let Some(digit) = digit {
                    self.emit(UaEvent::Dtmf {
                        call: id,
                        digit,
                        source: DtmfSource::Info,
                    });
                }
            }
            Method::Notify => {
                self.reply(tx, &req, 200, now);
                if req
                    .headers
                    .get("Event")
                    .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer"))
                {
                    let text = String::from_utf8_lossy(&req.body);
                    let status = text
                        .split_ascii_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse::<u16>().ok());
                    if let Some(s) = status.filter(|s| *s >= 200) {
                        self.emit(UaEvent::TransferResult {
                            call: id,
                            status: s,
                        });
                    }
                }
            }
            Method::Options => self.reply(tx, &req, 200, now),
            Method::Other(_) => {
                let r = not_implemented(&req, ALLOW);
                self.respond(tx, r, now);
            }
            _ => self.reply(tx, &req, 405, now),
        }
    }

    fn ok_with_sdp(&self, c: &Call, req: &Request, body: &str) -> Response {
        let mut r = Response::to_request(req, 200, "OK");
        r.set_to_tag(&c.local_tag);
        if let Some(d) = &c.dialog {
            r.headers.push("Contact", d.local_contact.clone());
        }
        if c.incoming
            && req.method == Method::Invite
            && c.invite.headers.get("Record-Route").is_some()
        {
            Dialog::copy_record_route(req, &mut r);
        }
        r.headers.push("Allow", ALLOW);
        r.headers.push("Content-Type", "application/sdp");
        r.body = body.as_bytes().to_vec();
        r
    }

    fn reinvite(&mut self, id: CallId, tx: TxId, req: Request, now: Instant) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.pending.is_some() {
            // Glare: our own re-INVITE is in flight (RFC 3261 §14.2).
            self.reply(tx, &req, 491, now);
            return;
        }
        let offer = if req.body.is_empty() {
            None
        } else {
            Sdp::parse(&req.body).ok()
        };
        let mut local = c.local.clone();
        local.version += 1;
        local.direction = if c.local_hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let body = match &offer {
            Some(o) => match sdp::answer(o, &local) {
                Ok((body, n)) => {
                    // The peer holds us when it no longer wants to receive (sendonly,
                    // inactive) or gives no address (RFC 2543's c=0.0.0.0).
                    let held = o.audio().is_some_and(|m| !m.direction.receives())
                        || o.audio_addr().is_none();
                    c.ctl.update(SessionParams::from_negotiated(&n, true));
                    c.negotiated = Some(n);
                    let was = c.held_by_remote;
                    c.held_by_remote = held;
                    c.local = local;
                    match (was, held) {
                        (false, true) => {
                            let _ = self.events.send(UaEvent::Held { call: id });
                        }
                        (true, false) => {
                            let _ = self.events.send(UaEvent::Retrieved { call: id });
                        }
                        _ => {}
                    }
                    body
                }
                Err(_) => {
                    let mut r = Response::to_request(&req, 488, reason_phrase(488));
                    r.set_to_tag(&c.local_tag);
                    self.respond(tx, r, now);
                    return;
                }
            },
            None => {
                // An offerless re-INVITE: offer in the 200, answer in the ACK.
                c.late_offer = true;
                c.local = local.clone();
                sdp::offer(&local)
            }
        };
        let Some(c) = self.calls.get(&id) else { return };
        let r = self.ok_with_sdp(c, &req, &body);
        self.start_2xx(id, tx, r, now);
    }

    /// Sends a 2xx to an INVITE and retransmits it until the ACK (RFC 3261 §13.3.1.4).
    fn start_2xx(&mut self, id: CallId, tx: TxId, r: Response, now: Instant) {
        let bytes = r.to_bytes();
        let peer = self.layer.peer(tx);
        self.respond(tx, r, now);
        let t1 = self.cfg.timers.t1;
        if let (Some(c), Some(peer)) = (self.calls.get_mut(&id), peer)
            && !peer.transport.reliable()
        {
            c.retx = Some(Retx {
                bytes,
                peer,
                interval: t1,
                next: now + t1,
                give_up: now + 64 * t1,
            });
            self.arm(now + t1, Timer::Retx2xx(id));
        }
    }

    /// Our live call with the dialog a `Replaces` names. RFC 3891 §3 has `to-tag` as our
    /// tag and `from-tag` as the peer's; the swapped reading is accepted too, as some
    /// transferors build it from their own point of view (both tags must match either way,
    /// and they are random: nobody outside the dialog can name it).
    fn call_of_dialog(&self, r: &crate::refer::DialogRef) -> Option<CallId> {
        self.calls
            .iter()
            .find(|(_, c)| {
                !c.ended
                    && c.sip_call_id == r.call_id
                    && c.dialog.as_ref().is_some_and(|d| {
                        (d.id.local_tag == r.to_tag && d.id.remote_tag == r.from_tag)
                            || (d.id.local_tag == r.from_tag && d.id.remote_tag == r.to_tag)
                    })
            })
            .map(|(id, _)| *id)
    }

    /// The call an incoming INVITE's `Replaces` (RFC 3891) takes the place of, or the
    /// status to refuse it with: `400` for more than one or a malformed one, `481` when no
    /// confirmed dialog of ours matches (an early dialog is not replaced: an incoming one
    /// must not be by §3, and the gateway's own ringing calls are not handed over either),
    /// `486` for `early-only` naming a confirmed dialog (§3).
    fn replaced_call(&self, req: &Request) -> Result<Option<CallId>, u16> {
        let values: Vec<&str> = req.headers.get_all("Replaces").collect();
        let value = match values.as_slice() {
            [] => return Ok(None),
            [one] => *one,
            _ => return Err(400),
        };
        let r = crate::refer::DialogRef::parse(value).map_err(|_| 400u16)?;
        let id = self.call_of_dialog(&r).ok_or(481u16)?;
        match self.calls.get(&id).map(|c| c.state) {
            Some(State::Confirmed) if r.early_only => Err(486),
            Some(State::Confirmed) => Ok(Some(id)),
            _ => Err(481),
        }
    }

    /// Who sends a REFER on call `id` from `src`, if the gateway may act on it: a trunk's
    /// trusted source, or the far end the call already knows (an authenticated caller, the
    /// extension or trunk we called) speaking from the address the dialog has. A REFER
    /// can make the gateway dial (a modem, a trunk): an unknown far end — a plain `sip:`
    /// address a flow called — must not be able to (toll fraud).
    fn referrer(&self, id: CallId, src: Peer, trusted: Option<usize>) -> Option<AuthIdentity> {
        if let Some(t) = trusted {
            return Some(AuthIdentity::Trunk(self.cfg.trunks[t].name.clone()));
        }
        let c = self.calls.get(&id)?;
        let from_peer =
            src.addr.ip() == c.peer.addr.ip() || src.addr.ip() == self.in_dialog_peer(c).addr.ip();
        if from_peer { c.auth.clone() } else { None }
    }

    fn on_refer(
        &mut self,
        id: CallId,
        tx: TxId,
        req: Request,
        src: Peer,
        trusted: Option<usize>,
        now: Instant,
    ) {
        // RFC 3515 §2.4.1: exactly one Refer-To.
        let refer_tos: Vec<&str> = req.headers.get_all("Refer-To").collect();
        let [rt] = refer_tos.as_slice() else {
            debug!(call = %id, count = refer_tos.len(), "REFER without exactly one Refer-To: 400");
            self.reply(tx, &req, 400, now);
            return;
        };
        let Some(by) = self.referrer(id, src, trusted) else {
            warn!(call = %id, from = %src.addr, "REFER from a far end that is not authenticated: refused");
            self.reply(tx, &req, 403, now);
            return;
        };
        let refer_to = match crate::refer::parse_refer_to(rt) {
            Ok(r) => r,
            Err(e) => {
                // A malformed Replaces must not quietly become a blind transfer.
                warn!(call = %id, cause = %e, "REFER refused: 400");
                self.reply(tx, &req, 400, now);
                return;
            }
        };
        let replaces = refer_to.replaces.map(|r| Replaces {
            call: self.call_of_dialog(&r),
            call_id: r.call_id,
            to_tag: r.to_tag,
            from_tag: r.from_tag,
            early_only: r.early_only,
        });
        if replaces.as_ref().is_some_and(|r| r.call == Some(id)) {
            // Replacing the dialog the REFER came in on with itself means nothing.
            warn!(call = %id, "REFER whose Replaces names its own dialog: 400");
            self.reply(tx, &req, 400, now);
            return;
        }
        let uri_part = refer_to.uri;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let mut resp = Response::to_request(&req, 202, reason_phrase(202));
        resp.set_to_tag(&c.local_tag);
        c.refer_sub = true;
        self.respond(tx, resp, now);
        self.notify_refer(id, 100, false, now);
        let referred_by = req.headers.get("Referred-By").map(str::to_owned);
        self.emit(UaEvent::TransferRequested {
            call: id,
            target: TransferTarget {
                uri: uri_part,
                replaces,
                referred_by,
                by,
            },
        });
    }

    fn notify_refer(&mut self, id: CallId, status: u16, terminated: bool, now: Instant) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(d) = c.dialog.as_mut() else { return };
        let mut n = d.request(Method::Notify);
        n.headers.push("Event", "refer");
        n.headers.push(
            "Subscription-State",
            if terminated {
                "terminated;reason=noresource"
            } else {
                "active;expires=60"
            },
        );
        n.headers
            .push("Content-Type", "message/sipfrag;version=2.0");
        n.body = format!("SIP/2.0 {status} {}\r\n", reason_phrase(status)).into_bytes();
        if terminated {
            c.refer_sub = false;
        }
        let peer = self.in_dialog_peer(self.calls.get(&id).expect("present"));
        self.send_request(n, peer, Owner::Notify, now);
    }

    // ---------------------------------------------------------------- client side

    fn on_client_response(&mut self, tx: TxId, resp: Response, now: Instant) {
        let Some(owner) = self.owners.get(&tx).copied() else {
            return;
        };
        match owner {
            Owner::Invite(id) => self.invite_response(id, tx, resp, now),
            Owner::Reinvite(id) => self.reinvite_response(id, tx, &resp, now),
            Owner::Refer(id) => {
                if resp.status >= 200
                    && let Some(c) = self.calls.get_mut(&id)
                    && let Some((t, reply)) = c.pending.take()
                {
                    if t == tx {
                        let _ = reply.send(if resp.status < 300 {
                            Ok(())
                        } else {
                            Err(UaError::Refused(resp.status))
                        });
                    } else {
                        c.pending = Some((t, reply));
                    }
                }
            }
            Owner::Register(i) => {
                let actions = match self.regs.get_mut(i).and_then(Option::as_mut) {
                    Some(r) => r.on_response(&resp, now),
                    None => Vec::new(),
                };
                self.reg_actions(i, actions, now);
            }
            Owner::Qualify(i) => {
                if resp.status >= 200 {
                    self.set_reachable(i, true);
                }
            }
            Owner::Bye | Owner::Cancel | Owner::Notify | Owner::Info => {}
        }
    }

    fn on_client_timeout(&mut self, tx: TxId, now: Instant) {
        let Some(owner) = self.owners.remove(&tx) else {
            return;
        };
        match owner {
            Owner::Invite(id) => {
                if self.calls.get(&id).is_some_and(|c| c.invite_tx == tx) {
                    self.end_call(id, Cause::Timeout, None, "no response to INVITE");
                    self.forget(id);
                }
            }
            Owner::Reinvite(id) | Owner::Refer(id) => {
                if let Some(c) = self.calls.get_mut(&id)
                    && let Some((t, reply)) = c.pending.take()
                {
                    if t == tx {
                        let _ = reply.send(Err(UaError::Timeout));
                    } else {
                        c.pending = Some((t, reply));
                    }
                }
            }
            Owner::Register(i) => {
                let actions = match self.regs.get_mut(i).and_then(Option::as_mut) {
                    Some(r) => r.on_timeout(now),
                    None => Vec::new(),
                };
                self.reg_actions(i, actions, now);
            }
            Owner::Qualify(i) => self.set_reachable(i, false),
            Owner::Bye | Owner::Cancel | Owner::Notify | Owner::Info => {}
        }
    }

    fn set_reachable(&mut self, i: usize, ok: bool) {
        if self.reachable.get(i).copied().flatten() != Some(ok) {
            if let Some(r) = self.reachable.get_mut(i) {
                *r = Some(ok);
            }
            let trunk = self.cfg.trunks[i].name.clone();
            self.emit(UaEvent::TrunkReachable {
                trunk,
                reachable: ok,
            });
        }
    }

    fn reg_actions(&mut self, i: usize, actions: Vec<RegAction>, now: Instant) {
        for a in actions {
            match a {
                RegAction::Send(req) => {
                    let t = &self.cfg.trunks[i];
                    let peer = Peer {
                        addr: t.proxy,
                        transport: t.transport,
                    };
                    self.send_request(req, peer, Owner::Register(i), now);
                }
                RegAction::State(state) => {
                    let trunk = self.cfg.trunks[i].name.clone();
                    info!(%trunk, ?state, "registration");
                    self.emit(UaEvent::Registration { trunk, state });
                }
            }
        }
        if let Some(at) = self
            .regs
            .get(i)
            .and_then(Option::as_ref)
            .and_then(RegClient::next_at)
        {
            self.arm(at, Timer::Reg(i));
        }
    }

    fn invite_response(&mut self, id: CallId, tx: TxId, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.invite_tx != tx {
            return;
        }
        let status = resp.status;
        if status < 200 {
            if status > 100 {
                c.got_provisional = true;
                if resp.key().is_ok_and(|k| k.to_tag.is_some()) && c.dialog.is_none() {
                    c.dialog = Dialog::uac(&c.invite, &resp, &c.local.addr.to_string())
                        .ok()
                        .map(|mut d| {
                            d.local_contact = c
                                .invite
                                .headers
                                .get("Contact")
                                .unwrap_or_default()
                                .to_owned();
                            d
                        });
                }
            }
            if c.ended {
                if c.cancel_pending && c.got_provisional {
                    c.cancel_pending = false;
                    let cancel = crate::transaction::build_cancel(&c.invite);
                    let peer = c.peer;
                    self.send_raw_cancel(cancel, peer, now);
                }
                return;
            }
            let mut events = Vec::new();
            match status {
                100 => events.push(UaEvent::Progress {
                    call: id,
                    progress: Progress::Trying,
                }),
                183 if !resp.body.is_empty() => {
                    if let Ok(ans) = Sdp::parse(&resp.body)
                        && let Ok(n) = sdp::accept_answer(&c.local, &ans)
                    {
                        c.ctl.update(SessionParams::from_negotiated(&n, true));
                        c.negotiated = Some(n);
                        events.push(UaEvent::Progress {
                            call: id,
                            progress: Progress::EarlyMedia,
                        });
                        if !c.audio_ready {
                            c.audio_ready = true;
                            events.push(UaEvent::AudioReady { call: id });
                        }
                    }
                }
                _ => events.push(UaEvent::Progress {
                    call: id,
                    progress: Progress::Ringing,
                }),
            }
            for e in events {
                self.emit(e);
            }
            return;
        }
        if (200..300).contains(&status) {
            let ack_peer;
            {
                let remote_tag = resp.key().ok().and_then(|k| k.to_tag);
                let confirmed_other = c.state == State::Confirmed
                    && c.dialog
                        .as_ref()
                        .is_some_and(|d| Some(&d.id.remote_tag) != remote_tag.as_ref());
                if c.state == State::Confirmed && !confirmed_other {
                    // A retransmitted 2xx: ACK again.
                    if let Some((b, p)) = c.ack.clone() {
                        self.send(p, b);
                    }
                    return;
                }
                let contact = c
                    .invite
                    .headers
                    .get("Contact")
                    .unwrap_or_default()
                    .to_owned();
                let mut d = match Dialog::uac(&c.invite, &resp, &contact) {
                    Ok(d) => d,
                    Err(e) => {
                        warn!(call = %id, error = %e, "2xx without a usable dialog");
                        return;
                    }
                };
                d.on_response(&resp);
                let cseq = c.invite.key().map(|k| k.cseq).unwrap_or(1);
                let mut ack = d.ack(cseq);
                ack_peer = peer_for(false, c.peer, Some(&d));
                ack.headers.push_front("Via", self.via(ack_peer.transport));
                let bytes = ack.to_bytes();
                self.send(ack_peer, bytes.clone());
                let Some(c) = self.calls.get_mut(&id) else {
                    return;
                };
                if confirmed_other {
                    // A second fork answered: hang it up at once.
                    let mut bye = d.request(Method::Bye);
                    bye.headers.push(
                        "Reason",
                        "SIP;cause=200;text=\"forked call answered elsewhere\"",
                    );
                    self.send_request(bye, ack_peer, Owner::Bye, now);
                    return;
                }
                c.ack = Some((bytes, ack_peer));
                c.dialog = Some(d);
                c.state = State::Confirmed;
                if c.ended {
                    // Hung up while the 200 was on its way: end the dialog now.
                    if let Some(mut bye) = c.dialog.as_mut().map(|d| d.request(Method::Bye)) {
                        bye.headers.push("Reason", "SIP;cause=487");
                        self.send_request(bye, ack_peer, Owner::Bye, now);
                    }
                    self.forget(id);
                    return;
                }
                if !resp.body.is_empty()
                    && let Ok(ans) = Sdp::parse(&resp.body)
                {
                    match sdp::accept_answer(&c.local, &ans) {
                        Ok(n) => {
                            c.ctl.update(SessionParams::from_negotiated(&n, true));
                            c.negotiated = Some(n);
                        }
                        Err(e) => warn!(call = %id, error = %e, "unusable SDP answer"),
                    }
                }
                let mut events = vec![UaEvent::Answered { call: id }];
                if !c.audio_ready {
                    c.audio_ready = true;
                    events.push(UaEvent::AudioReady { call: id });
                }
                for e in events {
                    self.emit(e);
                }
            }
            return;
        }
        // A final failure. Challenged by a trunk we have credentials for: answer once.
        if (status == 401 || status == 407)
            && !c.ended
            && let Some(t) = c.trunk
        {
            let trunk = &self.cfg.trunks[t];
            let name = if status == 407 {
                "Proxy-Authenticate"
            } else {
                "WWW-Authenticate"
            };
            if let (Some(user), Some(pass), Ok(ch)) = (
                trunk.username.clone(),
                trunk.password.clone(),
                Challenge::pick(resp.headers.get_all(name)),
            ) && (c.auth_nonce.is_none() || ch.stale)
            {
                {
                    c.auth_nonce = Some(ch.nonce.clone());
                    let mut inv = c.invite.clone();
                    inv.headers.remove("Via");
                    inv.headers.remove("Authorization");
                    inv.headers.remove("Proxy-Authorization");
                    let k = inv.key().ok();
                    if let Some(k) = k {
                        inv.headers.set("CSeq", format!("{} INVITE", k.cseq + 1));
                    }
                    let value = self
                        .client_auth
                        .authorize(&ch, &user, &pass, "INVITE", &inv.uri);
                    inv.headers.push(
                        if status == 407 {
                            "Proxy-Authorization"
                        } else {
                            "Authorization"
                        },
                        value,
                    );
                    let peer = c.peer;
                    let ntx = self.send_request(inv.clone(), peer, Owner::Invite(id), now);
                    if let Some(c) = self.calls.get_mut(&id) {
                        // Keep the sent form (with its Via) for CANCEL and the ACK.
                        c.invite = self.layer.request(ntx).cloned().unwrap_or(inv);
                        c.invite_tx = ntx;
                        c.got_provisional = false;
                    }
                    return;
                }
            }
        }
        let q = resp.headers.get("Reason").and_then(reason_header_q850);
        let cause = q.map_or_else(|| cause_from_sip(status), Cause::from_q850);
        let detail = format!("{status} {}", resp.reason);
        if let Some(c) = self.calls.get_mut(&id)
            && !c.ended
        {
            let q = q.unwrap_or_else(|| crate::cause::q850_from_sip(status));
            self.end_call_status(id, cause, Some(q), Some(status), &detail);
        }
        self.forget(id);
    }

    fn send_raw_cancel(&mut self, cancel: Request, peer: Peer, now: Instant) {
        // CANCEL carries the INVITE's own top Via (same branch): start its transaction
        // without adding another Via.
        let (id, outs) = self.layer.send_request(cancel, peer, now);
        self.owners.insert(id, Owner::Cancel);
        self.perform(outs, now);
    }

    fn reinvite_response(&mut self, id: CallId, tx: TxId, resp: &Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if (200..300).contains(&resp.status) {
            if let Some(d) = c.dialog.as_mut() {
                d.on_response(resp);
                let cseq = resp.key().map(|k| k.cseq).unwrap_or(0);
                let mut ack = d.ack(cseq);
                let peer = self.in_dialog_peer(self.calls.get(&id).expect("present"));
                ack.headers.push_front("Via", self.via(peer.transport));
                self.send(peer, ack.to_bytes());
            }
            let Some(c) = self.calls.get_mut(&id) else {
                return;
            };
            if let Ok(ans) = Sdp::parse(&resp.body)
                && let Ok(n) = sdp::accept_answer(&c.local, &ans)
            {
                c.ctl.update(SessionParams::from_negotiated(&n, true));
                c.negotiated = Some(n);
            }
        }
        if resp.status >= 200
            && let Some(c) = self.calls.get_mut(&id)
            && let Some((t, reply)) = c.pending.take()
        {
            if t == tx {
                let ok = resp.status < 300;
                if !ok {
                    // Refused: the previous media state stays.
                    c.local_hold = !c.local_hold;
                }
                let _ = reply.send(if ok {
                    Ok(())
                } else {
                    Err(UaError::Refused(resp.status))
                });
            } else {
                c.pending = Some((t, reply));
            }
        }
        let _ = now;
    }

    // ---------------------------------------------------------------- commands

    fn command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Call {
                id,
                to,
                from,
                reply,
            } => {
                let r = self.place(id, to, from, now);
                let _ = reply.send(r);
            }
            Command::Answer { id, reply } => {
                let r = self.answer(id, now);
                let _ = reply.send(r);
            }
            Command::Progress {
                id,
                early_media,
                reply,
            } => {
                let r = self.progress(id, early_media, now);
                let _ = reply.send(r);
            }
            Command::Hangup { id, cause, reply } => {
                let r = self.hangup(id, cause, now);
                let _ = reply.send(r);
            }
            Command::Dtmf {
                id,
                digits,
                duration,
                reply,
            } => {
                let r = self.send_dtmf(id, &digits, duration, now);
                let _ = reply.send(r);
            }
            Command::Hold { id, hold, reply } => self.hold(id, hold, reply, now),
            Command::Refer {
                id,
                target,
                replaces,
                reply,
            } => self.refer(id, target, replaces, reply, now),
            Command::TransferOutcome { id, status, reply } => {
                let r = match self.calls.get(&id) {
                    Some(c) if c.refer_sub => {
                        // A provisional status keeps the subscription (RFC 3515 §2.4.5).
                        self.notify_refer(id, status, status >= 200, now);
                        Ok(())
                    }
                    Some(_) => Err(UaError::State {
                        call: id,
                        what: "no transfer was requested".into(),
                    }),
                    None => Err(UaError::NoCall(id)),
                };
                let _ = reply.send(r);
            }
            Command::Status { reply } => {
                let trunks = self
                    .cfg
                    .trunks
                    .iter()
                    .zip(&self.regs)
                    .map(|(t, r)| {
                        (
                            t.name.clone(),
                            r.as_ref()
                                .map_or(RegState::Unregistered, |r| r.state().clone()),
                        )
                    })
                    .collect();
                let extensions = self
                    .registrar
                    .registered(now)
                    .into_iter()
                    .map(|u| ExtensionStatus {
                        contacts: self.registrar.current(&u, now),
                        user: u,
                    })
                    .collect();
                let s = Status {
                    udp: self.net.udp_addr(),
                    tcp: self.net.tcp_addr(),
                    trunks,
                    extensions,
                    calls: self.calls.len(),
                };
                let _ = reply.send(s);
            }
            Command::Shutdown { reply } => {
                self.shutdown();
                let _ = reply.send(());
            }
        }
    }

    fn resolve(
        &self,
        to: &Destination,
        now: Instant,
    ) -> Result<(String, String, Peer, Option<usize>), UaError> {
        match to {
            Destination::Uri(u) => {
                // The address's URI headers are not part of the Request-URI (RFC 3261
                // §19.1.5); its `Replaces` goes into the INVITE (see `place`).
                let (base, _) =
                    crate::refer::split_uri_headers(u).map_err(|_| UaError::Route(u.clone()))?;
                let uri = message::parse_uri(&base).map_err(|_| UaError::Route(u.clone()))?;
                let peer = peer_of_uri(&uri).ok_or_else(|| UaError::Route(u.clone()))?;
                let trunk = self.cfg.trunks.iter().position(|t| t.proxy == peer.addr);
                Ok((base.clone(), format!("<{base}>"), peer, trunk))
            }
            Destination::Extension(user) => {
                let b = self
                    .registrar
                    .lookup(user, now)
                    .ok_or_else(|| UaError::Route(format!("extension {user} (not registered)")))?;
                let to = format!("<sip:{user}@{}>", self.hostport(Transport::Udp));
                Ok((
                    b.contact.clone(),
                    to,
                    Peer {
                        addr: b.source,
                        transport: b.transport,
                    },
                    None,
                ))
            }
            Destination::Trunk { trunk, number } => {
                let i = self
                    .cfg
                    .trunks
                    .iter()
                    .position(|t| &t.name == trunk)
                    .ok_or_else(|| UaError::Route(format!("trunk {trunk}")))?;
                let t = &self.cfg.trunks[i];
                let domain = t.domain.clone().unwrap_or_else(|| t.proxy.to_string());
                let uri = format!("sip:{number}@{domain}");
                Ok((
                    uri.clone(),
                    format!("<{uri}>"),
                    Peer {
                        addr: t.proxy,
                        transport: t.transport,
                    },
                    Some(i),
                ))
            }
        }
    }

    fn place(
        &mut self,
        id: CallId,
        to: Destination,
        from: Party,
        now: Instant,
    ) -> Result<(), UaError> {
        if self.calls.contains_key(&id) {
            return Err(UaError::Duplicate(id));
        }
        let (ruri, to_hdr, peer, trunk) = self.resolve(&to, now)?;
        if let Some(t) = trunk
            && self.trunk_full(t)
        {
            let t = &self.cfg.trunks[t];
            return Err(UaError::TrunkFull {
                trunk: t.name.clone(),
                max: t.max_calls,
            });
        }
        // An attended transfer to a dialog elsewhere (a REFER whose Refer-To carries
        // `Replaces`): the INVITE asks the target to replace that dialog with this call
        // (RFC 3891), and requires it to understand that — a target that would take it
        // for a new call would ring a phone that is already talking.
        let replaces = match &to {
            Destination::Uri(u) => {
                crate::refer::split_uri_headers(u)
                    .map_err(|_| UaError::Route(u.clone()))?
                    .1
            }
            Destination::Extension(_) | Destination::Trunk { .. } => None,
        };
        let auth = match &to {
            Destination::Extension(user) => Some(AuthIdentity::Extension(user.clone())),
            Destination::Trunk { .. } | Destination::Uri(_) => {
                trunk.map(|i| AuthIdentity::Trunk(self.cfg.trunks[i].name.clone()))
            }
        };
        let (stream, ctl, port) = self.bind_stream(id)?;
        let local = self.local_media(port);
        let offer = sdp::offer(&local);
        let sip_call_id = super::outgoing_call_id(id);
        let from_tag = rand_hex(6);
        let from_host = match trunk {
            Some(i) => self.cfg.trunks[i]
                .domain
                .clone()
                .unwrap_or_else(|| self.hostport(peer.transport)),
            None => self.hostport(peer.transport),
        };
        let user = if from.number.is_empty() {
            "flowgate".to_owned()
        } else {
            from.number.clone()
        };
        let display = if from.display_name.is_empty() {
            String::new()
        } else {
            format!("\"{}\" ", from.display_name.replace('"', ""))
        };
        let mut inv = Request::new(Method::Invite, ruri);
        inv.headers.push("Max-Forwards", "70");
        inv.headers.push(
            "From",
            format!("{display}<sip:{user}@{from_host}>;tag={from_tag}"),
        );
        inv.headers.push("To", to_hdr);
        inv.headers.push("Call-ID", sip_call_id.clone());
        inv.headers.push("CSeq", "1 INVITE");
        inv.headers
            .push("Contact", self.contact(&user, peer.transport));
        inv.headers.push("Allow", ALLOW);
        inv.headers.push("Supported", SUPPORTED);
        if let Some(r) = &replaces {
            inv.headers.push("Replaces", r.header_value());
            inv.headers.push("Require", "replaces");
        }
        inv.headers.push("Content-Type", "application/sdp");
        inv.body = offer.clone().into_bytes();
        let ring_deadline = now + self.cfg.ring_timeout();
        let call = Call {
            incoming: false,
            state: State::Calling,
            ended: false,
            sip_call_id: sip_call_id.clone(),
            local_tag: from_tag.clone(),
            invite: inv.clone(),
            invite_tx: TxId(0),
            peer,
            dialog: None,
            local,
            negotiated: None,
            sdp_body: offer,
            late_offer: false,
            ctl,
            audio_ready: false,
            retx: None,
            got_provisional: false,
            cancel_pending: false,
            auth_nonce: None,
            trunk,
            auth,
            ack: None,
            held_by_remote: false,
            local_hold: false,
            pending: None,
            refer_sub: false,
            ring_deadline,
        };
        self.calls.insert(id, Box::new(call));
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, stream);
        self.by_dialog.insert((sip_call_id.clone(), from_tag), id);
        self.arm(ring_deadline, Timer::Ring(id));
        info!(call = %id, %sip_call_id, to = %peer.addr, replaces = replaces.is_some(), "outgoing call");
        let tx = self.send_request(inv, peer, Owner::Invite(id), now);
        if let Some(c) = self.calls.get_mut(&id) {
            c.invite = self
                .layer
                .request(tx)
                .cloned()
                .unwrap_or_else(|| c.invite.clone());
            c.invite_tx = tx;
        }
        Ok(())
    }

    fn answer(&mut self, id: CallId, now: Instant) -> Result<(), UaError> {
        let c = self
            .calls
            .get(&id)
            .filter(|c| !c.ended)
            .ok_or(UaError::NoCall(id))?;
        if !c.incoming || c.state != State::Ringing {
            return Err(UaError::State {
                call: id,
                what: "only an unanswered incoming call can be answered".into(),
            });
        }
        let r = self.ok_with_sdp(c, &c.invite.clone(), &c.sdp_body.clone());
        let tx = c.invite_tx;
        self.start_2xx(id, tx, r, now);
        let c = self.calls.get_mut(&id).ok_or(UaError::NoCall(id))?;
        c.state = State::AwaitAck;
        if !c.audio_ready {
            c.audio_ready = true;
            self.emit(UaEvent::AudioReady { call: id });
        }
        Ok(())
    }

    fn progress(&mut self, id: CallId, early: bool, now: Instant) -> Result<(), UaError> {
        let c = self
            .calls
            .get(&id)
            .filter(|c| !c.ended)
            .ok_or(UaError::NoCall(id))?;
        if !c.incoming || c.state != State::Ringing {
            return Err(UaError::State {
                call: id,
                what: "progress is for unanswered incoming calls".into(),
            });
        }
        let mut r = Response::to_request(
            &c.invite,
            if early { 183 } else { 180 },
            if early { "Session Progress" } else { "Ringing" },
        );
        r.set_to_tag(&c.local_tag);
        if let Some(d) = &c.dialog {
            r.headers.push("Contact", d.local_contact.clone());
        }
        Dialog::copy_record_route(&c.invite, &mut r);
        if early && !c.late_offer {
            r.headers.push("Content-Type", "application/sdp");
            r.body = c.sdp_body.clone().into_bytes();
        }
        let tx = c.invite_tx;
        self.respond(tx, r, now);
        if early
            && let Some(c) = self.calls.get_mut(&id)
            && !c.audio_ready
        {
            c.audio_ready = true;
            self.emit(UaEvent::AudioReady { call: id });
        }
        Ok(())
    }

    fn hangup(&mut self, id: CallId, cause: Cause, now: Instant) -> Result<(), UaError> {
        let c = self
            .calls
            .get_mut(&id)
            .filter(|c| !c.ended)
            .ok_or(UaError::NoCall(id))?;
        let reason = format!("Q.850;cause={}", cause.q850());
        match (c.incoming, c.state) {
            (true, State::Ringing) => {
                let status = sip_status_for(cause);
                let mut r = Response::to_request(&c.invite, status, reason_phrase(status));
                r.set_to_tag(&c.local_tag);
                r.headers.push("Reason", reason);
                let tx = c.invite_tx;
                self.respond(tx, r, now);
            }
            (false, State::Calling) => {
                if c.got_provisional {
                    let cancel = crate::transaction::build_cancel(&c.invite);
                    let peer = c.peer;
                    self.send_raw_cancel(cancel, peer, now);
                } else {
                    // RFC 3261 §9.1: no CANCEL before a provisional response.
                    c.cancel_pending = true;
                }
            }
            _ => {
                c.retx = None;
                if let Some(d) = c.dialog.as_mut() {
                    let mut bye = d.request(Method::Bye);
                    bye.headers.push("Reason", reason);
                    let peer = self.in_dialog_peer(self.calls.get(&id).expect("present"));
                    self.send_request(bye, peer, Owner::Bye, now);
                }
            }
        }
        let q = cause.q850();
        self.end_call(id, cause, Some(q), "local hangup");
        if let Some(c) = self.calls.get(&id)
            && (c.incoming || c.state != State::Calling)
        {
            self.forget(id);
        }
        Ok(())
    }

    fn send_dtmf(
        &mut self,
        id: CallId,
        digits: &str,
        duration: Duration,
        now: Instant,
    ) -> Result<(), UaError> {
        let c = self
            .calls
            .get_mut(&id)
            .filter(|c| !c.ended)
            .ok_or(UaError::NoCall(id))?;
        if c.state != State::Confirmed && c.state != State::AwaitAck {
            return Err(UaError::State {
                call: id,
                what: "digits need an answered call".into(),
            });
        }
        if digits
            .chars()
            .any(|d| crate::rtp::dtmf::event_code(d).is_none())
        {
            return Err(UaError::State {
                call: id,
                what: format!("{digits:?} has a character that is not a DTMF digit"),
            });
        }
        if c.negotiated.is_some_and(|n| n.telephone_event.is_some()) {
            for d in digits.chars() {
                c.ctl.send_dtmf(d, duration);
            }
            return Ok(());
        }
        // No telephone-event: SIP INFO, one request per digit.
        let ms = duration.as_millis();
        let peer = peer_for(c.incoming, c.peer, c.dialog.as_ref());
        for d in digits.chars() {
            let Some(c) = self.calls.get_mut(&id) else {
                break;
            };
            let Some(dlg) = c.dialog.as_mut() else { break };
            let mut info = dlg.request(Method::Info);
            info.headers.push("Content-Type", "application/dtmf-relay");
            info.body = format!("Signal={d}\r\nDuration={ms}\r\n").into_bytes();
            self.send_request(info, peer, Owner::Info, now);
        }
        Ok(())
    }

    fn hold(
        &mut self,
        id: CallId,
        hold: bool,
        reply: oneshot::Sender<Result<(), UaError>>,
        now: Instant,
    ) {
        let Some(c) = self.calls.get_mut(&id).filter(|c| !c.ended) else {
            let _ = reply.send(Err(UaError::NoCall(id)));
            return;
        };
        if c.state != State::Confirmed || c.pending.is_some() {
            let _ = reply.send(Err(UaError::State {
                call: id,
                what: "hold needs an answered call with no request pending".into(),
            }));
            return;
        }
        c.local_hold = hold;
        c.local.version += 1;
        c.local.direction = if hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let body = sdp::offer(&c.local);
        let Some(d) = c.dialog.as_mut() else {
            let _ = reply.send(Err(UaError::State {
                call: id,
                what: "no dialog".into(),
            }));
            return;
        };
        let mut inv = d.request(Method::Invite);
        inv.headers.push("Content-Type", "application/sdp");
        inv.headers.push("Allow", ALLOW);
        inv.body = body.into_bytes();
        let peer = self.in_dialog_peer(self.calls.get(&id).expect("present"));
        let tx = self.send_request(inv, peer, Owner::Reinvite(id), now);
        if let Some(c) = self.calls.get_mut(&id) {
            c.pending = Some((tx, reply));
        }
    }

    fn refer(
        &mut self,
        id: CallId,
        target: String,
        replaces: Option<CallId>,
        reply: oneshot::Sender<Result<(), UaError>>,
        now: Instant,
    ) {
        let refer_to = match replaces {
            None => {
                if message::parse_uri(&target).is_err() {
                    let _ = reply.send(Err(UaError::Route(target)));
                    return;
                }
                format!("<{target}>")
            }
            Some(other) => {
                let Some(o) = self.calls.get(&other).filter(|c| !c.ended) else {
                    let _ = reply.send(Err(UaError::NoCall(other)));
                    return;
                };
                let Some(d) = &o.dialog else {
                    let _ = reply.send(Err(UaError::State {
                        call: other,
                        what: "not answered".into(),
                    }));
                    return;
                };
                // RFC 3891 §3: the target matches `to-tag` against its own local tag and
                // `from-tag` against its remote one, so from our side of that dialog:
                // to-tag = the target's tag (our remote), from-tag = ours.
                let rep = crate::refer::DialogRef {
                    call_id: d.id.call_id.clone(),
                    to_tag: d.id.remote_tag.clone(),
                    from_tag: d.id.local_tag.clone(),
                    early_only: false,
                };
                format!("<{}?{}>", d.remote_target, rep.uri_header())
            }
        };
        let Some(c) = self
            .calls
            .get_mut(&id)
            .filter(|c| !c.ended && c.state == State::Confirmed)
        else {
            let _ = reply.send(Err(UaError::State {
                call: id,
                what: "transfer needs an answered call".into(),
            }));
            return;
        };
        if c.pending.is_some() {
            let _ = reply.send(Err(UaError::State {
                call: id,
                what: "a request is pending".into(),
            }));
            return;
        }
        let Some(d) = c.dialog.as_mut() else { return };
        let mut r = d.request(Method::Refer);
        r.headers.push("Refer-To", refer_to);
        r.headers.push("Referred-By", d.local_uri.clone());
        let peer = self.in_dialog_peer(self.calls.get(&id).expect("present"));
        let tx = self.send_request(r, peer, Owner::Refer(id), now);
        if let Some(c) = self.calls.get_mut(&id) {
            c.pending = Some((tx, reply));
        }
    }

    // ---------------------------------------------------------------- endings, timers

    /// Emits `Ended` once and closes the media; the call stays until [`Core::forget`].
    fn end_call(&mut self, id: CallId, cause: Cause, q850: Option<u8>, detail: &str) {
        self.end_call_status(id, cause, q850, None, detail);
    }

    fn end_call_status(
        &mut self,
        id: CallId,
        cause: Cause,
        q850: Option<u8>,
        sip_status: Option<u16>,
        detail: &str,
    ) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.ended {
            return;
        }
        c.ended = true;
        c.retx = None;
        c.ctl.close();
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if let Some((_, reply)) = c.pending.take() {
            let _ = reply.send(Err(UaError::NoCall(id)));
        }
        // What the media path did with the call's audio (as of its last frame): the
        // media benchmark adds these up to tell frames the jitter buffer dropped or
        // concealed from frames lost on the way.
        let rtp = c.ctl.stats();
        info!(
            call = %id,
            ?cause,
            detail,
            rtp_in = rtp.packets_in,
            rtp_out = rtp.packets_out,
            jb_lost = rtp.jitter.lost,
            jb_late = rtp.jitter.late,
            jb_underruns = rtp.jitter.underruns,
            jb_shrunk = rtp.jitter.shrunk,
            jb_resyncs = rtp.jitter.resyncs,
            "call ended"
        );
        self.emit(UaEvent::Ended {
            call: id,
            cause: EndCause {
                cause,
                q850: q850.unwrap_or_else(|| cause.q850()),
                sip_status,
                detail: detail.to_owned(),
            },
        });
    }

    fn forget(&mut self, id: CallId) {
        if let Some(c) = self.calls.remove(&id) {
            self.by_dialog.remove(&(c.sip_call_id, c.local_tag));
        }
    }

    fn on_timers(&mut self, now: Instant) {
        let outs = self.layer.poll(now);
        self.perform(outs, now);
        while let Some(Reverse((at, t))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match t {
                Timer::Retx2xx(id) => self.retx_2xx(id, at, now),
                Timer::Ring(id) => self.ring_timeout(id, at, now),
                Timer::Reg(i) => {
                    let actions = match self.regs.get_mut(i).and_then(Option::as_mut) {
                        Some(r) => r.poll(now),
                        None => Vec::new(),
                    };
                    self.reg_actions(i, actions, now);
                }
                Timer::Qualify(i) => {
                    let t = &self.cfg.trunks[i];
                    let peer = Peer {
                        addr: t.proxy,
                        transport: t.transport,
                    };
                    let domain = t.domain.clone().unwrap_or_else(|| t.proxy.to_string());
                    let mut o = Request::new(Method::Options, format!("sip:{domain}"));
                    o.headers.push("Max-Forwards", "70");
                    o.headers.push(
                        "From",
                        format!(
                            "<sip:flowgate@{}>;tag={}",
                            self.hostport(peer.transport),
                            rand_hex(4)
                        ),
                    );
                    o.headers.push("To", format!("<sip:{domain}>"));
                    o.headers
                        .push("Call-ID", format!("{}@flowgate", rand_hex(8)));
                    o.headers.push("CSeq", "1 OPTIONS");
                    self.send_request(o, peer, Owner::Qualify(i), now);
                    let next = now + Duration::from_secs(self.cfg.qualify_interval_secs.max(5));
                    self.arm(next, Timer::Qualify(i));
                }
                Timer::Sweep => {
                    for user in self.registrar.expire(now) {
                        self.emit(UaEvent::Extension {
                            user,
                            registered: false,
                        });
                    }
                    self.arm(now + Duration::from_secs(10), Timer::Sweep);
                }
            }
        }
    }

    fn retx_2xx(&mut self, id: CallId, at: Instant, now: Instant) {
        let t2 = self.cfg.timers.t2;
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(r) = c.retx.as_mut() else { return };
        if r.next != at {
            return;
        }
        if now >= r.give_up {
            // No ACK within 64·T1: the dialog is dead (RFC 3261 §13.3.1.4).
            c.retx = None;
            if let Some(d) = c.dialog.as_mut() {
                let bye = d.request(Method::Bye);
                let peer = c.peer;
                self.send_request(bye, peer, Owner::Bye, now);
            }
            self.end_call(id, Cause::Timeout, None, "no ACK for 200 OK");
            self.forget(id);
            return;
        }
        let (bytes, peer) = (r.bytes.clone(), r.peer);
        r.interval = (r.interval * 2).min(t2);
        r.next = at + r.interval;
        let next = r.next;
        self.send(peer, bytes);
        self.arm(next, Timer::Retx2xx(id));
    }

    fn ring_timeout(&mut self, id: CallId, at: Instant, now: Instant) {
        let Some(c) = self.calls.get(&id) else { return };
        if c.ring_deadline != at || c.ended {
            return;
        }
        match (c.incoming, c.state) {
            (true, State::Ringing) | (false, State::Calling) => {
                let _ = self.hangup(id, Cause::NoAnswer, now);
            }
            _ => {}
        }
    }

    fn shutdown(&mut self) {
        let now = Instant::now();
        let ids: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.ended)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let _ = self.hangup(id, Cause::Normal, now);
        }
    }
}

/// The option tags of a request's `Require` headers this user agent does not implement,
/// comma-separated (empty when it can honour them all).
fn unsupported_requirements(req: &Request) -> String {
    let mut missing = Vec::new();
    for value in req.headers.get_all("Require") {
        for tag in crate::message::split_commas(value) {
            let tag = tag.trim();
            if !tag.is_empty()
                && !SUPPORTED
                    .split(',')
                    .any(|s| s.trim().eq_ignore_ascii_case(tag))
            {
                missing.push(tag.to_owned());
            }
        }
    }
    missing.join(", ")
}

fn first_line(b: &[u8]) -> String {
    let end = b
        .iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(b.len())
        .min(120);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// A digit from an INFO body (`application/dtmf-relay` `Signal=5`, or `application/dtmf`).
fn dtmf_from_info(req: &Request) -> Option<char> {
    let ct = req.headers.get("Content-Type")?.to_ascii_lowercase();
    let body = std::str::from_utf8(&req.body).ok()?;
    let d = if ct.starts_with("application/dtmf-relay") {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| v.trim().to_owned())
        })?
    } else if ct.starts_with("application/dtmf") {
        body.trim().to_owned()
    } else {
        return None;
    };
    let c = match d.as_str() {
        "10" => '*',
        "11" => '#',
        s => s.chars().next()?,
    };
    crate::rtp::dtmf::event_code(c).map(|_| c.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_digits() {
        let mut r = Request::new(Method::Info, "sip:x@y");
        r.headers.push("Content-Type", "application/dtmf-relay");
        r.body = b"Signal=5\r\nDuration=160\r\n".to_vec();
        assert_eq!(dtmf_from_info(&r), Some('5'));
        r.body = b"Signal=11\r\n".to_vec();
        assert_eq!(dtmf_from_info(&r), Some('#'));
        r.headers.set("Content-Type", "application/dtmf");
        r.body = b"*".to_vec();
        assert_eq!(dtmf_from_info(&r), Some('*'));
        r.headers.set("Content-Type", "text/plain");
        assert_eq!(dtmf_from_info(&r), None);
    }
}
