//! The built-in registrar's bindings (RFC 3261 §10.3), sans-IO: per-extension contact
//! bindings with expiry, Call-ID/CSeq ordering, `Contact: *` removal, and lookup of
//! where to send a call for an extension. Authentication happens before this (digest
//! per extension, in the user agent).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{NameAddr, Request, param, split_commas};
use crate::transaction::Transport;

/// One contact binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI.
    pub contact: String,
    /// Where the REGISTER came from (requests go there: the phone may be behind NAT).
    pub source: SocketAddr,
    /// Transport it came over.
    pub transport: Transport,
    /// When it expires.
    pub expires: Instant,
    /// Call-ID of the registering UA.
    pub call_id: String,
    /// Its CSeq.
    pub cseq: u32,
}

/// Why a REGISTER was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// Expires below the minimum: `423` with `Min-Expires`.
    IntervalTooBrief(u32),
    /// Out-of-order CSeq for the same Call-ID, or a bad Contact: `400`.
    Bad(String),
}

/// All bindings.
#[derive(Debug, Default)]
pub struct Registrar {
    bindings: HashMap<String, Vec<Binding>>,
    min_expires: u32,
    max_expires: u32,
}

impl Registrar {
    /// A registrar granting between `min_expires` and `max_expires` seconds.
    pub fn new(min_expires: u32, max_expires: u32) -> Self {
        Self {
            bindings: HashMap::new(),
            min_expires,
            max_expires,
        }
    }

    /// Applies an (authenticated) REGISTER for `user`; returns the bindings now in force
    /// with their remaining seconds, for the 200's Contact headers.
    pub fn register(
        &mut self,
        user: &str,
        req: &Request,
        source: SocketAddr,
        transport: Transport,
        now: Instant,
    ) -> Result<Vec<(String, u32)>, RegisterError> {
        let key = req.key().map_err(|e| RegisterError::Bad(e.to_string()))?;
        let default_exp: u32 = req
            .headers
            .get("Expires")
            .and_then(|e| e.parse().ok())
            .unwrap_or(3600);
        let contacts: Vec<&str> = req
            .headers
            .get_all("Contact")
            .flat_map(split_commas)
            .collect();
        let list = self.bindings.entry(user.to_owned()).or_default();
        list.retain(|b| b.expires > now);
        if contacts.len() == 1 && contacts[0] == "*" {
            if default_exp != 0 {
                return Err(RegisterError::Bad("Contact: * needs Expires: 0".into()));
            }
            list.retain(|b| b.call_id == key.call_id && b.cseq >= key.cseq);
        } else {
            for c in contacts {
                let na = NameAddr::parse(c).map_err(|e| RegisterError::Bad(e.to_string()))?;
                let exp = param(c, "expires")
                    .flatten()
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(default_exp);
                if exp != 0 && exp < self.min_expires {
                    return Err(RegisterError::IntervalTooBrief(self.min_expires));
                }
                let exp = exp.min(self.max_expires);
                if let Some(b) = list.iter().find(|b| b.contact == na.uri)
                    && b.call_id == key.call_id
                    && key.cseq <= b.cseq
                {
                    return Err(RegisterError::Bad("CSeq out of order".into()));
                }
                list.retain(|b| b.contact != na.uri);
                if exp > 0 {
                    // Bounded: a phone with more than 10 contacts is misbehaving.
                    if list.len() >= 10 {
                        list.remove(0);
                    }
                    list.push(Binding {
                        contact: na.uri,
                        source,
                        transport,
                        expires: now + Duration::from_secs(u64::from(exp)),
                        call_id: key.call_id.clone(),
                        cseq: key.cseq,
                    });
                }
            }
        }
        Ok(self.current(user, now))
    }

    /// The live bindings of `user` with remaining seconds.
    pub fn current(&self, user: &str, now: Instant) -> Vec<(String, u32)> {
        self.bindings
            .get(user)
            .map(|l| {
                l.iter()
                    .filter(|b| b.expires > now)
                    .map(|b| {
                        (
                            b.contact.clone(),
                            u32::try_from(b.expires.duration_since(now).as_secs())
                                .unwrap_or(u32::MAX),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The most recent live binding of `user` (where a call to the extension goes).
    pub fn lookup(&self, user: &str, now: Instant) -> Option<&Binding> {
        self.bindings
            .get(user)?
            .iter()
            .rev()
            .find(|b| b.expires > now)
    }

    /// Every user with at least one live binding.
    pub fn registered(&self, now: Instant) -> Vec<String> {
        let mut v: Vec<String> = self
            .bindings
            .iter()
            .filter(|(_, l)| l.iter().any(|b| b.expires > now))
            .map(|(u, _)| u.clone())
            .collect();
        v.sort();
        v
    }

    /// Drops expired bindings; returns the users whose last binding expired.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        self.bindings.retain(|u, l| {
            let had = !l.is_empty();
            l.retain(|b| b.expires > now);
            if had && l.is_empty() {
                gone.push(u.clone());
            }
            !l.is_empty()
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, parse};

    fn reg(contact: &str, expires: Option<u32>, cseq: u32) -> Request {
        let mut s = format!(
            "REGISTER sip:flowgate SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK{cseq}\r\nFrom: <sip:201@flowgate>;tag=a\r\nTo: <sip:201@flowgate>\r\nCall-ID: reg1\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\n"
        );
        if let Some(e) = expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        s.push_str("\r\n");
        match parse(s.as_bytes(), &Default::default()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn bind_refresh_expire_and_remove() {
        let t0 = Instant::now();
        let src: SocketAddr = "10.0.0.5:5060".parse().unwrap();
        let mut r = Registrar::new(60, 3600);
        let b = r
            .register(
                "201",
                &reg("<sip:201@10.0.0.5:5060>", Some(120), 1),
                src,
                Transport::Udp,
                t0,
            )
            .unwrap();
        assert_eq!(b, vec![("sip:201@10.0.0.5:5060".to_owned(), 120)]);
        assert_eq!(r.lookup("201", t0).unwrap().source, src);
        assert_eq!(
            r.register(
                "201",
                &reg("<sip:201@10.0.0.5:5060>", Some(120), 1),
                src,
                Transport::Udp,
                t0
            ),
            Err(RegisterError::Bad("CSeq out of order".into()))
        );
        assert_eq!(
            r.register(
                "201",
                &reg("<sip:201@10.0.0.5>", Some(10), 2),
                src,
                Transport::Udp,
                t0
            ),
            Err(RegisterError::IntervalTooBrief(60))
        );
        // Per-contact expires wins, capped at max.
        let b = r
            .register(
                "201",
                &reg("<sip:201@10.0.0.5:5060>;expires=99999", None, 3),
                src,
                Transport::Udp,
                t0,
            )
            .unwrap();
        assert_eq!(b[0].1, 3600);
        assert_eq!(r.registered(t0), vec!["201".to_owned()]);
        assert_eq!(
            r.expire(t0 + Duration::from_secs(3601)),
            vec!["201".to_owned()]
        );
        assert!(r.lookup("201", t0 + Duration::from_secs(3601)).is_none());
        r.register(
            "201",
            &reg("<sip:201@10.0.0.5:5060>", Some(120), 4),
            src,
            Transport::Udp,
            t0,
        )
        .unwrap();
        let b = r
            .register("201", &reg("*", Some(0), 5), src, Transport::Udp, t0)
            .unwrap();
        assert!(b.is_empty());
    }
}
