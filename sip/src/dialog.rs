//! Dialogs (RFC 3261 §12): creation on the UAC side from a 1xx-with-tag or 2xx and on
//! the UAS side from the INVITE, route sets from Record-Route, local and remote CSeq,
//! target refresh, and in-dialog request construction (loose and strict routing).
//! Sans-IO: no clock is needed (dialog timers live in the user agent).

use thiserror::Error;

use crate::message::{Method, NameAddr, ParseError, Request, Response, param};

/// Errors of the dialog layer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialogError {
    /// A header the dialog needs is unreadable.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A response without a To tag cannot create a dialog.
    #[error("no To tag in the response")]
    NoToTag,
    /// No Contact in a dialog-creating message (§12.1.1: it must have one).
    #[error("no Contact in the dialog-creating message")]
    NoContact,
    /// A request whose CSeq is not above the last one (§12.2.2: answer 500).
    #[error("CSeq {got} is not above {last}")]
    CSeqOrder {
        /// The last remote CSeq.
        last: u32,
        /// The one received.
        got: u32,
    },
}

/// Dialog state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// The identifier of a dialog (§12): Call-ID plus both tags, from this side's view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// This UA's tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

/// One dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The id.
    pub id: DialogId,
    /// Early or confirmed.
    pub state: DialogState,
    /// Our CSeq, the last one used.
    pub local_seq: u32,
    /// The peer's last CSeq, once it sent a request.
    pub remote_seq: Option<u32>,
    /// Our address (From in our requests), without tag.
    pub local_uri: String,
    /// The peer's address (To in our requests), without tag.
    pub remote_uri: String,
    /// Where in-dialog requests go: the peer's Contact URI.
    pub remote_target: String,
    /// Route set, in the order requests carry it.
    pub route_set: Vec<String>,
    /// Our Contact (sent in target-refresh requests).
    pub local_contact: String,
    /// True when we sent the INVITE.
    pub is_uac: bool,
}

fn strip_tag(v: &str) -> String {
    // Remove `;tag=…` but keep other parameters.
    let mut out = String::with_capacity(v.len());
    let (addr, params) = match v.rfind('>') {
        Some(i) => (&v[..=i], &v[i + 1..]),
        None => match v.find(';') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, ""),
        },
    };
    out.push_str(addr);
    for p in params.split(';').filter(|p| !p.trim().is_empty()) {
        if !p.trim().to_ascii_lowercase().starts_with("tag=") {
            out.push(';');
            out.push_str(p.trim());
        }
    }
    out
}

fn contact_uri(h: &crate::message::Headers) -> Result<String, DialogError> {
    let c = h.get("Contact").ok_or(DialogError::NoContact)?;
    let first = crate::message::split_commas(c)
        .into_iter()
        .next()
        .ok_or(DialogError::NoContact)?;
    Ok(NameAddr::parse(first)?.uri)
}

