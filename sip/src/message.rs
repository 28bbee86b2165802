//! SIP messages: framing, the folding/extension-method pre-pass, strict validation, and
//! serialization (RFC 3261 §7, §18.3, §20).
//!
//! # Why the frame is ours and the grammar is rsip's
//!
//! rsip 0.4's message tokenizer refuses two things RFC 3261 allows — folded header lines
//! (§7.3.1) and extension methods (`rsip::Method` is a closed enum, so `FOO sip:x SIP/2.0`
//! is `invalid method: FOO`) — and it writes bodies through `from_utf8_lossy`. A `[patch]`
//! of rsip would mean maintaining a fork of a crate whose only release line is from 2022.
//! So this module owns the *frame*: start line, the header list (unfolded, compact names
//! expanded, comma-joined `Via`/`Route`/`Record-Route` split into one value each),
//! `Content-Length` and the body, and every message size limit. The hairy grammar inside
//! it — every URI (Request-URI, `From`/`To`/`Contact`/`Route`/`Refer-To` addresses) —
//! is parsed by rsip ([`rsip::Uri`]), and a request whose URIs rsip refuses is refused.
//! Extension methods are kept as [`Method::Other`], so the transaction user can answer
//! them `501 Not Implemented` with a response built like any other.
//!
//! # Strictness
//!
//! [`parse`] never panics (fuzz target `sip_parse`; rsip calls are additionally guarded).
//! A request that fails validation yields a [`Refusal`] carrying a ready `400`/`505`
//! when Via, From, To, Call-ID and CSeq were readable enough to answer, and nothing
//! otherwise (the datagram is dropped). Responses that fail are always dropped.

use std::fmt::Write as _;
use std::net::IpAddr;

use thiserror::Error;

/// Why a message was refused. Carried in a [`Refusal`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Nothing but whitespace (a CRLF keep-alive, RFC 5626 §4.4.1).
    #[error("keep-alive or empty datagram")]
    Empty,
    /// The message is larger than [`Limits::max_message`].
    #[error("message of {0} bytes is over the size limit")]
    TooLarge(usize),
    /// More header fields than [`Limits::max_headers`].
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    /// The header section has no terminating empty line.
    #[error("header section is not terminated")]
    Unterminated,
    /// Bytes that are not UTF-8 in the start line or the headers.
    #[error("start line or headers are not UTF-8")]
    NotUtf8,
    /// The start line is neither a request line nor a status line.
    #[error("bad start line: {0}")]
    StartLine(String),
    /// A protocol version other than SIP/2.0.
    #[error("unsupported SIP version {0}")]
    Version(String),
    /// A header line without a colon or with an invalid name.
    #[error("bad header line: {0}")]
    HeaderLine(String),
    /// A mandatory header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header's value could not be parsed.
    #[error("bad {0} header: {1}")]
    Header(&'static str, String),
    /// `Content-Length` says more bytes than arrived, or is not a number.
    #[error("bad Content-Length: {0}")]
    ContentLength(String),
    /// A URI rsip refuses.
    #[error("bad URI {0:?}")]
    Uri(String),
}

/// A message that could not be accepted, with the reply to send back if one could be built.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// What was wrong.
    pub error: ParseError,
    /// A ready-made response (400, 413, 505) for a request that was readable enough to
    /// answer; `None` means drop silently.
    pub reply: Option<Response>,
}

/// Size limits applied before anything is allocated per header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (UDP datagram or TCP frame), bytes.
    pub max_message: usize,
    /// Most header fields (after splitting comma lists).
    pub max_headers: usize,
}

impl Default for Limits {
    /// 64 KiB messages (the UDP datagram maximum) and 128 header fields: an INVITE through
    /// several proxies has perhaps 30.
    fn default() -> Self {
        Self {
            max_message: 65_535,
            max_headers: 128,
        }
    }
}

/// A request method; extension methods are kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Refer,
    Info,
    Notify,
    Subscribe,
    Message,
    Update,
    Prack,
    Publish,
    /// An extension method (its token, case kept).
    Other(String),
}

impl Method {
    /// Parses a method token (case-sensitive, as RFC 3261 §7.1 says methods are).
    pub fn from_token(s: &str) -> Option<Method> {
        if s.is_empty() || !s.bytes().all(is_token_byte) {
            return None;
        }
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "REFER" => Method::Refer,
            "INFO" => Method::Info,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_owned()),
        })
    }

    /// The method's token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Refer => "REFER",
            Method::Info => "INFO",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Header names this stack reads, in their canonical spelling; compact forms
