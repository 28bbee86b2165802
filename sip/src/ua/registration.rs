//! Registration to a trunk (RFC 3261 §10.2), sans-IO: builds REGISTERs, answers digest
//! challenges once per nonce, refreshes before expiry, backs off on failure, and reports
//! state changes. The user agent sends what it builds and feeds responses and `now`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::auth::{Challenge, ClientAuth};
use crate::message::{Method, Request, Response, param, split_commas};

/// A trunk registration's state, as events and queries show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegState {
    /// Not registered yet (or registration disabled).
    Unregistered,
    /// A REGISTER is in flight.
    Registering,
    /// Registered until the given number of seconds after the event.
    Registered {
        /// Seconds the registrar granted.
        expires_secs: u32,
    },
    /// The last attempt failed; retrying after a backoff.
    Failed {
        /// The status, or 0 for a timeout.
        status: u16,
        /// Why, in words.
        reason: String,
        /// Seconds until the next attempt.
        retry_in_secs: u64,
    },
}

/// What the registration client wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum RegAction {
    /// Send this REGISTER (the user agent adds the Via and starts a transaction).
    Send(Request),
    /// The state changed.
    State(RegState),
}

/// One trunk's registration.
#[derive(Debug)]
pub struct RegClient {
    aor: String,
    registrar_uri: String,
    contact: String,
    username: String,
    password: String,
    expires: u32,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: RegState,
    next_at: Option<Instant>,
    in_flight: bool,
    /// The last REGISTER answered a challenge received just before it.
    answered_fresh: bool,
    auth: ClientAuth,
    last_auth: Option<(Challenge, bool)>,
    failures: u32,
}

