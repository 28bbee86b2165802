//! The sans-IO AT codec: bytes from the modem in, [`AtEvent`]s out.
//!
//! The codec knows which command is pending (the driver tells it with [`AtCodec::begin`]),
//! because only that decides whether `+CLCC:` is a reply or a URC, whether `NO CARRIER` ends a
//! dial or reports a remote hang-up, and whether the line after `+CMGR:` is a PDU. It copes
//! with echo on or off, URCs inside a response, lines split across reads, `\r\r\n`, NUL and
//! other control bytes, invalid UTF-8, and lines longer than its bounded buffer (reported as
//! [`AtEvent::Overflow`] and skipped). It never panics and never grows without bound.

use serde::{Deserialize, Serialize};

use super::args::{is_hex, split_name};
use super::types::ErrorCode;
use super::urc::{Urc, UrcError, UrcKind, classify, parse_pdu_urc, parse_urc};

/// Default maximum line length in bytes. A PDU line is at most ~360 hex characters; 4 KiB
/// leaves room for vendors' long info lines while bounding garbage.
pub const DEFAULT_MAX_LINE: usize = 4096;

/// Default maximum number of information lines kept for one response (a full `AT+CMGL=4` on
/// a 255-slot memory has 510).
pub const DEFAULT_MAX_RESPONSE_LINES: usize = 2048;

/// The final result code that ends a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "code", rename_all = "snake_case")]
pub enum FinalResult {
    /// `OK`.
    Ok,
    /// `CONNECT [<text>]`.
    Connect(Option<String>),
    /// `ERROR`.
    Error,
    /// `+CME ERROR: <err>`.
    CmeError(ErrorCode),
    /// `+CMS ERROR: <err>`.
    CmsError(ErrorCode),
    /// `NO CARRIER` (final only for dial/answer commands).
    NoCarrier,
    /// `BUSY` (final only for dial commands).
    Busy,
    /// `NO ANSWER` (final only for dial commands).
    NoAnswer,
    /// `NO DIALTONE` (final only for dial commands).
    NoDialtone,
    /// Huawei's `COMMAND NOT SUPPORT` (instead of `ERROR`).
    CommandNotSupported,
}

impl FinalResult {
    /// True for `OK` and `CONNECT`.
    pub fn is_ok(&self) -> bool {
        matches!(self, FinalResult::Ok | FinalResult::Connect(_))
    }
}

/// A complete response to the pending command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The command it answers (as given to [`AtCodec::begin`]).
    pub command: String,
    /// Information lines, in order (PDU lines follow their `+CMGR:`/`+CMGL:` header).
    pub lines: Vec<String>,
    /// How it ended.
    pub result: FinalResult,
    /// Lines dropped because the response exceeded the line limit.
    pub dropped_lines: usize,
}

impl Response {
    /// Information lines whose name is `prefix` (e.g. `"+CSQ"`), with the `NAME:` part
    /// stripped and leading spaces trimmed.
    pub fn values<'a, 'p>(
        &'a self,
        prefix: &'p str,
    ) -> impl Iterator<Item = &'a str> + use<'a, 'p> {
        self.lines.iter().filter_map(move |l| {
            let (name, rest) = split_name(l);
            name.eq_ignore_ascii_case(prefix).then_some(rest)
        })
    }

    /// The first information line named `prefix`, stripped.
    pub fn value(&self, prefix: &str) -> Option<&str> {
        self.values(prefix).next()
    }

    /// The first information line that is not empty, with any `NAME:` prefix removed (for
    /// `AT+CGMI`-style replies that some modems prefix and others do not).
    pub fn first_text(&self) -> Option<&str> {
        self.lines
            .iter()
            .map(|l| {
                let (name, rest) = split_name(l);
                if name.len() == l.len() {
                    l.trim()
                } else {
                    rest.trim()
                }
            })
            .find(|t| !t.is_empty())
    }
}

/// What the codec produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AtEvent {
    /// The pending command finished.
    Response(Response),
    /// The `> ` prompt for the pending command's body (`AT+CMGS`).
    Prompt,
    /// An unsolicited result code.
    Urc(Urc),
    /// A line that looked like a known URC but was malformed.
    BadUrc(UrcError),
    /// A line that belongs to nothing: not a known URC, and no command pending (or a final
    /// result with no command pending).
    Stray(String),
    /// A line longer than the limit was discarded (`discarded` bytes, up to its end).
    Overflow {
        /// Bytes dropped.
        discarded: usize,
    },
}