impl Dialog {
    /// The UAC's dialog from a response to its INVITE: a 1xx with a To tag (early) or a
    /// 2xx (confirmed). The route set is the response's Record-Route, reversed.
    pub fn uac(
        invite: &Request,
        response: &Response,
        local_contact: &str,
    ) -> Result<Self, DialogError> {
        let k = response.key()?;
        let remote_tag = k.to_tag.ok_or(DialogError::NoToTag)?;
        let rr: Vec<String> = response
            .headers
            .get_all("Record-Route")
            .map(str::to_owned)
            .collect();
        let from = invite
            .headers
            .get("From")
            .ok_or(ParseError::Missing("From"))?;
        let to = response
            .headers
            .get("To")
            .ok_or(ParseError::Missing("To"))?;
        Ok(Self {
            id: DialogId {
                call_id: k.call_id,
                local_tag: k.from_tag,
                remote_tag,
            },
            state: if response.status >= 200 {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_seq: k.cseq,
            remote_seq: None,
            local_uri: strip_tag(from),
            remote_uri: strip_tag(to),
            remote_target: contact_uri(&response.headers)?,
            route_set: rr.into_iter().rev().collect(),
            local_contact: local_contact.to_owned(),
            is_uac: true,
        })
    }

    /// The UAS's dialog from a received INVITE, with the tag it puts in its responses.
    pub fn uas(
        invite: &Request,
        local_tag: &str,
        local_contact: &str,
    ) -> Result<Self, DialogError> {
        let k = invite.key()?;
        let from = invite
            .headers
            .get("From")
            .ok_or(ParseError::Missing("From"))?;
        let to = invite.headers.get("To").ok_or(ParseError::Missing("To"))?;
        Ok(Self {
            id: DialogId {
                call_id: k.call_id,
                local_tag: local_tag.to_owned(),
                remote_tag: k.from_tag,
            },
            state: DialogState::Early,
            local_seq: rand::random_range(1..10_000),
            remote_seq: Some(k.cseq),
            local_uri: strip_tag(to),
            remote_uri: strip_tag(from),
            remote_target: contact_uri(&invite.headers)?,
            route_set: invite
                .headers
                .get_all("Record-Route")
                .map(str::to_owned)
                .collect(),
            local_contact: local_contact.to_owned(),
            is_uac: false,
        })
    }

    /// The Record-Route headers a UAS copies into its dialog-creating responses.
    pub fn copy_record_route(invite: &Request, response: &mut Response) {
        for rr in invite.headers.get_all("Record-Route") {
            response.headers.push("Record-Route", rr);
        }
    }

    /// A new in-dialog request (no Via: the transport layer adds it). CSeq increments
    /// except for ACK and CANCEL, which reuse `cseq` of the INVITE they belong to.
    pub fn request(&mut self, method: Method) -> Request {
        let cseq = match method {
            Method::Ack | Method::Cancel => self.local_seq,
            _ => {
                self.local_seq += 1;
                self.local_seq
            }
        };
        self.request_with_cseq(method, cseq)
    }

    /// The ACK for a 2xx to the INVITE with CSeq `invite_cseq` (§13.2.2.4).
    pub fn ack(&self, invite_cseq: u32) -> Request {
        self.request_with_cseq(Method::Ack, invite_cseq)
    }

    fn request_with_cseq(&self, method: Method, cseq: u32) -> Request {
        // §12.2.1.1: loose routing when the first route has `lr`, else strict routing
        // (the first route becomes the Request-URI and the target goes last).
        let first_lr = self
            .route_set
            .first()
            .map(|r| param(r, "lr").is_some() || r.contains(";lr"));
        let (uri, routes): (String, Vec<String>) = match first_lr {
            None | Some(true) => (self.remote_target.clone(), self.route_set.clone()),
            Some(false) => {
                let first = NameAddr::parse(&self.route_set[0])
                    .map(|n| n.uri)
                    .unwrap_or_default();
                let mut rest: Vec<String> = self.route_set[1..].to_vec();
                rest.push(format!("<{}>", self.remote_target));
                (first, rest)
            }
        };
        let mut r = Request::new(method.clone(), uri);
        for route in routes {
            r.headers.push("Route", route);
        }
        r.headers.push("Max-Forwards", "70");
        r.headers.push(
            "From",
            format!("{};tag={}", self.local_uri, self.id.local_tag),
        );
        r.headers.push(
            "To",
            format!("{};tag={}", self.remote_uri, self.id.remote_tag),
        );
        r.headers.push("Call-ID", self.id.call_id.clone());
        r.headers.push("CSeq", format!("{cseq} {method}"));
        if matches!(
            method,
            Method::Invite | Method::Update | Method::Refer | Method::Subscribe | Method::Notify
        ) {
            r.headers.push("Contact", self.local_contact.clone());
        }
        r
    }

    /// Checks and records a request received in this dialog (§12.2.2). A target refresh
    /// (re-INVITE, UPDATE) with a Contact moves the remote target.
    pub fn on_request(&mut self, req: &Request) -> Result<(), DialogError> {
        let k = req.key()?;
        if req.method != Method::Ack && req.method != Method::Cancel {
            if let Some(last) = self.remote_seq
                && k.cseq <= last
            {
                return Err(DialogError::CSeqOrder { last, got: k.cseq });
            }
            self.remote_seq = Some(k.cseq);
        }
        if matches!(req.method, Method::Invite | Method::Update)
            && let Ok(t) = contact_uri(&req.headers)
        {
            self.remote_target = t;
        }
        Ok(())
    }

    /// Records a response to a request we sent in this dialog: 2xx confirms an early
    /// dialog, and a 2xx to a target refresh moves the remote target.
    pub fn on_response(&mut self, resp: &Response) {
        let is_refresh = resp
            .key()
            .is_ok_and(|k| matches!(k.cseq_method, Method::Invite | Method::Update));
        if (200..300).contains(&resp.status) {
            self.state = DialogState::Confirmed;
            if is_refresh && let Ok(t) = contact_uri(&resp.headers) {
                self.remote_target = t;
            }
            // §12.1.2: the route set is fixed by the 2xx for an early dialog.
            if self.is_uac
                && is_refresh
                && resp.headers.get("Record-Route").is_some()
                && self.remote_seq.is_none()
            {
                self.route_set = resp
                    .headers
                    .get_all("Record-Route")
                    .map(str::to_owned)
                    .rev()
                    .collect();
            }
        }
    }

    /// Whether a message belongs to this dialog (Call-ID and both tags).
    pub fn matches_request(&self, req: &Request) -> bool {
        req.key().is_ok_and(|k| {
            k.call_id == self.id.call_id
                && k.from_tag == self.id.remote_tag
                && k.to_tag.as_deref() == Some(&self.id.local_tag)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, parse};

    fn msg(s: &str) -> Message {
        parse(s.replace('\n', "\r\n").as_bytes(), &Default::default()).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0
Via: SIP/2.0/UDP a.example;branch=z9hG4bK1
From: Alice <sip:alice@a.example>;tag=at
To: <sip:bob@b.example>
Call-ID: cid
CSeq: 10 INVITE
Contact: <sip:alice@10.0.0.1:5060>

";

    fn invite() -> Request {
        match msg(INVITE) {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn ok_with(rr: &[&str]) -> Response {
        let mut s = String::from(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\nFrom: Alice <sip:alice@a.example>;tag=at\nTo: <sip:bob@b.example>;tag=bt\nCall-ID: cid\nCSeq: 10 INVITE\nContact: <sip:bob@10.0.0.2:5070>\n",
        );
        for r in rr {
            s.push_str(&format!("Record-Route: {r}\n"));
        }
        s.push('\n');
        match msg(&s) {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        }
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_loose_routes() {
        let mut d = Dialog::uac(
            &invite(),
            &ok_with(&["<sip:p2.example;lr>", "<sip:p1.example;lr>"]),
            "<sip:me@10.0.0.1>",
        )
        .unwrap();
        assert_eq!(d.state, DialogState::Confirmed);
        assert_eq!(
            d.route_set,
            vec!["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
        );
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri, "sip:bob@10.0.0.2:5070");
        assert_eq!(
            bye.headers.get_all("Route").collect::<Vec<_>>(),
            vec!["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
        );
        assert_eq!(bye.headers.get("CSeq"), Some("11 BYE"));
        assert_eq!(
            bye.headers.get("From"),
            Some("Alice <sip:alice@a.example>;tag=at")
        );
        assert_eq!(bye.headers.get("To"), Some("<sip:bob@b.example>;tag=bt"));
        assert_eq!(d.ack(10).headers.get("CSeq"), Some("10 ACK"));
    }

    #[test]
    fn strict_route_puts_first_hop_in_request_uri() {
        let mut d =
            Dialog::uac(&invite(), &ok_with(&["<sip:strict.example>"]), "<sip:me@h>").unwrap();
        let r = d.request(Method::Bye);
        assert_eq!(r.uri, "sip:strict.example");
        assert_eq!(r.headers.get("Route"), Some("<sip:bob@10.0.0.2:5070>"));
    }

    #[test]
    fn uas_dialog_checks_cseq_order_and_refreshes_target() {
        let inv = invite();
        let mut d = Dialog::uas(&inv, "bt", "<sip:me@h>").unwrap();
        assert_eq!(d.remote_target, "sip:alice@10.0.0.1:5060");
        assert_eq!(d.remote_seq, Some(10));
        let mut re = d.request(Method::Bye); // shape of an in-dialog request from the peer:
        re.headers.set("CSeq", "11 INVITE");
        re.method = Method::Invite;
        re.headers.set("From", "Alice <sip:alice@a.example>;tag=at");
        re.headers.set("To", "<sip:bob@b.example>;tag=bt");
        re.headers.set("Contact", "<sip:alice@10.9.9.9>");
        re.headers
            .push_front("Via", "SIP/2.0/UDP a.example;branch=z9hG4bK2");
        assert!(d.matches_request(&re));
        d.on_request(&re).unwrap();
        assert_eq!(d.remote_target, "sip:alice@10.9.9.9");
        assert_eq!(
            d.on_request(&re),
            Err(DialogError::CSeqOrder { last: 11, got: 11 })
        );
    }

    #[test]
    fn early_dialog_needs_tag() {
        let mut r = ok_with(&[]);
        r.status = 180;
        let d = Dialog::uac(&invite(), &r, "<sip:me@h>").unwrap();
        assert_eq!(d.state, DialogState::Early);
        r.headers.set("To", "<sip:bob@b.example>");
        assert_eq!(
            Dialog::uac(&invite(), &r, "<sip:me@h>"),
            Err(DialogError::NoToTag)
        );
    }
}
