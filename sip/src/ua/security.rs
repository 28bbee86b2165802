//! Who may talk to the user agent (sans-IO; time is an input): deny/allow lists by
//! address or CIDR, trusted peers (IP-authenticated trunks), per-source token-bucket rate
//! limits and temporary bans after repeated authentication failures. This is the toll
//! fraud line: the user agent only marks a call *trusted* when its source matched a
//! trunk's `trusted_sources` or it passed digest authentication.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::SecurityConfig;

/// An address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: bad prefix"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The decision on a source before a request is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go on (authentication still applies unless trusted).
    Allow,
    /// Refused by the deny/allow lists: drop silently (no answer helps scanners).
    Denied,
    /// Over its rate: answer `503` with Retry-After, or drop when flooding.
    RateLimited,
    /// Banned after authentication failures: drop.
    Banned,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    failures: u32,
    banned_until: Option<Instant>,
}

/// Per-source state and the configured lists.
#[derive(Debug)]
pub struct Guard {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    rate: f64,
    burst: f64,
    ban_after: u32,
    ban_for: Duration,
    sources: HashMap<IpAddr, Bucket>,
}

impl Guard {
    /// From the (validated) configuration; unparsable entries are skipped (validation
    /// reports them first).
    pub fn new(cfg: &SecurityConfig) -> Self {
        let list = |v: &[String]| v.iter().filter_map(|c| Cidr::parse(c).ok()).collect();
        Self {
            allow: list(&cfg.allow),
            deny: list(&cfg.deny),
            rate: f64::from(cfg.rate_per_sec),
            burst: f64::from(cfg.rate_burst.max(1)),
            ban_after: cfg.ban_after_failures,
            ban_for: Duration::from_secs(cfg.ban_secs),
            sources: HashMap::new(),
        }
    }

    /// Decides on one request from `ip`. `exempt` sources (trusted trunks) skip the rate
    /// limit but not the deny list.
    pub fn admit(&mut self, ip: IpAddr, exempt: bool, now: Instant) -> Admission {
        if self.deny.iter().any(|c| c.contains(ip)) {
            return Admission::Denied;
        }
        if !exempt && !self.allow.is_empty() && !self.allow.iter().any(|c| c.contains(ip)) {
            return Admission::Denied;
        }
        let (rate, burst) = (self.rate, self.burst);
        if self.sources.len() > 10_000 {
            self.prune(now);
        }
        let b = self.sources.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
            failures: 0,
            banned_until: None,
        });
        if let Some(until) = b.banned_until {
            if now < until {
                return Admission::Banned;
            }
            b.banned_until = None;
            b.failures = 0;
        }
        if exempt || rate <= 0.0 {
            return Admission::Allow;
        }
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(burst);
        b.at = now;
        if b.tokens < 1.0 {
            return Admission::RateLimited;
        }
        b.tokens -= 1.0;
        Admission::Allow
    }

    /// Records a failed authentication; true when the source is now banned.
    pub fn auth_failed(&mut self, ip: IpAddr, now: Instant) -> bool {
        let burst = self.burst;
        let b = self.sources.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
            failures: 0,
            banned_until: None,
        });
        b.failures += 1;
        if self.ban_after > 0 && b.failures >= self.ban_after {
            b.banned_until = Some(now + self.ban_for);
            return true;
        }
        false
    }

    /// Records a successful authentication (the failure count restarts).
    pub fn auth_ok(&mut self, ip: IpAddr) {
        if let Some(b) = self.sources.get_mut(&ip) {
            b.failures = 0;
        }
    }

    fn prune(&mut self, now: Instant) {
        let burst = self.burst;
        self.sources.retain(|_, b| {
            b.banned_until.is_some_and(|u| u > now) || b.failures > 0 || b.tokens < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("192.168.1.0/24").unwrap();
        assert!(c.contains(ip("192.168.1.77")));
        assert!(!c.contains(ip("192.168.2.1")));
        assert!(c.contains(ip("::ffff:192.168.1.5")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
    }

    #[test]
    fn lists_rates_and_bans() {
        let t0 = Instant::now();
        let cfg = SecurityConfig {
            allow: vec!["10.0.0.0/8".into()],
            deny: vec!["10.6.6.6".into()],
            rate_per_sec: 10,
            rate_burst: 5,
            ban_after_failures: 3,
            ban_secs: 60,
            challenge_unknown: true,
        };
        let mut g = Guard::new(&cfg);
        assert_eq!(g.admit(ip("10.6.6.6"), false, t0), Admission::Denied);
        assert_eq!(g.admit(ip("11.0.0.1"), false, t0), Admission::Denied);
        let a = ip("10.0.0.1");
        for _ in 0..5 {
            assert_eq!(g.admit(a, false, t0), Admission::Allow);
        }
        assert_eq!(g.admit(a, false, t0), Admission::RateLimited);
        assert_eq!(g.admit(a, true, t0), Admission::Allow);
        // 100 ms refill one token at 10/s.
        assert_eq!(
            g.admit(a, false, t0 + Duration::from_millis(100)),
            Admission::Allow
        );
        assert!(!g.auth_failed(a, t0));
        assert!(!g.auth_failed(a, t0));
        assert!(g.auth_failed(a, t0));
        assert_eq!(
            g.admit(a, false, t0 + Duration::from_secs(59)),
            Admission::Banned
        );
        assert_eq!(
            g.admit(a, false, t0 + Duration::from_secs(61)),
            Admission::Allow
        );
    }
}
