//! `Refer-To` (RFC 3515) and `Replaces` (RFC 3891): parsing what a peer's REFER asks
//! for, and the URI headers an outgoing INVITE takes from the address it is sent to.
//!
//! Sans-IO and string in, value out: the user agent answers a REFER whose `Refer-To` or
//! embedded `Replaces` does not parse with `400` before accepting anything, so whatever
//! comes from the wire is checked here (fuzz target `sip_parse` feeds every header value
//! through [`parse_refer_to`] and [`DialogRef::parse`]).
//!
//! A `Refer-To` may carry headers for the request it asks for (RFC 3261 §19.1.1:
//! `sip:bob@host?Replaces=…`). Only `Replaces` is honoured: it is what an attended
//! transfer needs, and other headers a peer could make the gateway send (`Route`,
//! `Authorization`, `From`…) would let it steer or impersonate (§19.1.5 lets a UA drop
//! headers it deems unsafe).

use thiserror::Error;

/// Why a `Refer-To` or `Replaces` value was refused (the REFER gets `400`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReferError {
    /// The `Refer-To` address is not a URI the gateway can read.
    #[error("Refer-To is not a SIP URI: {0:?}")]
    Uri(String),
    /// A `Replaces` (header or URI header) without a Call-ID, `to-tag` and `from-tag`.
    #[error("Replaces needs a Call-ID, to-tag and from-tag: {0:?}")]
    Replaces(String),
}

/// The dialog a `Replaces` names (RFC 3891 §6.1), as the target of the INVITE sees it:
/// `to-tag` is the target's own tag in that dialog, `from-tag` the other side's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogRef {
    /// The dialog's Call-ID.
    pub call_id: String,
    /// `to-tag`.
    pub to_tag: String,
    /// `from-tag`.
    pub from_tag: String,
    /// `early-only`: replace the dialog only while it is early.
    pub early_only: bool,
}

impl DialogRef {
    /// Parses a `Replaces` header value: `call-id;to-tag=a;from-tag=b[;early-only]`.
    pub fn parse(value: &str) -> Result<Self, ReferError> {
        let bad = || ReferError::Replaces(value.to_owned());
        let mut parts = value.trim().split(';');
        let call_id = parts.next().unwrap_or_default().trim();
        if call_id.is_empty() || call_id.bytes().any(|b| b <= b' ' || b == b'"') {
            return Err(bad());
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in parts {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (p.trim(), None),
            };
            if k.eq_ignore_ascii_case("to-tag") {
                to_tag = v.filter(|v| is_token(v));
            } else if k.eq_ignore_ascii_case("from-tag") {
                from_tag = v.filter(|v| is_token(v));
            } else if k.eq_ignore_ascii_case("early-only") {
                early_only = true;
            }
        }
        match (to_tag, from_tag) {
            (Some(t), Some(f)) => Ok(Self {
                call_id: call_id.to_owned(),
                to_tag: t.to_owned(),
                from_tag: f.to_owned(),
                early_only,
            }),
            _ => Err(bad()),
        }
    }

    /// The `Replaces` header value.
    pub fn header_value(&self) -> String {
        let early = if self.early_only { ";early-only" } else { "" };
        format!(
            "{};to-tag={};from-tag={}{early}",
            self.call_id, self.to_tag, self.from_tag
        )
    }

    /// The `Replaces=…` URI header (escaped, RFC 3261 §25.1 `hvalue`) that makes an
    /// address carry this `Replaces` into the INVITE sent to it.
    pub fn uri_header(&self) -> String {
        format!("Replaces={}", escape_hvalue(&self.header_value()))
    }
}

/// What a REFER asks for: the address to call (URI headers removed) and, for an attended
/// transfer, the dialog the new call replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferTo {
    /// The `Refer-To` URI without its headers (parameters kept).
    pub uri: String,
    /// The `Replaces` URI header, if any.
    pub replaces: Option<DialogRef>,
}

