//! The gateway's lines and the routing table that picks the lines a call goes out on.
//!
//! A route matches a destination by its address type (`tel`, `sip`, `extension`, or any)
//! and a prefix of its target, and names the lines to try, in order: line ids (`sim1`) or
//! every line of a transport (`modem:*`, `sip:*`, `fxo:*`, `fxs:*`, in board order). The
//! route with the longest matching prefix wins (a more specific rule beats a general one
//! wherever it is written); among equal prefixes, the first written. With no routes
//! configured, the built-in table sends numbers to the modems then the FXO ports, SIP
//! addresses to SIP lines, and extensions to FXS ports then SIP.
//!
//! Lines that are not available when the call is placed (busy, unregistered, down) are
//! skipped at dial time (see `calls::dial`), so the order here is a preference, not a
//! promise.

use std::sync::Arc;

use flowgate_flows::model::Address;
use flowgate_line::{Line, Transport};
use serde::{Deserialize, Serialize};

/// Every line of the gateway, in board order. Cheap to clone.
#[derive(Clone, Default)]
pub struct Lines {
    list: Arc<Vec<Arc<dyn Line>>>,
}

impl Lines {
    /// The lines.
    pub fn new(list: Vec<Arc<dyn Line>>) -> Self {
        Self {
            list: Arc::new(list),
        }
    }

    /// All lines.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Line>> {
        self.list.iter()
    }

    /// The line with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Line>> {
        self.list.iter().find(|l| l.id() == id)
    }
}

/// One routing rule (`[[routes]]` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Address type it applies to: `tel`, `sip`, `extension`, or `""` for any. An untyped
    /// destination is a `tel` number.
    #[serde(default)]
    pub destination: String,
    /// Target prefix (`+44`, `0049`, `sip:` targets by host prefix); `""` matches all.
    #[serde(default)]
    pub prefix: String,
    /// Lines to try in order: line ids, or `<transport>:*` for every line of a transport.
    pub lines: Vec<String>,
}

/// Why no line can be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No route matches the destination.
    #[error("no route for {0}")]
    NoRoute(String),
    /// Routes match, but they name no line the gateway has.
    #[error("the route for {0} names no line this gateway has ({1})")]
    NoLine(String, String),
}

/// Address types a route may name.
const KINDS: &[&str] = &["", "tel", "sip", "extension"];

/// The routing table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// The table from configured routes; empty means the built-in table.
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// The built-in table.
    fn builtin() -> Vec<Route> {
        let route = |destination: &str, lines: &[&str]| Route {
            destination: destination.into(),
            prefix: String::new(),
            lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        };
        vec![
            route("tel", &["modem:*", "fxo:*"]),
            route("sip", &["sip:*"]),
            route("extension", &["fxs:*", "sip:*"]),
        ]
    }

    /// Every problem with `routes`, as `(key, message)` (config validation).
    pub fn problems(routes: &[Route]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, r) in routes.iter().enumerate() {
            if !KINDS.contains(&r.destination.as_str()) {
                out.push((
                    format!("routes[{i}].destination"),
                    format!("{:?} is not tel, sip, extension or \"\"", r.destination),
                ));
            }
            if r.lines.is_empty() {
                out.push((format!("routes[{i}].lines"), "names no line".into()));
            }
            for (j, l) in r.lines.iter().enumerate() {
                let ok = match l.strip_suffix(":*") {
                    Some(t) => parse_transport(t).is_some(),
                    None => !l.trim().is_empty() && !l.contains(char::is_whitespace),
                };
                if !ok {
                    out.push((
                        format!("routes[{i}].lines[{j}]"),
                        format!("{l:?} is neither a line id nor modem:*, sip:*, fxs:* or fxo:*"),
                    ));
                }
            }
        }
        out
    }

    /// The lines to try for `destination`, in order (duplicates removed).
    pub fn candidates(
        &self,
        lines: &Lines,
        destination: &Address,
    ) -> Result<Vec<Arc<dyn Line>>, RouteError> {
        let kind = if destination.kind.is_empty() {
            "tel"
        } else {
            destination.kind.as_str()
        };
        let builtin;
        let table = if self.routes.is_empty() {
            builtin = Self::builtin();
            &builtin
        } else {
            &self.routes
        };
        let target = destination.target.trim();
        let shown = format!("{kind}:{target}");
        let route = table
            .iter()
            .filter(|r| r.destination.is_empty() || r.destination == kind)
            .filter(|r| target.starts_with(r.prefix.as_str()))
            // Longest prefix wins; `max_by_key` keeps the last of equals, so reverse first.
            .rev()
            .max_by_key(|r| r.prefix.len())
            .ok_or_else(|| RouteError::NoRoute(shown.clone()))?;
        let mut picked: Vec<Arc<dyn Line>> = Vec::new();
        for name in &route.lines {
            let matching: Vec<&Arc<dyn Line>> = match name.strip_suffix(":*") {
                Some(t) => {
                    let t = parse_transport(t);
                    lines.iter().filter(|l| Some(l.transport()) == t).collect()
                }
                None => lines.get(name).into_iter().collect(),
            };
            for line in matching {
                if !picked.iter().any(|p| p.id() == line.id()) {
                    picked.push(Arc::clone(line));
                }
            }
        }
        if picked.is_empty() {
            return Err(RouteError::NoLine(shown, route.lines.join(", ")));
        }
        Ok(picked)
    }
}