impl RegClient {
    /// A client for AoR `sip:username@domain`, registering `contact` at `registrar_uri`.
    pub fn new(username: &str, password: &str, domain: &str, contact: &str, expires: u32) -> Self {
        Self {
            aor: format!("sip:{username}@{domain}"),
            registrar_uri: format!("sip:{domain}"),
            contact: contact.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            expires,
            call_id: format!("{:016x}@flowgate", rand::random::<u64>()),
            from_tag: format!("{:08x}", rand::random::<u32>()),
            cseq: 0,
            state: RegState::Unregistered,
            next_at: None,
            in_flight: false,
            answered_fresh: false,
            auth: ClientAuth::default(),
            last_auth: None,
            failures: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> &RegState {
        &self.state
    }

    /// When [`RegClient::poll`] wants to run next.
    pub fn next_at(&self) -> Option<Instant> {
        if self.in_flight { None } else { self.next_at }
    }

    /// Schedules the first REGISTER for `at` (the next [`RegClient::poll`] after it sends).
    pub fn schedule(&mut self, at: Instant) {
        self.next_at = Some(at);
    }

    /// Starts registering now.
    pub fn start(&mut self, now: Instant) -> Vec<RegAction> {
        self.next_at = Some(now);
        self.poll(now)
    }

    fn build(&mut self, expires: u32) -> Request {
        self.cseq += 1;
        let mut r = Request::new(Method::Register, self.registrar_uri.clone());
        r.headers.push("Max-Forwards", "70");
        r.headers
            .push("From", format!("<{}>;tag={}", self.aor, self.from_tag));
        r.headers.push("To", format!("<{}>", self.aor));
        r.headers.push("Call-ID", self.call_id.clone());
        r.headers.push("CSeq", format!("{} REGISTER", self.cseq));
        r.headers
            .push("Contact", format!("{};expires={expires}", self.contact));
        r.headers.push("Expires", expires.to_string());
        if let Some((c, proxy)) = &self.last_auth {
            // Pre-authorise refreshes with the last challenge (nc counts up).
            let v = self.auth.authorize(
                c,
                &self.username,
                &self.password,
                "REGISTER",
                &self.registrar_uri,
            );
            r.headers.push(
                if *proxy {
                    "Proxy-Authorization"
                } else {
                    "Authorization"
                },
                v,
            );
        }
        r
    }

    fn set(&mut self, s: RegState, out: &mut Vec<RegAction>) {
        if self.state != s {
            self.state = s.clone();
            out.push(RegAction::State(s));
        }
    }

    /// Runs due work (the first REGISTER, refreshes, retries).
    pub fn poll(&mut self, now: Instant) -> Vec<RegAction> {
        let mut out = Vec::new();
        if self.in_flight || self.next_at.is_none_or(|t| t > now) {
            return out;
        }
        self.next_at = None;
        self.in_flight = true;
        self.answered_fresh = false;
        let req = self.build(self.expires);
        if !matches!(self.state, RegState::Registered { .. }) {
            self.set(RegState::Registering, &mut out);
        }
        out.push(RegAction::Send(req));
        out
    }

    fn fail(&mut self, status: u16, reason: String, now: Instant) -> Vec<RegAction> {
        self.in_flight = false;
        self.failures += 1;
        // 30 s, 60 s, … capped at 30 min: a broken trunk is not hammered.
        let backoff = (30u64 << self.failures.min(6).saturating_sub(1)).min(1800);
        self.next_at = Some(now + Duration::from_secs(backoff));
        self.last_auth = None;
        let mut out = Vec::new();
        self.set(
            RegState::Failed {
                status,
                reason,
                retry_in_secs: backoff,
            },
            &mut out,
        );
        out
    }

    /// The REGISTER transaction timed out.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<RegAction> {
        self.fail(0, "no response".into(), now)
    }

    /// A final response to our REGISTER.
    pub fn on_response(&mut self, resp: &Response, now: Instant) -> Vec<RegAction> {
        if resp.status < 200 {
            return Vec::new();
        }
        match resp.status {
            200..=299 => {
                self.in_flight = false;
                self.failures = 0;
                self.answered_fresh = false;
                let granted = self.granted(resp).unwrap_or(self.expires).max(1);
                // Refresh at half the granted time (at least 5 s before expiry).
                let refresh = Duration::from_secs(u64::from(granted / 2).max(1)).min(
                    Duration::from_secs(u64::from(granted.saturating_sub(5)).max(1)),
                );
                self.next_at = Some(now + refresh);
                let mut out = Vec::new();
                self.set(
                    RegState::Registered {
                        expires_secs: granted,
                    },
                    &mut out,
                );
                out
            }
            401 | 407 => {
                let proxy = resp.status == 407;
                let name = if proxy {
                    "Proxy-Authenticate"
                } else {
                    "WWW-Authenticate"
                };
                let ch = match Challenge::pick(resp.headers.get_all(name)) {
                    Ok(c) => c,
                    Err(e) => return self.fail(resp.status, e.to_string(), now),
                };
                // Credentials answering the challenge just received were refused (a new
                // challenge that is not `stale`): the password is wrong; do not loop.
                // Pre-authorised refreshes (built from an older challenge) may be
                // challenged once.
                if self.answered_fresh && !ch.stale {
                    return self.fail(resp.status, "credentials refused".into(), now);
                }
                self.answered_fresh = true;
                self.last_auth = Some((ch, proxy));
                let req = self.build(self.expires);
                vec![RegAction::Send(req)]
            }
            423 => {
                if let Some(min) = resp
                    .headers
                    .get("Min-Expires")
                    .and_then(|m| m.parse::<u32>().ok())
                    && min > self.expires
                    && min <= 86_400
                {
                    self.expires = min;
                    let req = self.build(self.expires);
                    return vec![RegAction::Send(req)];
                }
                self.fail(423, "interval too brief".into(), now)
            }
            s => self.fail(s, resp.reason.clone(), now),
        }
    }

    fn granted(&self, resp: &Response) -> Option<u32> {
        let ours = resp
            .headers
            .get_all("Contact")
            .flat_map(split_commas)
            .find(|c| {
                crate::message::NameAddr::parse(c).is_ok_and(|n| self.contact.contains(&n.uri))
            });
        if let Some(c) = ours
            && let Some(Some(e)) = param(c, "expires")
        {
            return e.parse().ok();
        }
        resp.headers.get("Expires").and_then(|e| e.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Algorithm, Answer, DigestServer, Verdict};

    fn reply(req: &Request, status: u16, extra: &[(&str, String)]) -> Response {
        let mut r = Response::to_request(req, status, "x");
        r.set_to_tag("reg");
        for (k, v) in extra {
            r.headers.push(k, v.clone());
        }
        r
    }

    fn sent(a: &[RegAction]) -> Request {
        a.iter()
            .find_map(|x| {
                if let RegAction::Send(r) = x {
                    Some(r.clone())
                } else {
                    None
                }
            })
            .unwrap()
    }

    #[test]
    fn challenge_register_refresh_and_backoff() {
        let t0 = Instant::now();
        let mut server =
            DigestServer::new("kamailio", &[Algorithm::Md5], Duration::from_secs(300), t0);
        let mut c = RegClient::new(
            "alice",
            "pw123456",
            "127.0.0.1",
            "<sip:alice@127.0.0.1:5062>",
            120,
        );
        let a = c.start(t0);
        assert_eq!(a[0], RegAction::State(RegState::Registering));
        let r1 = sent(&a);
        assert_eq!(r1.headers.get("CSeq"), Some("1 REGISTER"));
        assert!(r1.headers.get("Authorization").is_none());
        let ch = server.challenge(t0, false).remove(0);
        let a = c.on_response(&reply(&r1, 401, &[("WWW-Authenticate", ch)]), t0);
        let r2 = sent(&a);
        assert_eq!(r2.headers.get("CSeq"), Some("2 REGISTER"));
        let ans = Answer::parse(r2.headers.get("Authorization").unwrap()).unwrap();
        assert_eq!(
            server.verify(&ans, "REGISTER", t0, |u| (u == "alice")
                .then(|| "pw123456".into())),
            Verdict::Ok("alice".into())
        );
        let ok = reply(
            &r2,
            200,
            &[("Contact", "<sip:alice@127.0.0.1:5062>;expires=60".into())],
        );
        let a = c.on_response(&ok, t0);
        assert_eq!(
            a,
            vec![RegAction::State(RegState::Registered { expires_secs: 60 })]
        );
        assert_eq!(c.next_at(), Some(t0 + Duration::from_secs(30)));
        // Refresh: pre-authorised with nc=2.
        let a = c.poll(t0 + Duration::from_secs(30));
        let r3 = sent(&a);
        assert!(
            r3.headers
                .get("Authorization")
                .unwrap()
                .contains("nc=00000002")
        );
        // The registrar stops answering: back off 30 s.
        let a = c.on_timeout(t0 + Duration::from_secs(62));
        assert!(matches!(
            &a[0],
            RegAction::State(RegState::Failed {
                status: 0,
                retry_in_secs: 30,
                ..
            })
        ));
        assert_eq!(c.next_at(), Some(t0 + Duration::from_secs(92)));
    }

    #[test]
    fn wrong_password_fails_instead_of_looping() {
        let t0 = Instant::now();
        let mut c = RegClient::new("alice", "wrong", "h", "<sip:alice@h:1>", 120);
        let r1 = sent(&c.start(t0));
        let ch = "Digest realm=\"h\", nonce=\"n1\", qop=\"auth\"".to_owned();
        let r2 = sent(&c.on_response(&reply(&r1, 401, &[("WWW-Authenticate", ch.clone())]), t0));
        let a = c.on_response(&reply(&r2, 401, &[("WWW-Authenticate", ch)]), t0);
        assert!(matches!(
            &a[0],
            RegAction::State(RegState::Failed { status: 401, .. })
        ));
    }
}