/// (RFC 3261 §7.3.3, RFC 3515, RFC 4028) and any capitalisation map onto these.
const CANONICAL: &[(&str, Option<&str>)] = &[
    ("Via", Some("v")),
    ("From", Some("f")),
    ("To", Some("t")),
    ("Call-ID", Some("i")),
    ("CSeq", None),
    ("Contact", Some("m")),
    ("Content-Length", Some("l")),
    ("Content-Type", Some("c")),
    ("Supported", Some("k")),
    ("Content-Encoding", Some("e")),
    ("Subject", Some("s")),
    ("Refer-To", Some("r")),
    ("Referred-By", Some("b")),
    ("Event", Some("o")),
    ("Allow-Events", Some("u")),
    ("Session-Expires", Some("x")),
    ("Max-Forwards", None),
    ("Route", None),
    ("Record-Route", None),
    ("Expires", None),
    ("Min-Expires", None),
    ("Authorization", None),
    ("Proxy-Authorization", None),
    ("WWW-Authenticate", None),
    ("Proxy-Authenticate", None),
    ("Allow", None),
    ("Require", None),
    ("Unsupported", None),
    ("User-Agent", None),
    ("Server", None),
    ("Replaces", None),
    ("Retry-After", None),
    ("Reason", None),
    ("Content-Disposition", None),
    ("Accept", None),
];

/// Header fields whose values are comma-separated lists of one item each
/// (RFC 3261 §7.3.1): split so `Via` processing sees one hop per entry.
const SPLIT_LISTS: &[&str] = &["Via", "Route", "Record-Route"];

fn canonical_name(raw: &str) -> String {
    for (full, compact) in CANONICAL {
        if raw.eq_ignore_ascii_case(full) || compact.is_some_and(|c| raw.eq_ignore_ascii_case(c)) {
            return (*full).to_owned();
        }
    }
    raw.to_owned()
}

/// One header field (name in canonical spelling for known headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name.
    pub name: String,
    /// Field value, unfolded and trimmed.
    pub value: String,
}

/// An ordered list of header fields; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl DoubleEndedIterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Appends a field.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(Header {
            name: name.to_owned(),
            value: value.into(),
        });
    }

    /// Inserts a field before all others (a new top `Via`).
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name: name.to_owned(),
                value: value.into(),
            },
        );
    }

    /// Removes every field called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    /// Replaces every field called `name` by one with `value` (in the first one's place).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .0
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.0[i].value = value;
                let mut idx = 0;
                self.0.retain(|h| {
                    let keep = idx <= i || !h.name.eq_ignore_ascii_case(name);
                    idx += 1;
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    /// A mutable reference to the first value of `name`.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut String> {
        self.0
            .iter_mut()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| &mut h.value)
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Request-URI as sent (checked by rsip when parsed; see [`parse_uri`]).
    pub uri: String,
    /// Header fields.
    pub headers: Headers,
    /// Body bytes (exactly `Content-Length` of them).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100–699.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields.
    pub headers: Headers,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// Serializes the message.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn write_headers_and_body(out: &mut String, headers: &Headers, body: &[u8]) -> Vec<u8> {
    for h in &headers.0 {
        if h.name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        let _ = write!(out, "{}: {}\r\n", h.name, h.value);
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// Serializes with a correct `Content-Length`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512 + self.headers.0.len() * 48);
        let _ = write!(out, "{} {} SIP/2.0\r\n", self.method, self.uri);
        write_headers_and_body(&mut out, &self.headers, &self.body)
    }

    /// The parts every transaction needs, read from the headers (validated at parse time,
    /// so an `Err` only happens for requests built by hand without them).
    pub fn key(&self) -> Result<MsgKey, ParseError> {
        MsgKey::read(&self.headers)
    }
}

impl Response {
    /// A response that copies `Via`s, `From`, `To`, `Call-ID` and `CSeq` from `req`
    /// (RFC 3261 §8.2.6.2). Add the To tag with [`Response::set_to_tag`].
    pub fn to_request(req: &Request, status: u16, reason: &str) -> Self {
        let mut headers = Headers::default();
        for h in &req.headers.0 {
            let n = h.name.as_str();
            if n == "Via" || n == "From" || n == "To" || n == "Call-ID" || n == "CSeq" {
                headers.0.push(h.clone());
            }
        }
        Self {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }

    /// Adds `;tag=` to `To` unless it already has one.
    pub fn set_to_tag(&mut self, tag: &str) {
        if let Some(to) = self.headers.get_mut("To")
            && param(to, "tag").is_none()
        {
            to.push_str(";tag=");
            to.push_str(tag);
        }
    }

    /// Serializes with a correct `Content-Length`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(384 + self.headers.0.len() * 48);
        let _ = write!(out, "SIP/2.0 {} {}\r\n", self.status, self.reason);
        write_headers_and_body(&mut out, &self.headers, &self.body)
    }

