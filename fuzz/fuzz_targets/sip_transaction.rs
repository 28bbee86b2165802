//! Fuzz target for the transaction layer: a sequence of operations decoded from the
//! input — messages (requests and responses built from a small vocabulary with fuzzed
//! branches, methods, statuses and CSeqs, plus raw fuzzed datagrams), TU responses,
//! requests sent, and time steps — must never panic, and every instant the layer asks
//! to be woken at must be in the future of the last poll.

#![no_main]

use std::time::{Duration, Instant};

use flowgate_sip::message::{Limits, Message, Method, Request, Response, parse};
use flowgate_sip::transaction::{Incoming, Peer, Timers, TransactionLayer, Transport, TxId};

const METHODS: &[&str] = &["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO"];

fn request(method: &str, branch: u8, cseq: u8) -> Option<Request> {
    let m = format!(
        "{method} sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch}\r\nFrom: <sip:b@h>;tag=f\r\nTo: <sip:a@h>\r\nCall-ID: c{branch}\r\nCSeq: {cseq} {method}\r\n\r\n"
    );
    match parse(m.as_bytes(), &Limits::default()) {
        Ok(Message::Request(r)) => Some(r),
        _ => None,
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let timers = Timers { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) };
    let mut layer = TransactionLayer::new(timers);
    let mut servers: Vec<TxId> = Vec::new();
    let mut sent: Vec<Request> = Vec::new();
    let mut it = data.chunks(4);
    while let Some(op) = it.next() {
        let [kind, a, b, c] = match *op {
            [k, a, b, c] => [k, a, b, c],
            _ => return,
        };
        let transport = if c & 1 == 0 { Transport::Udp } else { Transport::Tcp };
        let peer = Peer { addr: "127.0.0.1:5070".parse().unwrap(), transport };
        match kind % 7 {
            0 => {
                if let Some(r) = request(METHODS[usize::from(a) % METHODS.len()], b % 8, c) {
                    if let Incoming::New(id) = layer.on_request(&r, peer, now) {
                        servers.push(id);
                    }
                }
            }
            1 => {
                if let Some(r) = request(METHODS[usize::from(a) % METHODS.len()], b % 8, c) {
                    if r.method != Method::Ack && r.method != Method::Cancel {
                        let (_, _) = layer.send_request(r.clone(), peer, now);
                        sent.push(r);
                    }
                }
            }
            2 => {
                if let Some(r) = sent.get(usize::from(a) % sent.len().max(1)) {
                    let status = 100 + u16::from(b) * 2 + u16::from(c % 3) * 100;
                    let mut resp = Response::to_request(r, status.min(699), "X");
                    resp.set_to_tag("t");
                    let _ = layer.on_response(resp, now);
                }
            }
            3 => {
                if let Some(&id) = servers.get(usize::from(a) % servers.len().max(1)) {
                    if let Some(req) = layer.request(id).cloned() {
                        let status = 100 + u16::from(b) * 2 + u16::from(c % 3) * 100;
                        let mut resp = Response::to_request(&req, status.min(699), "X");
                        resp.set_to_tag("t");
                        let _ = layer.respond(id, &resp, now);
                    }
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(u16::from_be_bytes([a, b])));
                let _ = layer.poll(now);
                if let Some(d) = layer.next_deadline() {
                    assert!(d > now, "a deadline at or before the last poll was left");
                }
            }
            5 => {
                // A raw fuzzed datagram from the rest of the input.
                let rest: Vec<u8> = it.by_ref().take(usize::from(a) / 4 + 1).flatten().copied().collect();
                match parse(&rest, &Limits::default()) {
                    Ok(Message::Request(r)) => {
                        let _ = layer.on_request(&r, peer, now);
                    }
                    Ok(Message::Response(r)) => {
                        let _ = layer.on_response(r, now);
                    }
                    Err(_) => {}
                }
            }
            _ => {
                if let Some(&id) = servers.get(usize::from(a) % servers.len().max(1)) {
                    let _ = layer.abandon(id);
                }
            }
        }
    }
});