/// The command the modem is currently answering, as far as the codec needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The command text without the trailing `\r` (used to recognise its echo).
    pub text: String,
    /// Line names that are information lines of this command (`+CSQ` for `AT+CSQ`).
    pub expect: Vec<String>,
    /// Line names after which a PDU line follows (`+CMGR`, `+CMGL`).
    pub pdu_after: Vec<String>,
    /// The command waits for a `> ` prompt before its body.
    pub prompt: bool,
    /// Dial/answer: `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`, `CONNECT` are final.
    pub dial: bool,
}

impl Pending {
    /// Derives what to expect from the command text: `AT+CMGR=3` expects `+CMGR` lines each
    /// followed by a PDU, `ATD...;`/`ATA` are dial commands, `AT+CMGS` waits for a prompt.
    /// `+CUSD` is never an information line: the driver treats it as a URC wherever it comes.
    pub fn for_command(text: &str) -> Self {
        let t = text.trim();
        let upper = t.to_ascii_uppercase();
        let body = upper.strip_prefix("AT").unwrap_or(&upper);
        let mut expect = Vec::new();
        let mut pdu_after = Vec::new();
        if body.starts_with('+') || body.starts_with('^') {
            let end = body.find(['=', '?', ';']).unwrap_or(body.len());
            let name = body.get(..end).unwrap_or(body).trim().to_owned();
            if name == "+CMGR" || name == "+CMGL" {
                pdu_after.push(name.clone());
            }
            if name != "+CUSD" {
                expect.push(name);
            }
        }
        let dial = body.starts_with('D') || body == "A";
        let prompt = body.starts_with("+CMGS") || body.starts_with("+CMGW");
        Self {
            text: t.to_owned(),
            expect,
            pdu_after,
            prompt,
            dial,
        }
    }

    /// Adds another information-line name (e.g. `+ICCID` for `AT+CCID` on some modems).
    pub fn also_expect(mut self, name: &str) -> Self {
        self.expect.push(name.to_ascii_uppercase());
        self
    }
}

/// Codec limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecLimits {
    /// Maximum bytes in one line.
    pub max_line: usize,
    /// Maximum information lines kept per response.
    pub max_response_lines: usize,
}

impl Default for CodecLimits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            max_response_lines: DEFAULT_MAX_RESPONSE_LINES,
        }
    }
}

#[derive(Debug)]
struct InFlight {
    pending: Pending,
    lines: Vec<String>,
    dropped: usize,
    /// The last line was a `+CMGR:`/`+CMGL:` header: the next line is its PDU.
    want_pdu: bool,
    prompt_seen: bool,
}

/// The AT codec. Feed it bytes with [`AtCodec::feed`]; tell it about commands with
/// [`AtCodec::begin`] and [`AtCodec::abort`].
#[derive(Debug)]
pub struct AtCodec {
    limits: CodecLimits,
    /// Bytes of the current, unterminated line (control bytes already removed).
    partial: Vec<u8>,
    /// Discarding an over-long line until its terminator; counts dropped bytes.
    discarding: Option<usize>,
    in_flight: Option<InFlight>,
    /// A `+CMT:`/`+CDS:` header waiting for its PDU line.
    urc_header: Option<String>,
    /// A `+CUSD:` line whose quoted text contains line breaks (USSD menus in text mode),
    /// with the number of lines joined so far.
    cusd_partial: Option<(String, usize)>,
}

/// Most lines a multi-line `+CUSD` text may span before it is declared malformed.
const MAX_CUSD_LINES: usize = 32;

impl Default for AtCodec {
    fn default() -> Self {
        Self::new(CodecLimits::default())
    }
}

impl AtCodec {
    /// A codec with the given limits.
    pub fn new(limits: CodecLimits) -> Self {
        Self {
            limits: CodecLimits {
                max_line: limits.max_line.max(16),
                max_response_lines: limits.max_response_lines.max(1),
            },
            partial: Vec::new(),
            discarding: None,
            in_flight: None,
            urc_header: None,
            cusd_partial: None,
        }
    }

    /// Registers the command just written to the modem. A still-pending command is dropped
    /// (the driver only begins after the previous one finished or was aborted).
    pub fn begin(&mut self, pending: Pending) {
        self.in_flight = Some(InFlight {
            pending,
            lines: Vec::new(),
            dropped: 0,
            want_pdu: false,
            prompt_seen: false,
        });
    }

    /// Forgets the pending command (it timed out); late lines become URCs or strays.
    pub fn abort(&mut self) {
        self.in_flight = None;
    }