/// Parses a `Refer-To` value (`<sip:x@y?Replaces=…>`, with or without brackets and
/// header parameters).
pub fn parse_refer_to(value: &str) -> Result<ReferTo, ReferError> {
    let inner = match (value.find('<'), value.rfind('>')) {
        (Some(a), Some(b)) if b > a => &value[a + 1..b],
        (None, None) => value.split(';').next().unwrap_or_default().trim(),
        _ => return Err(ReferError::Uri(value.to_owned())),
    };
    let (uri, replaces) = split_uri_headers(inner)?;
    if uri.is_empty() || crate::message::parse_uri(&uri).is_err() {
        return Err(ReferError::Uri(value.to_owned()));
    }
    Ok(ReferTo { uri, replaces })
}

/// Splits an address into the URI to send a request to and the `Replaces` its headers
/// carry (`sip:bob@host?Replaces=…&Other=…` → `sip:bob@host`, the `Replaces`); other
/// URI headers are dropped (see the module's header).
pub fn split_uri_headers(address: &str) -> Result<(String, Option<DialogRef>), ReferError> {
    let (uri, headers) = address.split_once('?').unwrap_or((address, ""));
    let mut replaces = None;
    for h in headers.split('&') {
        let Some((k, v)) = h.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("Replaces") && replaces.is_none() {
            replaces = Some(DialogRef::parse(&percent_decode(v))?);
        }
    }
    Ok((uri.trim().to_owned(), replaces))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Escapes all but RFC 3261's `unreserved` and `hnv-unreserved` characters.
fn escape_hvalue(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_with_and_without_replaces() {
        let r = parse_refer_to("<sip:bob@10.0.0.2?Replaces=abc%40h%3Bto-tag%3D11%3Bfrom-tag%3D22>")
            .unwrap();
        assert_eq!(r.uri, "sip:bob@10.0.0.2");
        let d = r.replaces.unwrap();
        assert_eq!(
            (d.call_id.as_str(), d.to_tag.as_str(), d.from_tag.as_str()),
            ("abc@h", "11", "22")
        );
        assert!(!d.early_only);
        let r = parse_refer_to("<sip:carol@10.0.0.3;transport=udp>;x=1").unwrap();
        assert_eq!(r.uri, "sip:carol@10.0.0.3;transport=udp");
        assert!(r.replaces.is_none());
        let r = parse_refer_to("sip:carol@10.0.0.3").unwrap();
        assert_eq!(r.uri, "sip:carol@10.0.0.3");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn malformed_values_are_errors_not_guesses() {
        // A Replaces without its tags must not turn an attended transfer into a blind one.
        for bad in [
            "<sip:bob@h?Replaces=abc%3Bto-tag%3D1>",
            "<sip:bob@h?Replaces=%3Bto-tag%3D1%3Bfrom-tag%3D2>",
            "<sip:bob@h?Replaces=abc%3Bto-tag%3D%3Bfrom-tag%3D2>",
            "<sip:bob@h?Replaces=>",
        ] {
            assert!(
                matches!(parse_refer_to(bad), Err(ReferError::Replaces(_))),
                "{bad}"
            );
        }
        for bad in [
            "<>",
            "<sip:bob@h",
            "sip:bob@h>",
            "",
            "<not a uri>",
            "<?Replaces=a>",
        ] {
            assert!(parse_refer_to(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replaces_round_trips_through_a_uri_header() {
        let d = DialogRef::parse("4a5b@pbx.example;from-tag=ff;to-tag=7;early-only").unwrap();
        assert_eq!(
            d.header_value(),
            "4a5b@pbx.example;to-tag=7;from-tag=ff;early-only"
        );
        let address = format!("sip:carol@10.0.0.3:5070?{}&Route=x", d.uri_header());
        assert!(!address.contains(';'), "escaped: {address}");
        let (uri, back) = split_uri_headers(&address).unwrap();
        assert_eq!(uri, "sip:carol@10.0.0.3:5070");
        assert_eq!(back, Some(d));
        assert_eq!(
            split_uri_headers("sip:x@y?Route=%3Csip:evil%3E").unwrap(),
            ("sip:x@y".to_owned(), None),
            "other headers are dropped"
        );
    }
}
