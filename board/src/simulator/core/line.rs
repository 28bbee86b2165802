//! The line discipline: bytes from the gateway assembled into command lines (V.250 §5.2:
//! `<CR>` ends a line, other control characters are dropped, an over-long line is discarded
//! whole), the echo of the `> ` prompt's body, the body itself (ended by Ctrl-Z, abandoned by
//! ESC), and splitting one line into its commands.
//!
//! The echo of a whole command line is written by the core (it knows whether a fault eats the
//! line); the body of a prompt is echoed byte by byte as a modem does. In text mode a `<CR>`
//! inside the body is a line break: the modem answers it with a fresh prompt (27.005 §3.5.1).

use super::sms::Prompt;

/// Longest command line accepted (longer input is discarded, as modems do).
const MAX_LINE: usize = 1024;

/// Longest prompt body accepted (hex of a 176-octet PDU plus slack; text-mode bodies are
/// shorter).
const MAX_BODY: usize = 600;

/// What one byte completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LineEvent {
    /// Bytes to echo now.
    Echo(Vec<u8>),
    /// A command line (trimmed, never empty).
    Line(String),
    /// The prompt's body, ended by Ctrl-Z, for the prompt that was open.
    Body(Prompt, Vec<u8>),
    /// ESC at the prompt: nothing is sent or stored; the modem answers `OK`.
    Aborted,
}

/// Bytes on their way to becoming a command line or a prompt body.
#[derive(Debug, Default)]
pub(super) struct LineDiscipline {
    buf: Vec<u8>,
    discarding: bool,
    prompt: Option<Prompt>,
    body: Vec<u8>,
}

impl LineDiscipline {
    /// Opens the `> ` prompt: the following bytes are `p`'s body.
    pub(super) fn open_prompt(&mut self, p: Prompt) {
        self.prompt = Some(p);
        self.body.clear();
    }

    /// One byte from the gateway; `echo` is the `ATE` setting.
    pub(super) fn push(&mut self, b: u8, echo: bool) -> Option<LineEvent> {
        if self.prompt.is_some() {
            let text = self.prompt.as_ref().is_some_and(Prompt::is_text);
            return match b {
                0x1A => self
                    .prompt
                    .take()
                    .map(|p| LineEvent::Body(p, std::mem::take(&mut self.body))),
                0x1B => {
                    self.prompt = None;
                    self.body.clear();
                    Some(LineEvent::Aborted)
                }
                b'\r' if text => {
                    if self.body.len() < MAX_BODY {
                        self.body.push(b'\n');
                    }
                    Some(LineEvent::Echo(b"\r\n> ".to_vec()))
                }
                b'\r' | b'\n' => None,
                _ => {
                    if self.body.len() < MAX_BODY {
                        self.body.push(b);
                    }
                    echo.then(|| LineEvent::Echo(vec![b]))
                }
            };
        }
        match b {
            b'\r' => {
                let line = String::from_utf8_lossy(&self.buf).trim().to_owned();
                self.buf.clear();
                if std::mem::take(&mut self.discarding) || line.is_empty() {
                    return None;
                }
                Some(LineEvent::Line(line))
            }
            b'\n' | 0x00..=0x1F | 0x7F => None,
            _ => {
                if self.buf.len() >= MAX_LINE {
                    self.discarding = true;
                    self.buf.clear();
                } else if !self.discarding {
                    self.buf.push(b);
                }
                None
            }
        }
    }
}

/// What a command asks: run (`AT+X`, `ATA`), set (`AT+X=…`, `ATE1`), read (`AT+X?`) or test
/// (`AT+X=?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// Action or basic command without a value.
    Exec,
    /// `=<values>` (or a basic command's number).
    Set,
    /// `?`.
    Read,
    /// `=?`.
    Test,
}

/// One command of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Piece {
    /// Upper-case name with its prefix: `+CMGS`, `^DTMF`, `E`, `&F`, `D`.
    pub(super) name: String,
    /// What it asks.
    pub(super) op: Op,
    /// The values as sent (case kept): after `=` for a set command, the number of a basic
    /// command, everything after `D` for a dial.
    pub(super) raw: String,
}