    /// Transaction/dialog identifiers from the headers.
    pub fn key(&self) -> Result<MsgKey, ParseError> {
        MsgKey::read(&self.headers)
    }
}

/// The standard reason phrase of a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

/// The identifiers of a message: top Via, Call-ID, CSeq, tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgKey {
    /// The top Via.
    pub via: Via,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method.
    pub cseq_method: Method,
    /// From tag (mandatory in RFC 3261 requests; empty when an RFC 2543 peer omitted it).
    pub from_tag: String,
    /// To tag, if any.
    pub to_tag: Option<String>,
}

impl MsgKey {
    fn read(h: &Headers) -> Result<Self, ParseError> {
        let via = Via::parse(h.get("Via").ok_or(ParseError::Missing("Via"))?)?;
        let call_id = h
            .get("Call-ID")
            .ok_or(ParseError::Missing("Call-ID"))?
            .to_owned();
        let (cseq, cseq_method) = parse_cseq(h.get("CSeq").ok_or(ParseError::Missing("CSeq"))?)?;
        let from = h.get("From").ok_or(ParseError::Missing("From"))?;
        let to = h.get("To").ok_or(ParseError::Missing("To"))?;
        Ok(Self {
            via,
            call_id,
            cseq,
            cseq_method,
            from_tag: param(from, "tag").flatten().unwrap_or_default().to_owned(),
            to_tag: param(to, "tag").flatten().map(str::to_owned),
        })
    }
}

/// Parses a `CSeq` value: a number below 2^31 and a method (RFC 3261 §8.1.1.5).
pub fn parse_cseq(v: &str) -> Result<(u32, Method), ParseError> {
    let mut it = v.split_ascii_whitespace();
    let bad = || ParseError::Header("CSeq", v.to_owned());
    let n: u32 = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    if n >= 1 << 31 {
        return Err(bad());
    }
    let m = Method::from_token(it.next().ok_or_else(bad)?).ok_or_else(bad)?;
    if it.next().is_some() {
        return Err(bad());
    }
    Ok((n, m))
}

/// A parsed `Via` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token (`UDP`, `TCP`, …), upper case.
    pub transport: String,
    /// sent-by host (IPv6 without brackets).
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<String>,
    /// `received` parameter.
    pub received: Option<String>,
    /// `rport`: `None` absent, `Some(None)` present without value.
    pub rport: Option<Option<u16>>,
}

impl Via {
    /// Parses one Via value.
    pub fn parse(v: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Header("Via", v.to_owned());
        // `SIP / 2.0 / UDP` is legal (SLASH = SWS "/" SWS): drop the space around slashes.
        let mut norm = String::with_capacity(v.len());
        let mut after_slash = false;
        for c in v.trim().chars() {
            if c == '/' {
                while norm.ends_with([' ', '\t']) {
                    norm.pop();
                }
                after_slash = true;
                norm.push(c);
            } else if after_slash && (c == ' ' || c == '\t') {
                continue;
            } else {
                after_slash = false;
                norm.push(c);
            }
        }
        let (proto, rest) = norm
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or_else(bad)?;
        let mut parts = proto.split('/').map(str::trim);
        let (name, ver, transport) = (parts.next(), parts.next(), parts.next());
        if !name.is_some_and(|n| n.eq_ignore_ascii_case("SIP")) || ver != Some("2.0") {
            return Err(bad());
        }
        let transport = transport.filter(|t| !t.is_empty() && t.bytes().all(is_token_byte));
        let transport = transport.ok_or_else(bad)?.to_ascii_uppercase();
        let rest = rest.trim();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i..]),
            None => (rest, ""),
        };
        // Every parameter is a token, optionally `=value` (no empty `;;`).
        for p in params.split(';').skip(1) {
            let name = p.split('=').next().unwrap_or_default().trim();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(bad());
            }
        }
        let (host, port) = split_host_port(sent_by).ok_or_else(bad)?;
        let branch = param(params, "branch").flatten().map(str::to_owned);
        let received = param(params, "received").flatten().map(str::to_owned);
        let rport = match param(params, "rport") {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => Some(Some(p.parse().map_err(|_| bad())?)),
        };
        Ok(Self {
            transport,
            host,
            port,
            branch,
            received,
            rport,
        })
    }
}

