//! Browser sessions of the admin page: an opaque random id in an `HttpOnly`, `SameSite=Strict`
//! cookie, mapped in memory to its expiry and its CSRF token.
//!
//! Sans-IO: time is an argument, randomness comes in through [`SessionStore::create`]'s
//! caller-supplied bytes, so the rules (expiry, the cap, revocation) are tested without a
//! clock. Sessions live in memory only: a daemon restart logs everybody out, which is the
//! safe side for an admin console, and nothing secret is written to flash.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub(crate) const COOKIE: &str = "flowgate_session";

/// How long a login lasts. Fixed (not sliding): an installer's laptop left open on site logs
/// itself out by the end of the working day.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Most live sessions; the oldest is dropped beyond it, so a script that logs in in a loop
/// cannot grow the daemon's memory.
pub(crate) const MAX_SESSIONS: usize = 32;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token forms and `fetch` calls must send back with every change.
    pub(crate) csrf: String,
    /// When it ends.
    pub(crate) expires: Instant,
    created: Instant,
}

/// Every live session, by cookie value.
#[derive(Debug, Default)]
pub(crate) struct SessionStore {
    sessions: HashMap<String, Session>,
}

impl SessionStore {
    /// Starts a session from 64 random bytes (32 for the id, 32 for the CSRF token); returns
    /// the cookie value.
    pub(crate) fn create(&mut self, random: [u8; 64], now: Instant) -> (String, Session) {
        self.sessions.retain(|_, s| s.expires > now);
        while self.sessions.len() >= MAX_SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.sessions.remove(&id),
                None => break,
            };
        }
        let id = hex::encode(&random[..32]);
        let session = Session {
            csrf: hex::encode(&random[32..]),
            expires: now + SESSION_TTL,
            created: now,
        };
        self.sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session of a cookie value.
    pub(crate) fn get(&self, id: &str, now: Instant) -> Option<Session> {
        self.sessions.get(id).filter(|s| s.expires > now).cloned()
    }

    /// Ends a session (logout).
    pub(crate) fn revoke(&mut self, id: &str) {
        self.sessions.remove(id);
    }

    /// Ends every session (the API token changed: whoever logged in with the old one must
    /// log in again).
    pub(crate) fn revoke_all(&mut self) {
        self.sessions.clear();
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.len() == presented.len()
            && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// The session cookie's value in a `Cookie` header.
pub(crate) fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then_some(value.trim())
    })
}

/// `Set-Cookie` for a new session. `Path=/` because the page lives at `/admin` and its proxy
/// under `/admin/api`; `SameSite=Strict` keeps the cookie off every cross-site request.
pub(crate) fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

/// `Set-Cookie` that deletes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: u8) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0] = n;
        b[32] = n.wrapping_add(100);
        b
    }

    #[test]
    fn a_session_expires_and_can_be_revoked() {
        let mut store = SessionStore::default();
        let t0 = Instant::now();
        let (id, s) = store.create(bytes(1), t0);
        assert_eq!(id.len(), 64);
        assert!(store.get(&id, t0 + Duration::from_secs(60)).is_some());
        assert!(store.get(&id, t0 + SESSION_TTL).is_none());
        assert!(s.csrf_matches(&s.csrf));
        assert!(!s.csrf_matches("x"));
        assert!(!s.csrf_matches(&"0".repeat(64)));
        store.revoke(&id);
        assert!(store.get(&id, t0).is_none());
        assert!(store.get("nonsense", t0).is_none());
    }

    #[test]
    fn the_oldest_session_goes_beyond_the_cap() {
        let mut store = SessionStore::default();
        let t0 = Instant::now();
        let (first, _) = store.create(bytes(0), t0);
        for n in 1..=u8::try_from(MAX_SESSIONS).unwrap_or(u8::MAX) {
            store.create(bytes(n), t0 + Duration::from_secs(u64::from(n)));
        }
        assert!(store.get(&first, t0).is_none());
        assert_eq!(store.sessions.len(), MAX_SESSIONS);
        store.revoke_all();
        assert!(store.sessions.is_empty());
    }

    #[test]
    fn cookie_header_is_read() {
        assert_eq!(cookie_value("a=b; flowgate_session=abc ; c=d"), Some("abc"));
        assert_eq!(cookie_value("a=b"), None);
        assert_eq!(cookie_value(""), None);
        assert!(set_cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