/// Splits what follows `AT` into its commands (V.250 §5.2.1): extended commands (`+`, `^`,
/// `$`, `%` prefixes) end at a `;` outside quotes, basic commands are one letter (or `&` and a
/// letter) with an optional number, and `D` takes the rest of the line. `Err` for a line that
/// is not a command line (the modem answers `ERROR`).
pub(super) fn split(body: &str) -> Result<Vec<Piece>, ()> {
    let mut out = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let Some(&c) = chars.get(i) else { break };
        if c == ' ' || c == ';' {
            i += 1;
            continue;
        }
        if matches!(c, '+' | '^' | '$' | '%') {
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '!'))
            {
                i += 1;
            }
            let name: String = chars.get(start..i).unwrap_or_default().iter().collect();
            if name.len() < 2 {
                return Err(());
            }
            let (op, raw) = match (chars.get(i), chars.get(i + 1)) {
                (Some('='), Some('?')) => {
                    i += 2;
                    (Op::Test, String::new())
                }
                (Some('='), _) => {
                    i += 1;
                    let from = i;
                    let mut quoted = false;
                    while let Some(&c) = chars.get(i) {
                        if c == '"' {
                            quoted = !quoted;
                        } else if c == ';' && !quoted {
                            break;
                        }
                        i += 1;
                    }
                    if quoted {
                        return Err(());
                    }
                    let raw: String = chars.get(from..i).unwrap_or_default().iter().collect();
                    (Op::Set, raw.trim().to_owned())
                }
                (Some('?'), _) => {
                    i += 1;
                    (Op::Read, String::new())
                }
                _ => (Op::Exec, String::new()),
            };
            // Only a `;` or the end of the line may follow.
            match chars.get(i) {
                None | Some(';') => {}
                Some(_) => return Err(()),
            }
            out.push(Piece {
                name: name.to_ascii_uppercase(),
                op,
                raw,
            });
            continue;
        }
        let upper = c.to_ascii_uppercase();
        if upper == 'D' {
            let raw: String = chars.get(i + 1..).unwrap_or_default().iter().collect();
            out.push(Piece {
                name: "D".to_owned(),
                op: Op::Set,
                raw,
            });
            break;
        }
        let name = if c == '&' {
            i += 1;
            match chars.get(i) {
                Some(l) if l.is_ascii_alphabetic() => format!("&{}", l.to_ascii_uppercase()),
                _ => return Err(()),
            }
        } else if c.is_ascii_alphabetic() {
            upper.to_string()
        } else {
            return Err(());
        };
        i += 1;
        let from = i;
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        let raw: String = chars.get(from..i).unwrap_or_default().iter().collect();
        let op = if raw.is_empty() { Op::Exec } else { Op::Set };
        out.push(Piece { name, op, raw });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str) -> Vec<(String, Op, String)> {
        split(body)
            .unwrap_or_else(|()| panic!("{body}"))
            .into_iter()
            .map(|p| (p.name, p.op, p.raw))
            .collect()
    }

    #[test]
    fn splits_extended_and_basic_commands() {
        let s = |n: &str, op, r: &str| (n.to_owned(), op, r.to_owned());
        assert_eq!(
            names("E0V1+CMEE=1;+cmgf?;^USSDMODE=?"),
            vec![
                s("E", Op::Set, "0"),
                s("V", Op::Set, "1"),
                s("+CMEE", Op::Set, "1"),
                s("+CMGF", Op::Read, ""),
                s("^USSDMODE", Op::Test, ""),
            ]
        );
        assert_eq!(
            names("+CUSD=1,\"*100;#\",15"),
            vec![s("+CUSD", Op::Set, "1,\"*100;#\",15")]
        );
        assert_eq!(
            names("D+15551234567;"),
            vec![s("D", Op::Set, "+15551234567;")]
        );
        assert_eq!(
            names("&FZ"),
            vec![s("&F", Op::Exec, ""), s("Z", Op::Exec, "")]
        );
        assert_eq!(names("A"), vec![s("A", Op::Exec, "")]);
        assert!(names("").is_empty());
        for bad in ["+", "+CMGF=\"x", "&", "\"", "+CMGF?X", "1"] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prompt_body_is_collected_and_echoed() {
        let mut l = LineDiscipline::default();
        l.open_prompt(Prompt::SendPdu { len: 10 });
        assert_eq!(l.push(b'0', true), Some(LineEvent::Echo(b"0".to_vec())));
        assert_eq!(l.push(b'\r', true), None);
        assert_eq!(l.push(b'1', false), None);
        assert_eq!(
            l.push(0x1A, true),
            Some(LineEvent::Body(Prompt::SendPdu { len: 10 }, b"01".to_vec()))
        );
        assert_eq!(l.push(b'\r', true), None, "an empty line");
        let text = Prompt::SendText {
            to: "+1".to_owned(),
            toa: 145,
        };
        l.open_prompt(text.clone());
        l.push(b'a', false);
        assert_eq!(
            l.push(b'\r', false),
            Some(LineEvent::Echo(b"\r\n> ".to_vec()))
        );
        l.push(b'b', false);
        assert_eq!(
            l.push(0x1A, false),
            Some(LineEvent::Body(text, b"a\nb".to_vec()))
        );
        l.open_prompt(Prompt::SendPdu { len: 10 });
        assert_eq!(l.push(0x1B, false), Some(LineEvent::Aborted));
    }

    #[test]
    fn overlong_lines_are_discarded() {
        let mut l = LineDiscipline::default();
        for _ in 0..=MAX_LINE {
            assert_eq!(l.push(b'A', true), None);
        }
        assert_eq!(l.push(b'\r', true), None);
        for b in b"AT" {
            l.push(*b, true);
        }
        assert_eq!(l.push(b'\r', true), Some(LineEvent::Line("AT".to_owned())));
    }
}