/// Splits `host[:port]`, `[v6]:port`; checks the host's characters.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (host.to_owned(), port)
    } else {
        let (h, p) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse().ok()?)),
            None => (s, None),
        };
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return None;
        }
        (h.to_owned(), p)
    };
    Some((host, port))
}

/// The value of parameter `name` in a `;`-separated parameter list (which may follow a
/// URI in `<…>`): `None` absent, `Some(None)` present without `=value`. Quoted values are
/// returned without their quotes.
pub fn param<'a>(value: &'a str, name: &str) -> Option<Option<&'a str>> {
    // Parameters of a header start after a closing '>' when the URI is bracketed;
    // otherwise after the first ';' (URI params then belong to the header: §20).
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    let mut rest = params;
    while let Some(i) = rest.find(';') {
        rest = &rest[i + 1..];
        let end = rest.find(';').unwrap_or(rest.len());
        let item = rest[..end].trim();
        let (k, v) = match item.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (item, None),
        };
        if k.eq_ignore_ascii_case(name) {
            return Some(v);
        }
    }
    None
}

/// A name-addr or addr-spec (`From`, `To`, `Contact`, `Refer-To`, `Route`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted; empty when absent.
    pub display_name: String,
    /// The URI text (checked by rsip).
    pub uri: String,
    /// Parsed URI.
    pub parsed: rsip::Uri,
    /// The header parameters after the address (e.g. `;tag=x;expires=60`), raw.
    pub params: String,
}

impl NameAddr {
    /// Parses a name-addr / addr-spec; the URI is checked by rsip.
    pub fn parse(v: &str) -> Result<Self, ParseError> {
        let v = v.trim();
        let bad = || ParseError::Uri(v.to_owned());
        // A quoted display name may hold '<' itself: find its closing quote first.
        let (display_name, rest) = if let Some(q) = v.strip_prefix('"') {
            let mut esc = false;
            let end = q
                .char_indices()
                .find(|&(_, c)| {
                    let hit = c == '"' && !esc;
                    esc = c == '\\' && !esc;
                    hit
                })
                .map(|(i, _)| i)
                .ok_or_else(bad)?;
            (unescape_quoted(&q[..end]), q[end + 1..].trim_start())
        } else if let Some(lt) = v.find('<') {
            let dn = v[..lt].trim();
            // An unquoted display name is tokens and spaces only (RFC 3261 §25.1).
            if !dn
                .bytes()
                .all(|b| is_token_byte(b) || b == b' ' || b == b'\t')
            {
                return Err(bad());
            }
            (dn.to_owned(), &v[lt..])
        } else {
            (String::new(), v)
        };
        let (uri, params) = if let Some(r) = rest.strip_prefix('<') {
            let gt = r.find('>').ok_or_else(bad)?;
            (r[..gt].trim(), &r[gt + 1..])
        } else if display_name.is_empty() && !v.starts_with('"') {
            // addr-spec: no '<>', so no URI headers and its parameters are the header's.
            let (u, p) = match rest.find(';') {
                Some(i) => (rest[..i].trim(), &rest[i..]),
                None => (rest, ""),
            };
            if u.contains('?') || u.contains(',') {
                return Err(bad());
            }
            (u, p)
        } else {
            return Err(bad());
        };
        let parsed = parse_uri(uri)?;
        Ok(Self {
            display_name,
            uri: uri.to_owned(),
            parsed,
            params: params.trim().to_owned(),
        })
    }

    /// The user part of the URI (a number or extension), or empty.
    pub fn user(&self) -> String {
        self.parsed
            .auth
            .as_ref()
            .map(|a| a.user.clone())
            .unwrap_or_default()
    }

    /// The URI's host as text (IPv6 without brackets).
    pub fn host(&self) -> String {
        uri_host(&self.parsed)
    }
}

/// The host of an rsip URI as text.
pub fn uri_host(uri: &rsip::Uri) -> String {
    match &uri.host_with_port.host {
        rsip::Host::Domain(d) => d.to_string(),
        rsip::Host::IpAddr(ip) => ip.to_string(),
    }
}

