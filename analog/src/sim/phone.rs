//! A simulated analog telephone on the FXS port: lifts and replaces the handset, dials with
//! DTMF or pulses (10 pps, 60/40 ms, 700 ms between digits), hears what the port sends while
//! off-hook, rings while the linefeed rings, and shows caller ID it decodes from on-hook
//! transmission (with the same receivers a gateway FXO port uses).

use std::collections::VecDeque;

use flowgate_dsp::{DtmfGenConfig, DtmfGenerator};

use super::si3215::SimSi3215;
use crate::Millis;
use crate::cid::{CallerId, Message};
use crate::port::cid::{CidReceiver, CidReceiverConfig, CidResult};
use crate::si321x::regs::Linefeed;

/// Pulse dialling timing of the simulated phone.
const BREAK_MS: Millis = 60;
const MAKE_MS: Millis = 40;
const INTERDIGIT_MS: Millis = 700;

/// The telephone.
#[derive(Debug)]
pub struct SimPhone {
    off_hook: bool,
    schedule: VecDeque<(Millis, bool)>,
    mic: VecDeque<i16>,
    /// Microphone samples until the last queued DTMF key is over (hook actions wait for it).
    keys_pending: usize,
    heard: Vec<i16>,
    cid: CidReceiver,
    caller_ids: Vec<CallerId>,
    ringing_since: Option<Millis>,
    rings: Vec<(Millis, Millis)>,
}

impl Default for SimPhone {
    fn default() -> Self {
        Self::new()
    }
}

impl SimPhone {
    /// A phone on-hook.
    ///
    /// # Panics
    /// Never: the receivers are built at 8 kHz, which they support.
    #[must_use]
    pub fn new() -> Self {
        Self {
            off_hook: false,
            schedule: VecDeque::new(),
            mic: VecDeque::new(),
            keys_pending: 0,
            heard: Vec::new(),
            cid: CidReceiver::new(CidReceiverConfig::all(8000)).expect("8 kHz receiver"),
            caller_ids: Vec::new(),
            ringing_since: None,
            rings: Vec::new(),
        }
    }

    /// Off-hook now (debounced view of the simulation, including scheduled pulses).
    #[must_use]
    pub fn is_off_hook(&self) -> bool {
        self.off_hook
    }

    /// Schedules a hook change at `at`.
    pub fn schedule_hook(&mut self, at: Millis, off_hook: bool) {
        self.schedule.push_back((at, off_hook));
    }

    /// The time the last scheduled action happens (or `now`): the last hook change, or the
    /// end of the DTMF keys still queued (a hook flash or hang-up asked for while a key
    /// sounds comes after it, as a person's would; otherwise the rest of the key would sound
    /// after the handset is back).
    #[must_use]
    pub fn busy_until(&self, now: Millis) -> Millis {
        let keys = now + (self.keys_pending as Millis).div_ceil(8);
        self.schedule
            .back()
            .map_or(keys, |&(t, _)| t.max(now).max(keys))
    }

    /// Schedules pulse dialling of `digits` starting at `start`.
    pub fn schedule_pulses(&mut self, digits: &str, start: Millis) {
        let mut t = start;
        for d in digits.chars().filter_map(|c| c.to_digit(10)) {
            let n = if d == 0 { 10 } else { d };
            for _ in 0..n {
                self.schedule.push_back((t, false));
                t += BREAK_MS;
                self.schedule.push_back((t, true));
                t += MAKE_MS;
            }
            t += INTERDIGIT_MS;
        }
    }

    /// Queues DTMF digits into the microphone (100 ms on / 100 ms off).
    ///
    /// # Errors
    /// A character that is not a DTMF digit.
    pub fn queue_dtmf(&mut self, digits: &str) -> Result<(), String> {
        let mut g = DtmfGenerator::new(DtmfGenConfig::new(8000)).map_err(|e| e.to_string())?;
        g.queue(digits).map_err(|e| e.to_string())?;
        let n = usize::try_from(g.remaining_samples()).unwrap_or(0);
        let mut buf = vec![0i16; n + 800];
        g.fill(&mut buf);
        self.mic.extend(buf);
        self.keys_pending = self.mic.len();
        Ok(())
    }

    /// Queues audio into the microphone.
    pub fn say(&mut self, samples: &[i16]) {
        self.mic.extend(samples.iter().copied());
    }

    /// Applies due hook changes to the chip and watches the ringing.
    pub fn advance(&mut self, now: Millis, slic: &mut SimSi3215) {
        while let Some(&(t, off)) = self.schedule.front() {
            if t > now {
                break;
            }
            self.schedule.pop_front();
            if off != self.off_hook {
                self.off_hook = off;
                slic.hook_changed(off);
            }
        }
        let ringing = slic.linefeed_actual() == Linefeed::Ringing;
        match (ringing, self.ringing_since) {
            (true, None) => self.ringing_since = Some(now),
            (false, Some(s)) => {
                self.rings.push((s, now));
                self.ringing_since = None;
            }
            _ => {}
        }
    }

    /// One 20 ms frame: `to_line` is what the port sends; returns what the phone sends.
    pub fn frame(&mut self, slic: &SimSi3215, to_line: &[i16]) -> Vec<i16> {
        let lf = slic.linefeed_actual();
        let mut out = vec![0i16; to_line.len()];
        if self.off_hook && slic.loop_closed() {
            self.heard.extend_from_slice(to_line);
            for o in &mut out {
                match self.mic.pop_front() {
                    Some(s) => *o = s,
                    None => break,
                }
                self.keys_pending = self.keys_pending.saturating_sub(1);
            }
        } else if !self.off_hook && matches!(lf, Linefeed::OhtFwd | Linefeed::OhtRev) {
            let found = &mut self.caller_ids;
            self.cid.process(to_line, |r| {
                if let CidResult::Message(Message::CallerId(c)) = r {
                    found.push(c);
                }
            });
        }
        out
    }

    /// Audio heard while off-hook (taken: the buffer empties).
    pub fn take_heard(&mut self) -> Vec<i16> {
        std::mem::take(&mut self.heard)
    }

    /// Caller IDs the phone displayed.
    #[must_use]
    pub fn caller_ids(&self) -> &[CallerId] {
        &self.caller_ids
    }

    /// Completed ring bursts (start, end).
    #[must_use]
    pub fn rings(&self) -> &[(Millis, Millis)] {
        &self.rings
    }

    /// True while the bell rings.
    #[must_use]
    pub fn is_ringing(&self) -> bool {
        self.ringing_since.is_some()
    }

    /// Samples still queued in the microphone.
    #[must_use]
    pub fn mic_pending(&self) -> usize {
        self.mic.len()
    }
}
