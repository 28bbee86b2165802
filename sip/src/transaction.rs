//! SIP transactions (RFC 3261 §17, with the RFC 6026 `Accepted` states): the four state
//! machines and the layer that matches messages to them, as a sans-IO core.
//!
//! Inputs are parsed messages, TU calls and `now`; outputs are [`TxOutput`]s — bytes to
//! send to a [`Peer`] and events for the transaction user (TU). The shell calls
//! [`TransactionLayer::poll`] at [`TransactionLayer::next_deadline`]. Nothing here reads a
//! clock or a socket.
//!
//! | timer | transaction | value (unreliable / reliable) |
//! |---|---|---|
//! | A / B | INVITE client retransmit / give up | T1 doubling, none / 64·T1 |
//! | D | INVITE client, absorb final retransmits | 32 s / 0 |
//! | E / F | non-INVITE client retransmit / give up | T1 doubling to T2, none / 64·T1 |
//! | G / H | INVITE server final retransmit / wait for ACK | T1 doubling to T2, none / 64·T1 |
//! | I | INVITE server, absorb ACK retransmits | T4 / 0 |
//! | J | non-INVITE server, absorb request retransmits | 64·T1 / 0 |
//! | K | non-INVITE client, absorb response retransmits | T4 / 0 |
//! | L / M | RFC 6026 `Accepted` (server / client) | 64·T1 |
//!
//! The ACK for a non-2xx final response is generated here (§17.1.1.3); the ACK for a 2xx
//! is end-to-end and belongs to the dialog layer, so 2xx retransmissions that arrive in
//! the client's `Accepted` state are passed up again for the TU to re-ACK.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::message::{Method, Request, Response};

/// Protocol timer base values (RFC 3261 §17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timers {
    /// T1, the RTT estimate (default 500 ms).
    #[serde(with = "crate::config::millis")]
    pub t1: Duration,
    /// T2, the cap on non-INVITE retransmit intervals (default 4 s).
    #[serde(with = "crate::config::millis")]
    pub t2: Duration,
    /// T4, the time a message may linger in the network (default 5 s).
    #[serde(with = "crate::config::millis")]
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// The transport a message goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP: the transaction layer retransmits.
    Udp,
    /// TCP: reliable, no retransmissions.
    Tcp,
}

impl Transport {
    /// Reliable transports skip retransmissions and linger timers.
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The Via token.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Where a message goes or came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Socket address.
    pub addr: SocketAddr,
    /// Transport.
    pub transport: Transport,
}

/// A transaction's id, unique for the layer's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// What the transaction layer asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum TxOutput {
    /// Send bytes.
    Send {
        /// Destination.
        peer: Peer,
        /// Serialized message.
        bytes: Vec<u8>,
    },
    /// A response for a client transaction, for the TU (provisional, final, and in the
    /// INVITE `Accepted` state every retransmitted 2xx).
    Response {
        /// The client transaction.
        id: TxId,
        /// The response.
        response: Response,
    },
    /// A client transaction got no final response (timer B or F), or an INVITE server
    /// transaction never got its ACK for a non-2xx (timer H).
    Timeout {
        /// The transaction.
        id: TxId,
        /// What it was for.
        method: Method,
    },
    /// The transaction is gone; its id will not be used again.
    Terminated {
        /// The transaction.
        id: TxId,
    },
}

/// What became of an incoming request.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A new server transaction: the TU must answer it with [`TransactionLayer::respond`].
    New(TxId),
    /// A retransmission or an ACK for a non-2xx absorbed by its transaction; the outputs
    /// (a re-sent response, if any) must be performed.
    Absorbed(Vec<TxOutput>),
    /// An ACK that matches no transaction: the ACK for a 2xx, for the dialog layer.
    Ack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    InviteClient,
    NonInviteClient,
    InviteServer,
    NonInviteServer,
}

#[derive(Debug)]
struct Tx {
    role: Role,
    state: State,
    peer: Peer,
    method: Method,
    /// The request (clients: to retransmit and build the ACK; servers: to build responses).
    request: Request,
    /// The last response sent (servers) or the ACK sent (INVITE clients), to re-send.
    last_sent: Option<Vec<u8>>,
    request_bytes: Vec<u8>,
    /// Current retransmit interval and the instant it fires.
    interval: Duration,
    retransmit_at: Option<Instant>,
    /// When the current state ends: timeout (B/F/H) or quiet end (D/I/J/K/L/M).
    end_at: Option<Instant>,
    end_is_timeout: bool,
    key: Key,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client {
        branch: String,
        method: Method,
    },
    Server {
        branch: String,
        sent_by: String,
        method: Method,
    },
}