/// The port of an rsip URI.
pub fn uri_port(uri: &rsip::Uri) -> Option<u16> {
    uri.host_with_port.port.as_ref().map(|p| *p.value())
}

fn unescape_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a URI with rsip. rsip is guarded: a panic inside it is a refused URI where panics
/// unwind (the release profile aborts instead; the `sip_parse` fuzz target runs every input
/// through here and counts a panic as a crash even when it is caught).
pub fn parse_uri(s: &str) -> Result<rsip::Uri, ParseError> {
    if s.is_empty() || s.len() > 2048 || s.bytes().any(|b| b.is_ascii_whitespace() || b < 0x21) {
        return Err(ParseError::Uri(s.to_owned()));
    }
    // rsip 0.4 has no IPv6 reference grammar: swap a bracketed literal for a placeholder
    // domain, let rsip check the rest, and put the address back.
    let (text, v6) = match (s.find('['), s.find(']')) {
        (Some(a), Some(b)) if a < b => {
            let ip: std::net::Ipv6Addr = s[a + 1..b]
                .parse()
                .map_err(|_| ParseError::Uri(s.to_owned()))?;
            (format!("{}ipv6.invalid{}", &s[..a], &s[b + 1..]), Some(ip))
        }
        (None, None) => (s.to_owned(), None),
        _ => return Err(ParseError::Uri(s.to_owned())),
    };
    match std::panic::catch_unwind(move || rsip::Uri::try_from(text.as_str())) {
        Ok(Ok(mut u)) if u.scheme.is_some() => {
            if let Some(ip) = v6 {
                u.host_with_port.host = rsip::Host::IpAddr(std::net::IpAddr::V6(ip));
            }
            Ok(u)
        }
        _ => Err(ParseError::Uri(s.to_owned())),
    }
}

/// Finds the end of the first complete message in a stream buffer (TCP): `Ok(Some(len))`
/// when one is complete, `Ok(None)` when more bytes are needed. Leading CRLFs (keep-alive)
/// count into the length, so the caller drains them with the message.
pub fn frame_len(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ParseError> {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[start..];
    let Some(head_end) = find_head_end(rest) else {
        if buf.len() > limits.max_message {
            return Err(ParseError::TooLarge(buf.len()));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&rest[..head_end.0]).map_err(|_| ParseError::NotUtf8)?;
    let mut cl = 0usize;
    for line in head.split('\n').skip(1) {
        if let Some((n, v)) = line.split_once(':') {
            let n = n.trim();
            if n.eq_ignore_ascii_case("Content-Length") || n.eq_ignore_ascii_case("l") {
                cl = v
                    .trim()
                    .parse()
                    .map_err(|_| ParseError::ContentLength(v.trim().to_owned()))?;
            }
        }
    }
    let total = start + head_end.1 + cl;
    if total - start > limits.max_message {
        return Err(ParseError::TooLarge(total - start));
    }
    Ok((buf.len() >= total).then_some(total))
}

/// (end of header text, start of body) for CRLFCRLF or bare LFLF.
fn find_head_end(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// Parses one message (a UDP datagram, or a frame cut by [`frame_len`]).
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Message, Refusal> {
    parse_inner(bytes, limits)
}

struct Draft {
    start: String,
    headers: Headers,
}

fn refuse(error: ParseError) -> Refusal {
    Refusal { error, reply: None }
}

fn parse_inner(bytes: &[u8], limits: &Limits) -> Result<Message, Refusal> {
    if bytes.len() > limits.max_message {
        return Err(refuse(ParseError::TooLarge(bytes.len())));
    }
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(refuse(ParseError::Empty))?;
    let bytes = &bytes[start..];
    let (head_end, body_start) = find_head_end(bytes).ok_or(refuse(ParseError::Unterminated))?;
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|_| refuse(ParseError::NotUtf8))?;
    let draft = unfold(head, limits).map_err(refuse)?;
    let body_avail = &bytes[body_start..];

    // Status line or request line?
    if draft.start.starts_with("SIP/") {
        let resp = build_response(draft, body_avail).map_err(refuse)?;
        return Ok(Message::Response(resp));
    }
    build_request(draft, body_avail)
}

/// Joins continuation lines (RFC 3261 §7.3.1: a line starting with SP/HT continues the
/// previous one, replaced by a single SP), expands compact names and splits list headers.
fn unfold(head: &str, limits: &Limits) -> Result<Draft, ParseError> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or_default().trim().to_owned();
    let mut raw: Vec<String> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let prev = raw
                .last_mut()
                .ok_or_else(|| ParseError::HeaderLine(line.to_owned()))?;
            prev.push(' ');
            prev.push_str(line.trim());
        } else {
            // One line more than the limit: Content-Length does not count (below).
            if raw.len() > limits.max_headers {
                return Err(ParseError::TooManyHeaders(limits.max_headers));
            }
            raw.push(line.to_owned());
        }
    }
    let mut headers = Headers(Vec::with_capacity(raw.len()));
    let mut uncounted = false;
    for line in raw {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::HeaderLine(line.clone()))?;
        let name = name.trim_end();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::HeaderLine(line.clone()));
        }
        let name = canonical_name(name);
        let name_is_content_length = name == "Content-Length";
        let value = value.trim();
        if SPLIT_LISTS.contains(&name.as_str()) {
            for item in split_commas(value) {
                headers.0.push(Header {
                    name: name.clone(),
                    value: item.to_owned(),
                });
            }
        } else {
            headers.0.push(Header {
                name,
                value: value.to_owned(),
            });
        }
        // Content-Length is not counted: serializing adds it to a message that came without
        // one, and a message that parsed must parse again after it is forwarded.
        uncounted |= name_is_content_length;
        if headers.0.len() - usize::from(uncounted) > limits.max_headers {
            return Err(ParseError::TooManyHeaders(limits.max_headers));
        }
    }
    Ok(Draft { start, headers })
}