    /// True while a command is pending.
    pub fn is_pending(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Drops all buffered state (after the port was reopened).
    pub fn reset(&mut self) {
        self.partial.clear();
        self.discarding = None;
        self.in_flight = None;
        self.urc_header = None;
        self.cusd_partial = None;
    }

    /// Feeds bytes read from the modem; appends the resulting events to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<AtEvent>) {
        for &b in bytes {
            match b {
                b'\r' | b'\n' => {
                    if let Some(n) = self.discarding.take() {
                        out.push(AtEvent::Overflow { discarded: n });
                        self.partial.clear();
                        continue;
                    }
                    if !self.partial.is_empty() {
                        let line = String::from_utf8_lossy(&self.partial).into_owned();
                        self.partial.clear();
                        self.line(&line, out);
                    }
                }
                // Control bytes (NUL, Ctrl-Z echoed after a PDU, ESC, …) carry nothing.
                0x00..=0x1F | 0x7F => {}
                _ => {
                    if let Some(n) = self.discarding.as_mut() {
                        *n = n.saturating_add(1);
                        continue;
                    }
                    if self.partial.len() >= self.limits.max_line {
                        self.discarding = Some(self.partial.len().saturating_add(1));
                        self.partial.clear();
                        continue;
                    }
                    self.partial.push(b);
                    self.check_prompt(out);
                }
            }
        }
    }

    /// The `> ` prompt has no line terminator: recognise it in the partial line.
    fn check_prompt(&mut self, out: &mut Vec<AtEvent>) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        if f.pending.prompt && !f.prompt_seen && self.partial.as_slice() == b"> " {
            f.prompt_seen = true;
            self.partial.clear();
            out.push(AtEvent::Prompt);
        }
    }

    fn line(&mut self, raw: &str, out: &mut Vec<AtEvent>) {
        let line = raw.trim();
        if line.is_empty() {
            return;
        }
        if let Some((mut acc, n)) = self.cusd_partial.take() {
            acc.push('\n');
            acc.push_str(line);
            if acc.matches('"').count() % 2 == 0 {
                self.line(&acc, out);
            } else if n + 1 >= MAX_CUSD_LINES || acc.len() > self.limits.max_line {
                out.push(AtEvent::BadUrc(UrcError {
                    name: "+CUSD".to_owned(),
                    line: acc,
                    reason: "unterminated quoted text".to_owned(),
                }));
            } else {
                self.cusd_partial = Some((acc, n + 1));
            }
            return;
        }
        if line
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("+CUSD:"))
            && line.matches('"').count() % 2 == 1
        {
            self.cusd_partial = Some((line.to_owned(), 1));
            return;
        }
        // A two-line URC header waits for its PDU.
        if let Some(header) = self.urc_header.take() {
            if is_hex(line) {
                match parse_pdu_urc(&header, line) {
                    Ok(u) => out.push(AtEvent::Urc(u)),
                    Err(e) => out.push(AtEvent::BadUrc(e)),
                }
                return;
            }
            out.push(AtEvent::BadUrc(UrcError {
                name: split_name(&header).0.to_owned(),
                line: header.clone(),
                reason: format!("expected a PDU line, got `{line}`"),
            }));
        }
        if let Some(f) = self.in_flight.as_mut() {
            if f.want_pdu {
                f.want_pdu = false;
                if is_hex(line) {
                    push_line(f, line, self.limits.max_response_lines);
                    return;
                }
            }
            // `>` alone (modems that send the prompt with a line end).
            if f.pending.prompt && !f.prompt_seen && line == ">" {
                f.prompt_seen = true;
                out.push(AtEvent::Prompt);
                return;
            }
            if line.eq_ignore_ascii_case(&f.pending.text) {
                return; // echo
            }
        }
        let dial = self.in_flight.as_ref().is_some_and(|f| f.pending.dial);
        if let Some(result) = final_result(line, dial) {
            match self.in_flight.take() {
                Some(f) => out.push(AtEvent::Response(Response {
                    command: f.pending.text,
                    lines: f.lines,
                    result,
                    dropped_lines: f.dropped,
                })),
                None => out.push(AtEvent::Stray(line.to_owned())),
            }
            return;
        }
        let (name, _) = split_name(line);
        let uname = name.to_ascii_uppercase();
        if let Some(f) = self.in_flight.as_mut()
            && name.len() != line.len()
            && f.pending.expect.contains(&uname)
        {
            if f.pending.pdu_after.contains(&uname) {
                f.want_pdu = true;
            }
            push_line(f, line, self.limits.max_response_lines);
            return;
        }
        match classify(line) {
            Some(UrcKind::WithPdu) => {
                self.urc_header = Some(line.to_owned());
            }
            Some(UrcKind::Single) => match parse_urc(line) {
                Some(Ok(u)) => out.push(AtEvent::Urc(u)),
                Some(Err(e)) => out.push(AtEvent::BadUrc(e)),
                None => out.push(AtEvent::Stray(line.to_owned())),
            },
            None => {
                if let Some(f) = self.in_flight.as_mut() {
                    push_line(f, line, self.limits.max_response_lines);
                } else if name.len() != line.len() {
                    out.push(AtEvent::Urc(Urc::Other {
                        name: name.to_owned(),
                        value: split_name(line).1.to_owned(),
                    }));
                } else {
                    // NO CARRIER/BUSY/NO ANSWER outside a dial are URCs.
                    match parse_urc(line) {
                        Some(Ok(u)) => out.push(AtEvent::Urc(u)),
                        _ => out.push(AtEvent::Stray(line.to_owned())),
                    }
                }
            }
        }
    }
}