/// The transaction layer: every live transaction, matched by branch (RFC 3261 §17.1.3,
/// §17.2.3), with one timer heap.
#[derive(Debug)]
pub struct TransactionLayer {
    timers: Timers,
    next_id: u64,
    txs: HashMap<TxId, Tx>,
    by_key: HashMap<Key, TxId>,
    heap: BinaryHeap<Reverse<(Instant, TxId)>>,
}

fn server_key(req: &Request) -> Option<Key> {
    let k = req.key().ok()?;
    let branch = k.via.branch?;
    // RFC 2543 peers without the magic cookie cannot be matched by branch alone; this
    // stack requires RFC 3261 branches (every current implementation sends them).
    if !branch.starts_with("z9hG4bK") {
        return None;
    }
    let method = if req.method == Method::Ack {
        Method::Invite
    } else {
        req.method.clone()
    };
    let sent_by = format!(
        "{}:{}",
        k.via.host.to_ascii_lowercase(),
        k.via.port.unwrap_or(5060)
    );
    Some(Key::Server {
        branch,
        sent_by,
        method,
    })
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(timers: Timers) -> Self {
        Self {
            timers,
            next_id: 1,
            txs: HashMap::new(),
            by_key: HashMap::new(),
            heap: BinaryHeap::new(),
        }
    }

    /// The timer values in use.
    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    fn alloc(&mut self) -> TxId {
        let id = TxId(self.next_id);
        self.next_id += 1;
        id
    }

    fn arm(&mut self, id: TxId, at: Instant) {
        self.heap.push(Reverse((at, id)));
    }

    /// Starts a client transaction: the request must carry its top Via with a
    /// `z9hG4bK` branch. Returns its id and the first send. CANCEL and ACK for non-2xx
    /// are not started here (CANCEL is, as a non-INVITE client transaction of its own).
    pub fn send_request(
        &mut self,
        request: Request,
        peer: Peer,
        now: Instant,
    ) -> (TxId, Vec<TxOutput>) {
        let id = self.alloc();
        let branch = request
            .key()
            .ok()
            .and_then(|k| k.via.branch)
            .unwrap_or_default();
        let role = if request.method == Method::Invite {
            Role::InviteClient
        } else {
            Role::NonInviteClient
        };
        let bytes = request.to_bytes();
        let reliable = peer.transport.reliable();
        let t1 = self.timers.t1;
        let key = Key::Client {
            branch,
            method: request.method.clone(),
        };
        let tx = Tx {
            role,
            state: if role == Role::InviteClient {
                State::Calling
            } else {
                State::Trying
            },
            peer,
            method: request.method.clone(),
            request,
            last_sent: None,
            request_bytes: bytes.clone(),
            interval: t1,
            retransmit_at: (!reliable).then(|| now + t1),
            end_at: Some(now + 64 * t1),
            end_is_timeout: true,
            key: key.clone(),
        };
        if let Some(at) = tx.retransmit_at {
            self.arm(id, at);
        }
        self.arm(id, now + 64 * t1);
        self.txs.insert(id, tx);
        self.by_key.insert(key, id);
        (id, vec![TxOutput::Send { peer, bytes }])
    }

    /// Feeds a response. `None` when it matches no transaction (a stray response; a
    /// stray 2xx to INVITE must go to the dialog layer, which re-sends its ACK).
    pub fn on_response(&mut self, response: Response, now: Instant) -> Option<Vec<TxOutput>> {
        let k = response.key().ok()?;
        let key = Key::Client {
            branch: k.via.branch?,
            method: k.cseq_method,
        };
        let id = *self.by_key.get(&key)?;
        let timers = self.timers;
        let tx = self.txs.get_mut(&id)?;
        let reliable = tx.peer.transport.reliable();
        let mut out = Vec::new();
        let status = response.status;
        match (tx.role, tx.state) {
            (Role::InviteClient, State::Calling | State::Proceeding) => {
                tx.retransmit_at = None;
                if status < 200 {
                    tx.state = State::Proceeding;
                    out.push(TxOutput::Response { id, response });
                } else if status < 300 {
                    // RFC 6026: stay to pass 2xx retransmissions to the TU (timer M).
                    tx.state = State::Accepted;
                    tx.end_at = Some(now + 64 * timers.t1);
                    tx.end_is_timeout = false;
                    out.push(TxOutput::Response { id, response });
                } else {
                    let ack = build_ack(&tx.request, &response).to_bytes();
                    out.push(TxOutput::Send {
                        peer: tx.peer,
                        bytes: ack.clone(),
                    });
                    tx.last_sent = Some(ack);
                    tx.state = State::Completed;
                    tx.end_at = Some(if reliable {
                        now
                    } else {
                        now + Duration::from_secs(32)
                    });
                    tx.end_is_timeout = false;
                    out.push(TxOutput::Response { id, response });
                }
            }
            (Role::InviteClient, State::Accepted) if (200..300).contains(&status) => {
                out.push(TxOutput::Response { id, response });
            }
            (Role::InviteClient, State::Completed) => {
                if status >= 300
                    && let Some(ack) = &tx.last_sent
                {
                    out.push(TxOutput::Send {
                        peer: tx.peer,
                        bytes: ack.clone(),
                    });
                }
            }
            (Role::NonInviteClient, State::Trying | State::Proceeding) => {
                if status < 200 {
                    tx.state = State::Proceeding;
                    out.push(TxOutput::Response { id, response });
                } else {
                    tx.state = State::Completed;
                    tx.retransmit_at = None;
                    tx.end_at = Some(if reliable { now } else { now + timers.t4 });
                    tx.end_is_timeout = false;
                    out.push(TxOutput::Response { id, response });
                }
            }
            _ => {}
        }
        let end = tx.end_at;
        if let Some(at) = end {
            self.arm(id, at);
        }
        // Reliable transports end Completed at once: run the expiry now, not at a poll.
        out.extend(self.expire(id, now));
        Some(out)
    }

    /// Feeds a request from `from`.
    pub fn on_request(&mut self, request: &Request, from: Peer, now: Instant) -> Incoming {
        let Some(key) = server_key(request) else {
            // Without a usable branch, treat it as new (it cannot be matched later).
            if request.method == Method::Ack {
                return Incoming::Ack;
            }
            return Incoming::New(self.new_server(request, from, None, now));
        };
        if let Some(&id) = self.by_key.get(&key) {
            let timers = self.timers;
            let Some(tx) = self.txs.get_mut(&id) else {
                return Incoming::Ack;
            };
            let mut out = Vec::new();
            if request.method == Method::Ack {
                if tx.role == Role::InviteServer && tx.state == State::Completed {
                    tx.state = State::Confirmed;
                    tx.retransmit_at = None;
                    let reliable = tx.peer.transport.reliable();
                    tx.end_at = Some(if reliable { now } else { now + timers.t4 });
                    tx.end_is_timeout = false;
                    let at = tx.end_at;
                    if let Some(at) = at {
                        self.arm(id, at);
                    }
                    out.extend(self.expire(id, now));
                    return Incoming::Absorbed(out);
                }
                if tx.role == Role::InviteServer && tx.state == State::Accepted {
                    // The ACK for a 2xx carries a new branch; one with the INVITE's branch
                    // (RFC 2543 style) still belongs to the dialog.
                    return Incoming::Ack;
                }
                return Incoming::Absorbed(out);
            }
            // A retransmitted request: re-send the last response (Accepted absorbs).
            if tx.state != State::Accepted
                && let Some(last) = &tx.last_sent
            {
                out.push(TxOutput::Send {
                    peer: tx.peer,
                    bytes: last.clone(),
                });
            }
            return Incoming::Absorbed(out);
        }
        if request.method == Method::Ack {
            return Incoming::Ack;
        }
        Incoming::New(self.new_server(request, from, Some(key), now))
    }

    fn new_server(
        &mut self,
        request: &Request,
        from: Peer,
        key: Option<Key>,
        now: Instant,
    ) -> TxId {
        let id = self.alloc();
        let role = if request.method == Method::Invite {
            Role::InviteServer
        } else {
            Role::NonInviteServer
        };
        let key = key.unwrap_or(Key::Server {
            branch: format!("nobranch-{}", id.0),
            sent_by: String::new(),
            method: request.method.clone(),
        });
        let tx = Tx {
            role,
            state: if role == Role::InviteServer {
                State::Proceeding
            } else {
                State::Trying
            },
            peer: from,
            method: request.method.clone(),
            request: request.clone(),
            last_sent: None,
            request_bytes: Vec::new(),
            interval: self.timers.t1,
            retransmit_at: None,
            // A server transaction the TU never answers must not live forever.
            end_at: Some(now + 64 * self.timers.t1 + Duration::from_secs(180)),
            end_is_timeout: false,
            key: key.clone(),
        };
        self.arm(id, now + 64 * self.timers.t1 + Duration::from_secs(180));
        self.txs.insert(id, tx);
        self.by_key.insert(key, id);
        id
    }

    /// The request a server transaction was created for.
    pub fn request(&self, id: TxId) -> Option<&Request> {
        self.txs.get(&id).map(|t| &t.request)
    }

    /// The peer of a transaction.
    pub fn peer(&self, id: TxId) -> Option<Peer> {
        self.txs.get(&id).map(|t| t.peer)
    }

    /// The server INVITE transaction a CANCEL refers to (same branch and sent-by).
    pub fn find_invite_for_cancel(&self, cancel: &Request) -> Option<TxId> {
        let Key::Server {
            branch, sent_by, ..
        } = server_key(cancel)?
        else {
            return None;
        };
        self.by_key
            .get(&Key::Server {
                branch,
                sent_by,
                method: Method::Invite,
            })
            .copied()
    }

    /// Whether an INVITE server transaction has not sent a final response yet.
    pub fn is_pending_invite(&self, id: TxId) -> bool {
        self.txs
            .get(&id)
            .is_some_and(|t| t.role == Role::InviteServer && t.state == State::Proceeding)
    }

    /// The TU answers a server transaction. Responses to a transaction that has already
    /// sent its final response are ignored (returns nothing).
    pub fn respond(&mut self, id: TxId, response: &Response, now: Instant) -> Vec<TxOutput> {
        let timers = self.timers;
        let Some(tx) = self.txs.get_mut(&id) else {
            return Vec::new();
        };
        if !matches!(tx.state, State::Trying | State::Proceeding) {
            return Vec::new();
        }
        let bytes = response.to_bytes();
        let reliable = tx.peer.transport.reliable();
        let out = vec![TxOutput::Send {
            peer: tx.peer,
            bytes: bytes.clone(),
        }];
        tx.last_sent = Some(bytes);
        let status = response.status;
        match tx.role {
            Role::InviteServer if status >= 300 => {
                tx.state = State::Completed;
                tx.interval = timers.t1;
                tx.retransmit_at = (!reliable).then(|| now + timers.t1);
                tx.end_at = Some(now + 64 * timers.t1);
                tx.end_is_timeout = true;
            }
            Role::InviteServer if status >= 200 => {
                tx.state = State::Accepted;
                tx.end_at = Some(now + 64 * timers.t1);
                tx.end_is_timeout = false;
            }
            Role::NonInviteServer if status >= 200 => {
                tx.state = State::Completed;
                tx.end_at = Some(if reliable { now } else { now + 64 * timers.t1 });
                tx.end_is_timeout = false;
            }
            Role::NonInviteServer => tx.state = State::Proceeding,
            _ => {}
        }
        let (r, e) = (tx.retransmit_at, tx.end_at);
        if let Some(at) = r {
            self.arm(id, at);
        }
        if let Some(at) = e {
            self.arm(id, at);
        }
        let mut out = out;
        out.extend(self.expire(id, now));
        out
    }

    /// Ends a client transaction early (the TU lost interest, e.g. after CANCEL's 487 or
    /// a transport error). Returns its `Terminated`.
    pub fn abandon(&mut self, id: TxId) -> Vec<TxOutput> {
        self.remove(id)
    }

    fn remove(&mut self, id: TxId) -> Vec<TxOutput> {
        match self.txs.remove(&id) {
            Some(tx) => {
                self.by_key.remove(&tx.key);
                vec![TxOutput::Terminated { id }]
            }
            None => Vec::new(),
        }
    }

    fn expire(&mut self, id: TxId, now: Instant) -> Vec<TxOutput> {
        let timers = self.timers;
        let Some(tx) = self.txs.get_mut(&id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if tx.end_at.is_some_and(|at| at <= now) {
            let timeout = tx.end_is_timeout;
            let method = tx.method.clone();
            if timeout {
                out.push(TxOutput::Timeout { id, method });
            }
            out.extend(self.remove(id));
            return out;
        }
        if let Some(at) = tx.retransmit_at
            && at <= now
        {
            let bytes = match tx.role {
                Role::InviteClient | Role::NonInviteClient => tx.request_bytes.clone(),
                _ => tx.last_sent.clone().unwrap_or_default(),
            };
            out.push(TxOutput::Send {
                peer: tx.peer,
                bytes,
            });
            tx.interval = match (tx.role, tx.state) {
                // Timer A doubles without a cap.
                (Role::InviteClient, _) => tx.interval * 2,
                // Timer E in Proceeding fires every T2.
                (Role::NonInviteClient, State::Proceeding) => timers.t2,
                _ => (tx.interval * 2).min(timers.t2),
            };
            let next = at + tx.interval;
            tx.retransmit_at = Some(next);
            self.arm(id, next);
        }
        out
    }

    /// The earliest instant [`TransactionLayer::poll`] has work to do.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        // Drop stale heap entries (timers re-armed or transactions gone) lazily.
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            match self.txs.get(&id) {
                Some(tx) if tx.retransmit_at == Some(at) || tx.end_at == Some(at) => {
                    return Some(at);
                }
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Fires every timer due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<TxOutput> {
        let mut out = Vec::new();
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            out.extend(self.expire(id, now));
        }
        out
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, Call-ID,
/// From, CSeq number and top Via as the INVITE, the response's To, the INVITE's Routes.
pub fn build_ack(invite: &Request, response: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(v) = invite.headers.get("Via") {
        ack.headers.push("Via", v);
    }
    for name in ["Route", "From"] {
        for v in invite.headers.get_all(name) {
            ack.headers.push(name, v);
        }
    }
    if let Some(to) = response.headers.get("To") {
        ack.headers.push("To", to);
    }
    if let Some(c) = invite.headers.get("Call-ID") {
        ack.headers.push("Call-ID", c);
    }
    let n = invite.key().map(|k| k.cseq).unwrap_or(1);
    ack.headers.push("CSeq", format!("{n} ACK"));
    ack.headers.push("Max-Forwards", "70");
    ack
}

/// The CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, To, From,
/// CSeq number, top Via (same branch) and Routes.
pub fn build_cancel(invite: &Request) -> Request {
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    if let Some(v) = invite.headers.get("Via") {
        c.headers.push("Via", v);
    }
    for name in ["Route", "From", "To", "Call-ID"] {
        for v in invite.headers.get_all(name) {
            c.headers.push(name, v);
        }
    }
    let n = invite.key().map(|k| k.cseq).unwrap_or(1);
    c.headers.push("CSeq", format!("{n} CANCEL"));
    c.headers.push("Max-Forwards", "70");
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, parse};

    fn peer(transport: Transport) -> Peer {
        Peer {
            addr: "127.0.0.1:5062".parse().unwrap(),
            transport,
        }
    }

    fn req(method: &str, branch: &str) -> Request {
        let m = format!(
            "{method} sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch={branch}\r\nFrom: <sip:a@h>;tag=f\r\nTo: <sip:b@h>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n\r\n"
        );
        match parse(m.as_bytes(), &Default::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn resp(r: &Request, status: u16) -> Response {
        let mut x = Response::to_request(r, status, "X");
        x.set_to_tag("t");
        x
    }

    fn sends(out: &[TxOutput]) -> usize {
        out.iter()
            .filter(|o| matches!(o, TxOutput::Send { .. }))
            .count()
    }

    #[test]
    fn timer_a_doubles_and_timer_b_times_out_at_64_t1() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        let (id, out) = l.send_request(req("INVITE", "z9hG4bKa"), peer(Transport::Udp), t0);
        assert_eq!(sends(&out), 1);
        // Retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s: 6 of them before B at 32 s.
        let mut at = Vec::new();
        let mut now = t0;
        while let Some(d) = l.next_deadline() {
            now = d;
            let out = l.poll(now);
            if sends(&out) > 0 {
                at.push((now - t0).as_millis());
            }
            if out
                .iter()
                .any(|o| matches!(o, TxOutput::Timeout { id: i, .. } if *i == id))
            {
                break;
            }
        }
        assert_eq!(at, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!((now - t0).as_millis(), 32_000);
        assert!(l.is_empty());
    }

    #[test]
    fn timer_e_caps_at_t2_and_f_fires() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        l.send_request(req("OPTIONS", "z9hG4bKo"), peer(Transport::Udp), t0);
        let mut at = Vec::new();
        let mut timed_out = None;
        while let Some(d) = l.next_deadline() {
            let out = l.poll(d);
            if sends(&out) > 0 {
                at.push((d - t0).as_millis());
            }
            if out.iter().any(|o| matches!(o, TxOutput::Timeout { .. })) {
                timed_out = Some((d - t0).as_millis());
            }
        }
        assert_eq!(&at[..5], &[500, 1500, 3500, 7500, 11500]);
        assert_eq!(at.len(), 10); // 500,1500,3500,7500,11500,...,31500
        assert_eq!(timed_out, Some(32_000));
    }

    #[test]
    fn reliable_transport_never_retransmits() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        l.send_request(req("INVITE", "z9hG4bKr"), peer(Transport::Tcp), t0);
        let d = l.next_deadline().unwrap();
        assert_eq!(d - t0, Duration::from_secs(32));
        let out = l.poll(d);
        assert_eq!(sends(&out), 0);
        assert!(out.iter().any(|o| matches!(o, TxOutput::Timeout { .. })));
    }

    #[test]
    fn invite_client_acks_non_2xx_and_timer_d_absorbs_retransmits() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        let invite = req("INVITE", "z9hG4bKd");
        l.send_request(invite.clone(), peer(Transport::Udp), t0);
        let out = l.on_response(resp(&invite, 100), t0).unwrap();
        assert!(matches!(&out[0], TxOutput::Response { response, .. } if response.status == 100));
        // No retransmission after a provisional.
        assert!(l.next_deadline().unwrap() - t0 == Duration::from_secs(32));
        let out = l
            .on_response(resp(&invite, 486), t0 + Duration::from_secs(1))
            .unwrap();
        let TxOutput::Send { bytes, .. } = &out[0] else {
            panic!()
        };
        let text = String::from_utf8_lossy(bytes);
        assert!(text.starts_with("ACK sip:b@h SIP/2.0"));
        assert!(text.contains("branch=z9hG4bKd"));
        assert!(text.contains("CSeq: 1 ACK"));
        assert!(text.contains("tag=t"));
        assert!(matches!(&out[1], TxOutput::Response { response, .. } if response.status == 486));
        // A retransmitted 486 is ACKed again and not passed up.
        let out = l
            .on_response(resp(&invite, 486), t0 + Duration::from_secs(2))
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(sends(&out), 1);
        // Timer D: 32 s after the final.
        assert_eq!(l.next_deadline().unwrap() - t0, Duration::from_secs(33));
    }

    #[test]
    fn invite_client_accepted_passes_2xx_retransmissions_up() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        let invite = req("INVITE", "z9hG4bKm");
        l.send_request(invite.clone(), peer(Transport::Udp), t0);
        let out = l.on_response(resp(&invite, 200), t0).unwrap();
        assert_eq!(out.len(), 1);
        let out = l
            .on_response(resp(&invite, 200), t0 + Duration::from_millis(500))
            .unwrap();
        assert!(matches!(&out[0], TxOutput::Response { response, .. } if response.status == 200));
        assert_eq!(l.next_deadline().unwrap() - t0, Duration::from_secs(32)); // timer M
    }

    #[test]
    fn invite_server_retransmits_final_g_until_ack_then_i() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        let invite = req("INVITE", "z9hG4bKs");
        let Incoming::New(id) = l.on_request(&invite, peer(Transport::Udp), t0) else {
            panic!()
        };
        let out = l.respond(id, &resp(&invite, 180), t0);
        assert_eq!(sends(&out), 1);
        // A retransmitted INVITE gets the 180 again.
        let Incoming::Absorbed(out) = l.on_request(&invite, peer(Transport::Udp), t0) else {
            panic!()
        };
        assert_eq!(sends(&out), 1);
        l.respond(id, &resp(&invite, 486), t0);
        let mut at = Vec::new();
        for _ in 0..3 {
            let d = l.next_deadline().unwrap();
            if sends(&l.poll(d)) > 0 {
                at.push((d - t0).as_millis());
            }
        }
        assert_eq!(at, vec![500, 1500, 3500]);
        let ack = {
            let mut a = req("ACK", "z9hG4bKs");
            a.headers.set("CSeq", "1 ACK");
            a
        };
        let t = t0 + Duration::from_secs(4);
        assert!(matches!(
            l.on_request(&ack, peer(Transport::Udp), t),
            Incoming::Absorbed(_)
        ));
        // Confirmed: timer I = T4, no more retransmissions.
        assert_eq!(l.next_deadline().unwrap(), t + Duration::from_secs(5));
        let out = l.poll(t + Duration::from_secs(5));
        assert_eq!(sends(&out), 0);
        assert!(l.is_empty());
    }

    #[test]
    fn invite_server_timer_h_reports_missing_ack() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        let invite = req("INVITE", "z9hG4bKh");
        let Incoming::New(id) = l.on_request(&invite, peer(Transport::Udp), t0) else {
            panic!()
        };
        l.respond(id, &resp(&invite, 603), t0);
        let mut n = 0;
        let mut timeout_at = None;
        while let Some(d) = l.next_deadline() {
            let out = l.poll(d);
            n += sends(&out);
            if out.iter().any(|o| matches!(o, TxOutput::Timeout { .. })) {
                timeout_at = Some(d - t0);
            }
        }
        assert_eq!(timeout_at, Some(Duration::from_secs(32)));
        // G: 0.5, 1.5, 3.5, 7.5, then every 4 s: 11.5 … 31.5 → 10 retransmissions.
        assert_eq!(n, 10);
    }

    #[test]
    fn non_invite_server_timer_j_and_2xx_ack_goes_to_tu() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        let bye = req("BYE", "z9hG4bKj");
        let Incoming::New(id) = l.on_request(&bye, peer(Transport::Udp), t0) else {
            panic!()
        };
        l.respond(id, &resp(&bye, 200), t0);
        let Incoming::Absorbed(out) = l.on_request(&bye, peer(Transport::Udp), t0) else {
            panic!()
        };
        assert_eq!(sends(&out), 1);
        assert_eq!(l.next_deadline().unwrap() - t0, Duration::from_secs(32));
        let mut ack = req("ACK", "z9hG4bKnew");
        ack.headers.set("CSeq", "1 ACK");
        assert_eq!(l.on_request(&ack, peer(Transport::Udp), t0), Incoming::Ack);
    }

    #[test]
    fn non_invite_client_timer_k() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        let r = req("REGISTER", "z9hG4bKk");
        l.send_request(r.clone(), peer(Transport::Udp), t0);
        let out = l.on_response(resp(&r, 200), t0).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(l.next_deadline().unwrap() - t0, Duration::from_secs(5));
        // Over TCP the transaction ends at once.
        let r = req("REGISTER", "z9hG4bKk2");
        l.send_request(r.clone(), peer(Transport::Tcp), t0);
        let out = l.on_response(resp(&r, 200), t0).unwrap();
        assert!(out.iter().any(|o| matches!(o, TxOutput::Terminated { .. })));
    }

    #[test]
    fn cancel_finds_its_invite() {
        let t0 = Instant::now();
        let mut l = TransactionLayer::new(Timers::default());
        let invite = req("INVITE", "z9hG4bKc");
        let Incoming::New(id) = l.on_request(&invite, peer(Transport::Udp), t0) else {
            panic!()
        };
        let cancel = build_cancel(&invite);
        assert_eq!(l.find_invite_for_cancel(&cancel), Some(id));
        let Incoming::New(cid) = l.on_request(&cancel, peer(Transport::Udp), t0) else {
            panic!()
        };
        assert_ne!(cid, id);
        assert!(l.is_pending_invite(id));
    }
}