/// Splits at commas outside quotes and angle brackets.
pub fn split_commas(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut esc, mut from) = (false, false, false, 0);
    for (i, c) in v.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                let item = v[from..i].trim();
                if !item.is_empty() {
                    out.push(item);
                }
                from = i + 1;
            }
            _ => {}
        }
    }
    let item = v[from..].trim();
    if !item.is_empty() {
        out.push(item);
    }
    out
}

fn take_body(headers: &Headers, avail: &[u8]) -> Result<Vec<u8>, ParseError> {
    match headers.get("Content-Length") {
        Some(v) => {
            let n: usize = v
                .parse()
                .map_err(|_| ParseError::ContentLength(v.to_owned()))?;
            // RFC 3261 §18.3: fewer bytes than announced is an error; extra bytes after the
            // announced body are discarded.
            avail
                .get(..n)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| ParseError::ContentLength(v.to_owned()))
        }
        None => Ok(avail.to_vec()),
    }
}

fn build_response(d: Draft, avail: &[u8]) -> Result<Response, ParseError> {
    let mut it = d.start.splitn(3, ' ');
    let ver = it.next().unwrap_or_default();
    if ver != "SIP/2.0" {
        return Err(ParseError::Version(ver.to_owned()));
    }
    let code = it.next().unwrap_or_default();
    let status: u16 = code
        .parse()
        .map_err(|_| ParseError::StartLine(d.start.clone()))?;
    if !(100..=699).contains(&status) || code.len() != 3 {
        return Err(ParseError::StartLine(d.start.clone()));
    }
    let reason = it.next().unwrap_or_default().to_owned();
    // Everything a client transaction needs must be readable.
    let key = MsgKey::read(&d.headers)?;
    key.via
        .branch
        .as_ref()
        .ok_or(ParseError::Header("Via", "no branch".into()))?;
    NameAddr::parse(d.headers.get("From").unwrap_or_default())?;
    NameAddr::parse(d.headers.get("To").unwrap_or_default())?;
    let body = take_body(&d.headers, avail)?;
    Ok(Response {
        status,
        reason,
        headers: d.headers,
        body,
    })
}

