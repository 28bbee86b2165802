//! Finds caller-ID messages in a stream of demodulated bytes.
//!
//! An FSK burst reads as: channel seizure (`0x55` bytes, possibly one odd byte where the
//! seizure meets the mark signal), the mark signal (no bytes), then the message — type,
//! length, body, checksum. The assembler waits for the mark signal (the demodulator reports
//! it), then for a known message type, collects `length + 1` more bytes, and decodes. Waiting
//! for the mark signal matters in noise: noise decodes as random bytes, and one that looks
//! like a message type would otherwise swallow the real message as its body. A framing error inside a message, or the carrier ending before the message
//! does, is reported as an error for that message; hunting then starts again.

use heapless::Vec;

use super::{CidError, MAX_MESSAGE, Message, TYPE_MDMF, TYPE_MDMF_MWI, TYPE_SDMF, TYPE_SDMF_MWI};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hunting,
    Length,
    Body { remaining: usize },
}

/// Byte-stream framing for caller-ID messages.
#[derive(Debug, Clone)]
pub struct FrameAssembler {
    buf: Vec<u8, MAX_MESSAGE>,
    state: State,
    /// A mark signal was seen since the last message (or error).
    armed: bool,
}

impl Default for FrameAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameAssembler {
    /// An assembler hunting for a message.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            state: State::Hunting,
            armed: false,
        }
    }

    /// True while inside a message.
    #[must_use]
    pub fn in_message(&self) -> bool {
        self.state != State::Hunting
    }

    /// Forgets any partial message (and the mark signal).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.state = State::Hunting;
        self.armed = false;
    }

    /// The demodulator saw a mark signal: a message may follow.
    pub fn mark_signal(&mut self) {
        if self.state == State::Hunting {
            self.armed = true;
        }
    }

    /// Feeds one byte; returns a result when a message is complete (decoded, or why not).
    pub fn push(&mut self, byte: u8) -> Option<Result<Message, CidError>> {
        match self.state {
            State::Hunting => {
                if self.armed
                    && matches!(byte, TYPE_SDMF | TYPE_SDMF_MWI | TYPE_MDMF | TYPE_MDMF_MWI)
                {
                    self.buf.clear();
                    // One byte always fits.
                    let _ = self.buf.push(byte);
                    self.state = State::Length;
                }
                None
            }
            State::Length => {
                let _ = self.buf.push(byte);
                self.state = State::Body {
                    remaining: usize::from(byte) + 1,
                };
                None
            }
            State::Body { remaining } => {
                // type + length + ≤255 body + checksum = 258 = capacity: never full here.
                let _ = self.buf.push(byte);
                if remaining > 1 {
                    self.state = State::Body {
                        remaining: remaining - 1,
                    };
                    return None;
                }
                self.state = State::Hunting;
                self.armed = false;
                let result = super::decode(&self.buf).map(|(m, _)| m);
                self.buf.clear();
                Some(result)
            }
        }
    }

    /// A byte was lost to a framing error.
    pub fn framing_error(&mut self) -> Option<CidError> {
        if self.in_message() {
            self.reset();
            Some(CidError::Framing)
        } else {
            None
        }
    }

    /// The carrier ended.
    pub fn carrier_lost(&mut self) -> Option<CidError> {
        if self.in_message() {
            self.reset();
            Some(CidError::Incomplete)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::{CallerId, Layout, encode};

    #[test]
    fn skips_seizure_and_decodes() {
        let msg = Message::CallerId(CallerId::new("0123", Some("X")));
        let bytes = encode(&msg, Layout::Mdmf).expect("encodes");
        let mut a = FrameAssembler::new();
        let mut out = None;
        // Before the mark signal even a message-type byte is ignored.
        assert_eq!(a.push(0x80), None);
        assert!(!a.in_message());
        for b in [0x55, 0x55, 0xD5] {
            assert_eq!(a.push(b), None);
        }
        a.mark_signal();
        for b in bytes.iter() {
            if let Some(r) = a.push(*b) {
                out = Some(r);
            }
        }
        assert_eq!(out, Some(Ok(msg)));
        assert!(!a.in_message());
    }

    #[test]
    fn framing_and_carrier_loss_inside_a_message() {
        let mut a = FrameAssembler::new();
        assert_eq!(a.framing_error(), None);
        a.mark_signal();
        a.push(0x80);
        a.push(0x10);
        assert_eq!(a.carrier_lost(), Some(CidError::Incomplete));
        a.mark_signal();
        a.push(0x04);
        assert_eq!(a.framing_error(), Some(CidError::Framing));
        assert!(!a.in_message());
    }
}