fn parse_transport(name: &str) -> Option<Transport> {
    match name {
        "modem" => Some(Transport::Modem),
        "sip" => Some(Transport::Sip),
        "fxs" => Some(Transport::Fxs),
        "fxo" => Some(Transport::Fxo),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use flowgate_line::{
        Availability, Capabilities, Cause, LegAudio, LegError, LegFuture, LegId, LineEvents, Party,
        Placement, TransferTarget,
    };

    use super::*;

    /// A line that only has a name and a transport (routing looks at nothing else).
    struct Named(&'static str, Transport);

    impl Line for Named {
        fn id(&self) -> &str {
            self.0
        }
        fn transport(&self) -> Transport {
            self.1
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::default()
        }
        fn availability(&self) -> Availability {
            Availability::Ready
        }
        fn own_party(&self) -> Party {
            Party::default()
        }
        fn take_events(&self) -> Option<LineEvents> {
            None
        }
        fn place(&self, _: LegId, _: Placement) -> LegFuture<'_, ()> {
            Box::pin(async { Err(LegError::Invalid("routing test line".into())) })
        }
        fn answer(&self, _: LegId) -> LegFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn hangup(&self, _: LegId, _: Cause) -> LegFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn send_dtmf(&self, _: LegId, _: &str) -> LegFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn hold(&self, _: LegId) -> LegFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn retrieve(&self, _: LegId) -> LegFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn transfer(&self, _: LegId, _: TransferTarget) -> LegFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn audio(&self, _: LegId) -> LegAudio {
            LegAudio::Unavailable("routing test line".into())
        }
    }

    fn board() -> Lines {
        Lines::new(vec![
            Arc::new(Named("sim0", Transport::Modem)),
            Arc::new(Named("sim1", Transport::Modem)),
            Arc::new(Named("pbx", Transport::Sip)),
        ])
    }

    fn tel(n: &str) -> Address {
        Address {
            kind: "tel".into(),
            target: n.into(),
            ..Address::default()
        }
    }

    fn ids(v: Result<Vec<Arc<dyn Line>>, RouteError>) -> Vec<String> {
        v.unwrap().iter().map(|l| l.id().to_owned()).collect()
    }

    #[test]
    fn the_builtin_table_sends_numbers_to_every_modem() {
        let r = Routes::default();
        assert_eq!(
            ids(r.candidates(&board(), &tel("+4930123"))),
            ["sim0", "sim1"]
        );
        let untyped = Address {
            target: "+1555".into(),
            ..Address::default()
        };
        assert_eq!(ids(r.candidates(&board(), &untyped)), ["sim0", "sim1"]);
        let sip = Address {
            kind: "sip".into(),
            target: "alice@pbx".into(),
            ..Address::default()
        };
        assert_eq!(ids(r.candidates(&board(), &sip)), ["pbx"]);
    }

    #[test]
    fn the_longest_prefix_wins_and_lists_its_lines_in_order() {
        let r = Routes::new(vec![
            Route {
                destination: "tel".into(),
                prefix: String::new(),
                lines: vec!["modem:*".into()],
            },
            Route {
                destination: "tel".into(),
                prefix: "+44".into(),
                lines: vec!["sim1".into(), "modem:*".into()],
            },
        ]);
        assert_eq!(ids(r.candidates(&board(), &tel("+4420"))), ["sim1", "sim0"]);
        assert_eq!(ids(r.candidates(&board(), &tel("+4930"))), ["sim0", "sim1"]);
    }

    #[test]
    fn unroutable_destinations_say_why() {
        let r = Routes::new(vec![Route {
            destination: "tel".into(),
            prefix: "+1".into(),
            lines: vec!["fxo:*".into()],
        }]);
        assert!(matches!(
            r.candidates(&board(), &tel("+4930")),
            Err(RouteError::NoRoute(_))
        ));
        assert!(matches!(
            r.candidates(&board(), &tel("+1555")),
            Err(RouteError::NoLine(..))
        ));
    }

    #[test]
    fn bad_routes_are_reported_with_their_keys() {
        let problems = Routes::problems(&[Route {
            destination: "fax".into(),
            prefix: String::new(),
            lines: vec!["isdn:*".into(), String::new()],
        }]);
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "routes[0].destination",
                "routes[0].lines[0]",
                "routes[0].lines[1]"
            ]
        );
    }
}