fn build_request(d: Draft, avail: &[u8]) -> Result<Message, Refusal> {
    // The reply can only be built when the headers every response copies are readable.
    let answerable = MsgKey::read(&d.headers).is_ok();
    let with_reply = |d: &Draft, error: ParseError, status: u16| {
        let reply = answerable.then(|| {
            let mut r = Response {
                status,
                reason: reason_phrase(status).to_owned(),
                headers: Headers::default(),
                body: Vec::new(),
            };
            for h in &d.headers.0 {
                if matches!(h.name.as_str(), "Via" | "From" | "To" | "Call-ID" | "CSeq") {
                    r.headers.0.push(h.clone());
                }
            }
            r.headers.push(
                "Warning",
                format!("399 flowgate \"{}\"", error.to_string().replace('"', "'")),
            );
            r
        });
        Refusal { error, reply }
    };

    let parts: Vec<&str> = d.start.split(' ').collect();
    if parts.len() != 3 {
        let e = ParseError::StartLine(d.start.clone());
        return Err(with_reply(&d, e, 400));
    }
    let Some(method) = Method::from_token(parts[0]) else {
        return Err(refuse(ParseError::StartLine(d.start.clone())));
    };
    if !parts[2].starts_with("SIP/") {
        return Err(with_reply(&d, ParseError::StartLine(d.start.clone()), 400));
    }
    if parts[2] != "SIP/2.0" {
        return Err(with_reply(
            &d,
            ParseError::Version(parts[2].to_owned()),
            505,
        ));
    }
    let key = match MsgKey::read(&d.headers) {
        Ok(k) => k,
        Err(e) => return Err(with_reply(&d, e, 400)),
    };
    if key.cseq_method != method && method != Method::Ack && method != Method::Cancel
        || (method == Method::Ack || method == Method::Cancel) && key.cseq_method != method
    {
        return Err(with_reply(
            &d,
            ParseError::Header("CSeq", "method does not match".into()),
            400,
        ));
    }
    // A Request-URI carries no URI headers (RFC 3261 §19.1.5: they are not allowed
    // there) and no '<>' (which rsip would refuse anyway).
    if parts[1].contains('?') {
        return Err(with_reply(&d, ParseError::Uri(parts[1].to_owned()), 400));
    }
    if let Err(e) = parse_uri(parts[1]) {
        return Err(with_reply(&d, e, 400));
    }
    for v in d.headers.get_all("Via") {
        if let Err(e) = Via::parse(v) {
            return Err(with_reply(&d, e, 400));
        }
    }
    for name in ["From", "To"] {
        if let Err(e) = NameAddr::parse(d.headers.get(name).unwrap_or_default()) {
            return Err(with_reply(&d, e, 400));
        }
    }
    for c in d.headers.get_all("Contact") {
        if c.trim() == "*" {
            continue;
        }
        for item in split_commas(c) {
            if let Err(e) = NameAddr::parse(item) {
                return Err(with_reply(&d, e, 400));
            }
        }
    }
    // Headers that exist once (RFC 3261 §7.3.1): two values are ambiguous, refuse them.
    for name in [
        "Call-ID",
        "CSeq",
        "From",
        "To",
        "Max-Forwards",
        "Content-Length",
    ] {
        if d.headers.get_all(name).count() > 1 {
            return Err(with_reply(
                &d,
                ParseError::Header("duplicate", name.to_owned()),
                400,
            ));
        }
    }
    if let Some(mf) = d.headers.get("Max-Forwards")
        && mf.parse::<u8>().is_err()
    {
        return Err(with_reply(
            &d,
            ParseError::Header("Max-Forwards", mf.to_owned()),
            400,
        ));
    }
    if let Some(ex) = d.headers.get("Expires")
        && ex.parse::<u32>().is_err()
    {
        return Err(with_reply(
            &d,
            ParseError::Header("Expires", ex.to_owned()),
            400,
        ));
    }
    let body = match take_body(&d.headers, avail) {
        Ok(b) => b,
        Err(e) => return Err(with_reply(&d, e, 400)),
    };
    let uri = parts[1].to_owned();
    Ok(Message::Request(Request {
        method,
        uri,
        headers: d.headers,
        body,
    }))
}

/// A response `501 Not Implemented` (with `Allow`) for an extension method.
pub fn not_implemented(req: &Request, allow: &str) -> Response {
    let mut r = Response::to_request(req, 501, reason_phrase(501));
    r.headers.push("Allow", allow);
    r
}