fn push_line(f: &mut InFlight, line: &str, max: usize) {
    if f.lines.len() < max {
        f.lines.push(line.to_owned());
    } else {
        f.dropped = f.dropped.saturating_add(1);
    }
}

/// Recognises a final result code. Call-progress results end only dial/answer commands;
/// elsewhere they are URCs (a remote hang-up while `AT+CSQ` is pending must not end it).
fn final_result(line: &str, dial: bool) -> Option<FinalResult> {
    let upper = line.to_ascii_uppercase();
    match upper.as_str() {
        "OK" => return Some(FinalResult::Ok),
        "ERROR" => return Some(FinalResult::Error),
        "COMMAND NOT SUPPORT" => return Some(FinalResult::CommandNotSupported),
        _ => {}
    }
    if upper.starts_with("+CME ERROR:") {
        return Some(FinalResult::CmeError(ErrorCode::parse(
            line.get(11..).unwrap_or(""),
        )));
    }
    if upper.starts_with("+CMS ERROR:") {
        return Some(FinalResult::CmsError(ErrorCode::parse(
            line.get(11..).unwrap_or(""),
        )));
    }
    if dial {
        match upper.as_str() {
            "NO CARRIER" => return Some(FinalResult::NoCarrier),
            "BUSY" => return Some(FinalResult::Busy),
            "NO ANSWER" => return Some(FinalResult::NoAnswer),
            "NO DIALTONE" | "NO DIAL TONE" => return Some(FinalResult::NoDialtone),
            _ => {}
        }
        if upper == "CONNECT" {
            return Some(FinalResult::Connect(None));
        }
        if let Some(rest) = line.get(8..)
            && upper.starts_with("CONNECT ")
        {
            return Some(FinalResult::Connect(Some(rest.trim().to_owned())));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::types::CallStat;
    use super::*;

    fn feed(codec: &mut AtCodec, s: &[u8]) -> Vec<AtEvent> {
        let mut out = Vec::new();
        codec.feed(s, &mut out);
        out
    }

    fn resp(ev: &AtEvent) -> &Response {
        match ev {
            AtEvent::Response(r) => r,
            other => panic!("not a response: {other:?}"),
        }
    }

    #[test]
    fn simple_response_echo_on_and_off() {
        let mut c = AtCodec::default();
        c.begin(Pending::for_command("AT+CSQ"));
        let ev = feed(&mut c, b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
        assert_eq!(ev.len(), 1);
        let r = resp(&ev[0]);
        assert_eq!(r.lines, vec!["+CSQ: 20,99"]);
        assert_eq!(r.result, FinalResult::Ok);
        assert_eq!(r.value("+CSQ"), Some("20,99"));

        c.begin(Pending::for_command("AT+CSQ"));
        let ev = feed(&mut c, b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n");
        assert_eq!(resp(&ev[0]).lines, vec!["+CSQ: 21,99"]);
    }

    #[test]
    fn split_reads_byte_by_byte() {
        let mut c = AtCodec::default();
        c.begin(Pending::for_command("AT+CGMI"));
        let mut out = Vec::new();
        for b in b"\r\r\nQuectel\r\n\r\nOK\r\n" {
            c.feed(&[*b], &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(resp(&out[0]).first_text(), Some("Quectel"));
    }

    #[test]
    fn urc_in_the_middle_of_a_response() {
        let mut c = AtCodec::default();
        c.begin(Pending::for_command("AT+CREG?"));
        let ev = feed(
            &mut c,
            b"\r\n^RSSI:17\r\n\r\n+CREG: 2,1,\"4CA\",\"81DE445\"\r\n\r\n+CMTI: \"SM\",2\r\n\r\nOK\r\n",
        );
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0], AtEvent::Urc(Urc::Rssi { rssi: 17 }));
        assert_eq!(
            ev[1],
            AtEvent::Urc(Urc::Cmti {
                mem: "SM".into(),
                index: Some(2)
            })
        );
        assert_eq!(resp(&ev[2]).lines, vec!["+CREG: 2,1,\"4CA\",\"81DE445\""]);
    }

    #[test]
    fn clcc_is_reply_or_urc_depending_on_pending() {
        let mut c = AtCodec::default();
        let ev = feed(&mut c, b"\r\n+CLCC: 1,1,4,0,0,\"+1555\",145\r\n");
        assert!(matches!(&ev[0], AtEvent::Urc(Urc::Clcc(ci)) if ci.state == CallStat::Incoming));
        c.begin(Pending::for_command("AT+CLCC"));
        let ev = feed(&mut c, b"\r\n+CLCC: 1,1,0,0,0,\"+1555\",145\r\n\r\nOK\r\n");
        assert_eq!(resp(&ev[0]).lines.len(), 1);
    }

    #[test]
    fn cmgr_header_and_pdu_and_cmgl_pairs() {
        let mut c = AtCodec::default();
        c.begin(Pending::for_command("AT+CMGR=3"));
        let ev = feed(&mut c, b"\r\n+CMGR: 0,,24\r\n07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07\r\n\r\nOK\r\n");
        let r = resp(&ev[0]);
        assert_eq!(r.lines.len(), 2);
        assert!(r.lines[1].starts_with("0791"));

        c.begin(Pending::for_command("AT+CMGL=4"));
        let ev = feed(
            &mut c,
            b"\r\n+CMGL: 1,0,,3\r\n00AABB\r\n+CMGL: 2,1,,3\r\n00CCDD\r\n\r\nOK\r\n",
        );
        assert_eq!(
            resp(&ev[0]).lines,
            vec!["+CMGL: 1,0,,3", "00AABB", "+CMGL: 2,1,,3", "00CCDD"]
        );
    }

    #[test]
    fn two_line_urcs_and_broken_ones() {
        let mut c = AtCodec::default();
        let ev = feed(
            &mut c,
            b"\r\n+CMT: ,24\r\n0791AABB\r\n\r\n+CDS: 6\r\n0006D6\r\n",
        );
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], AtEvent::Urc(Urc::Cmt { length: 24, .. })));
        assert!(matches!(&ev[1], AtEvent::Urc(Urc::Cds { length: 6, .. })));
        let ev = feed(&mut c, b"\r\n+CMT: ,24\r\nRING\r\n");
        assert!(matches!(&ev[0], AtEvent::BadUrc(_)));
        assert_eq!(ev[1], AtEvent::Urc(Urc::Ring));
    }

    #[test]
    fn prompt_and_cmgs() {
        let mut c = AtCodec::default();
        c.begin(Pending::for_command("AT+CMGS=23"));
        let ev = feed(&mut c, b"AT+CMGS=23\r\r\n> ");
        assert_eq!(ev, vec![AtEvent::Prompt]);
        // Echoed body with Ctrl-Z, then the result.
        let ev = feed(
            &mut c,
            b"0011000B915155661632F4\x1a\r\n+CMGS: 42\r\n\r\nOK\r\n",
        );
        let r = resp(&ev[0]);
        assert_eq!(r.value("+CMGS"), Some("42"));
    }

    #[test]
    fn call_progress_is_final_only_for_dial() {
        let mut c = AtCodec::default();
        c.begin(Pending::for_command("AT+CSQ"));
        let ev = feed(&mut c, b"\r\nNO CARRIER\r\n\r\n+CSQ: 1,2\r\n\r\nOK\r\n");
        assert_eq!(ev[0], AtEvent::Urc(Urc::NoCarrier));
        assert_eq!(resp(&ev[1]).result, FinalResult::Ok);

        c.begin(Pending::for_command("ATD+15551234;"));
        let ev = feed(&mut c, b"\r\nBUSY\r\n");
        assert_eq!(resp(&ev[0]).result, FinalResult::Busy);
        let ev = feed(&mut c, b"\r\nNO CARRIER\r\n");
        assert_eq!(ev[0], AtEvent::Urc(Urc::NoCarrier));
    }

    #[test]
    fn error_codes() {
        let mut c = AtCodec::default();
        c.begin(Pending::for_command("AT+CPIN?"));
        let ev = feed(&mut c, b"\r\n+CME ERROR: 14\r\n");
        assert_eq!(
            resp(&ev[0]).result,
            FinalResult::CmeError(ErrorCode::Code(14))
        );
        c.begin(Pending::for_command("AT+CMGS=5"));
        let ev = feed(&mut c, b"\r\n+CMS ERROR: 322\r\n");
        assert_eq!(
            resp(&ev[0]).result,
            FinalResult::CmsError(ErrorCode::Code(322))
        );
        c.begin(Pending::for_command("AT^FOO"));
        let ev = feed(&mut c, b"\r\nCOMMAND NOT SUPPORT\r\n");
        assert_eq!(resp(&ev[0]).result, FinalResult::CommandNotSupported);
        c.begin(Pending::for_command("AT+CPIN?"));
        let ev = feed(&mut c, b"\r\n+CME ERROR: SIM busy\r\n");
        assert_eq!(
            resp(&ev[0]).result,
            FinalResult::CmeError(ErrorCode::Text("SIM busy".into()))
        );
    }

    #[test]
    fn cusd_before_or_after_ok_is_always_a_urc() {
        let mut c = AtCodec::default();
        c.begin(Pending::for_command("AT+CUSD=1,\"*100#\",15"));
        let ev = feed(&mut c, b"\r\n+CUSD: 0,\"Balance 5\",15\r\n\r\nOK\r\n");
        assert!(matches!(&ev[0], AtEvent::Urc(Urc::Cusd { status: 0, .. })));
        assert_eq!(resp(&ev[1]).lines.len(), 0);
    }

    #[test]
    fn multi_line_cusd_text_is_joined() {
        let mut c = AtCodec::default();
        let ev = feed(
            &mut c,
            b"\r\n+CUSD: 1,\"1 Balance\r\n2 Bundles\r\n\",15\r\n",
        );
        assert_eq!(
            ev,
            vec![AtEvent::Urc(Urc::Cusd {
                status: 1,
                text: Some("1 Balance\n2 Bundles\n".into()),
                dcs: Some(15)
            })]
        );
        let mut c = AtCodec::default();
        let mut input = b"+CUSD: 1,\"never closed".to_vec();
        for _ in 0..40 {
            input.extend(b"\r\nmore");
        }
        input.extend(b"\r\n");
        let ev = feed(&mut c, &input);
        assert!(matches!(ev[0], AtEvent::BadUrc(_)), "{ev:?}");
        assert!(matches!(ev.last(), Some(AtEvent::Stray(_))));
    }

    #[test]
    fn garbage_nul_and_long_lines() {
        let mut c = AtCodec::new(CodecLimits {
            max_line: 32,
            max_response_lines: 4,
        });
        let mut input = vec![0u8, 0xFF, 0xFE, b'\r', b'\n', 0];
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend(b"\r\nR\0ING\r\n");
        let ev = feed(&mut c, &input);
        assert!(matches!(ev[0], AtEvent::Stray(_)), "{ev:?}");
        assert_eq!(ev[1], AtEvent::Overflow { discarded: 100 });
        assert_eq!(ev[2], AtEvent::Urc(Urc::Ring));
        // Bounded response lines.
        c.begin(Pending::for_command("AT+CMGL=4"));
        let ev = feed(&mut c, b"a\r\nb\r\nc\r\nd\r\ne\r\nf\r\nOK\r\n");
        assert_eq!(resp(&ev[0]).lines.len(), 4);
        assert_eq!(resp(&ev[0]).dropped_lines, 2);
    }

    #[test]
    fn stray_final_and_abort() {
        let mut c = AtCodec::default();
        assert_eq!(feed(&mut c, b"OK\r\n"), vec![AtEvent::Stray("OK".into())]);
        c.begin(Pending::for_command("AT"));
        c.abort();
        assert_eq!(feed(&mut c, b"OK\r\n"), vec![AtEvent::Stray("OK".into())]);
        assert_eq!(
            feed(&mut c, b"+XYZ: 1\r\n"),
            vec![AtEvent::Urc(Urc::Other {
                name: "+XYZ".into(),
                value: "1".into()
            })]
        );
    }
}