/// Parses an IP address from a Via `received`/host.
pub fn ip_of(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: \"Alice A\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@10.0.0.1>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\nEXTRA";

    #[test]
    fn parses_request_and_truncates_body_to_content_length() {
        let Message::Request(r) = parse(INVITE.as_bytes(), &Limits::default()).unwrap() else {
            panic!()
        };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.body, b"v=0\n");
        let k = r.key().unwrap();
        assert_eq!(k.via.branch.as_deref(), Some("z9hG4bK776asdhds"));
        assert_eq!(k.via.rport, Some(None));
        assert_eq!(k.from_tag, "1928301774");
        assert_eq!(k.to_tag, None);
        assert_eq!(k.cseq, 314159);
        let from = NameAddr::parse(r.headers.get("From").unwrap()).unwrap();
        assert_eq!(from.display_name, "Alice A");
        assert_eq!(from.user(), "alice");
    }

    #[test]
    fn unfolds_folded_headers() {
        let m = "OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>\r\n ;tag=88\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1\r\n\tOPTIONS\r\n\r\n";
        let Message::Request(r) = parse(m.as_bytes(), &Limits::default()).unwrap() else {
            panic!()
        };
        assert_eq!(r.key().unwrap().from_tag, "88");
        assert_eq!(r.key().unwrap().cseq_method, Method::Options);
    }

    #[test]
    fn extension_method_parses_and_gets_501() {
        let m = "FOO sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:x@y>\r\ni: c\r\nCSeq: 1 FOO\r\n\r\n";
        let Message::Request(r) = parse(m.as_bytes(), &Limits::default()).unwrap() else {
            panic!()
        };
        assert_eq!(r.method, Method::Other("FOO".into()));
        let resp = not_implemented(&r, "INVITE, ACK");
        let text = String::from_utf8(resp.to_bytes()).unwrap();
        assert!(text.starts_with("SIP/2.0 501 Not Implemented\r\n"));
        assert!(text.contains("CSeq: 1 FOO\r\n"));
    }

    #[test]
    fn bad_requests_get_400_when_answerable_and_are_dropped_otherwise() {
        let m = "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\nshort";
        let e = parse(m.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(e.reply.unwrap().status, 400);
        let m = "INVITE sip:x@y SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\n\r\n";
        assert!(
            parse(m.as_bytes(), &Limits::default())
                .unwrap_err()
                .reply
                .is_none()
        );
        let m = "INVITE sip:x@y SIP/7.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(
            parse(m.as_bytes(), &Limits::default())
                .unwrap_err()
                .reply
                .unwrap()
                .status,
            505
        );
    }

    #[test]
    fn splits_comma_lists_and_frames_streams() {
        let m = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 2\r\n\r\nab";
        let Message::Response(r) = parse(m.as_bytes(), &Limits::default()).unwrap() else {
            panic!()
        };
        assert_eq!(r.headers.get_all("Via").count(), 2);
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(m.as_bytes());
        buf.extend_from_slice(b"INVITE");
        assert_eq!(
            frame_len(&buf, &Limits::default()).unwrap(),
            Some(4 + m.len())
        );
        assert_eq!(frame_len(&buf[..20], &Limits::default()).unwrap(), None);
    }

    #[test]
    fn round_trips_serialization() {
        let Message::Request(r) = parse(INVITE.as_bytes(), &Limits::default()).unwrap() else {
            panic!()
        };
        let again = parse(&r.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(again, Message::Request(r));
    }

    #[test]
    fn limits_are_enforced() {
        let mut m = String::from("OPTIONS sip:x@y SIP/2.0\r\n");
        for i in 0..200 {
            m.push_str(&format!("X-H{i}: v\r\n"));
        }
        m.push_str("\r\n");
        assert!(matches!(
            parse(m.as_bytes(), &Limits::default()).unwrap_err().error,
            ParseError::TooManyHeaders(_)
        ));
        let big = vec![b'a'; 70_000];
        assert!(matches!(
            parse(&big, &Limits::default()).unwrap_err().error,
            ParseError::TooLarge(_)
        ));
    }

    /// Found by the `sip_parse` fuzz target: a request with exactly `max_headers` headers and
    /// no Content-Length parsed, but its serialization (which adds Content-Length) did not.
    #[test]
    fn a_message_at_the_header_limit_parses_again_after_serializing() {
        let limits = Limits::default();
        let mut m = String::from(
            "OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n",
        );
        for i in 5..limits.max_headers {
            m.push_str(&format!("X-H{i}: v\r\n"));
        }
        m.push_str("\r\n");
        let first = parse(m.as_bytes(), &limits).unwrap();
        assert_eq!(first.headers().0.len(), limits.max_headers);
        let again = parse(&first.to_bytes(), &limits).unwrap();
        assert_eq!(again.headers().0.len(), limits.max_headers + 1);
        // One header more than the limit (Content-Length aside) is still refused.
        let over = m.replacen(
            "X-H5: v\r\n",
            "X-H5: v\r\nX-Extra: v\r\nContent-Length: 0\r\n",
            1,
        );
        assert!(matches!(
            parse(over.as_bytes(), &limits).unwrap_err().error,
            ParseError::TooManyHeaders(_)
        ));
    }
}
