//! A test rig: the simulated board with both ports, driven in 5 ms steps of simulated time,
//! audio in 20 ms frames, events collected with their times.
#![allow(dead_code, unreachable_pub)]

pub mod cid_suite;
#[cfg(feature = "spandsp-compare")]
pub mod spandsp;

use flowgate_analog::Millis;
use flowgate_analog::line::LineEvent;
use flowgate_analog::port::{AnalogPort, FRAME};
use flowgate_analog::sim::{AnalogSimControl, ExchangeConfig, SimBoard, SimFxoPort, SimFxsPort};

pub struct Rig {
    pub board: SimBoard,
    pub ctl: AnalogSimControl,
    pub fxs: SimFxsPort,
    pub fxo: SimFxoPort,
    pub now: Millis,
    pub fxs_events: Vec<(Millis, LineEvent)>,
    pub fxo_events: Vec<(Millis, LineEvent)>,
    from_phone: Vec<i16>,
    from_exchange: Vec<i16>,
    /// Bridge the two ports' call audio (FXS caller ↔ FXO line) when both are connected.
    pub bridge: bool,
    /// Audio the FXS port delivered to the call (connected frames).
    pub fxs_call_audio: Vec<i16>,
    /// Audio the FXO port delivered to the call.
    pub fxo_call_audio: Vec<i16>,
}

impl Rig {
    pub fn new(exchange: ExchangeConfig) -> Rig {
        let board = SimBoard::new(exchange).expect("board");
        let fxs = board.default_fxs_port().expect("fxs port");
        let fxo = board.default_fxo_port().expect("fxo port");
        Self::with_ports(board, fxs, fxo)
    }

    pub fn with_ports(board: SimBoard, mut fxs: SimFxsPort, mut fxo: SimFxoPort) -> Rig {
        let ctl = board.control();
        fxs.start(0).expect("FXS starts on the simulated Si3215");
        fxo.start(0).expect("FXO starts on the simulated Si3050");
        // Initialisation advanced the simulated clock through the drivers' delays.
        let now = board.clock().now().div_ceil(20) * 20;
        Rig {
            board,
            ctl,
            fxs,
            fxo,
            now,
            fxs_events: Vec::new(),
            fxo_events: Vec::new(),
            from_phone: vec![0; FRAME],
            from_exchange: vec![0; FRAME],
            bridge: false,
            fxs_call_audio: Vec::new(),
            fxo_call_audio: Vec::new(),
        }
    }

    pub fn step(&mut self, ms: Millis) {
        let end = self.now + ms;
        while self.now < end {
            self.now += 5;
            let now = self.now;
            self.board.advance_to(now);
            self.fxs.poll(now).expect("fxs poll");
            self.fxo.poll(now).expect("fxo poll");
            if now.is_multiple_of(20) {
                self.frame(now);
            }
            while let Some(e) = self.fxs.next_event() {
                self.fxs_events.push((now, e));
            }
            while let Some(e) = self.fxo.next_event() {
                self.fxo_events.push((now, e));
            }
        }
    }

    fn frame(&mut self, now: Millis) {
        let mut to_phone = vec![0i16; FRAME];
        let mut to_exchange = vec![0i16; FRAME];
        let (fxs_in, fxo_in) = (self.from_phone.clone(), self.from_exchange.clone());
        let bridge_to_fxs = if self.bridge {
            Some(fxo_in.as_slice())
        } else {
            None
        };
        let fxs_connected = self.fxs.audio(now, &fxs_in, &mut to_phone, bridge_to_fxs);
        // As the line runner does: only a connected port's audio goes to the call (a held
        // phone's does not).
        let bridge_to_fxo = if self.bridge && fxs_connected {
            Some(fxs_in.as_slice())
        } else {
            None
        };
        let fxo_connected = self
            .fxo
            .audio(now, &fxo_in, &mut to_exchange, bridge_to_fxo);
        if fxs_connected {
            self.fxs_call_audio.extend_from_slice(&fxs_in);
        }
        if fxo_connected {
            self.fxo_call_audio.extend_from_slice(&fxo_in);
        }
        self.from_phone = self.board.fxs_frame(&to_phone);
        self.from_exchange = self.board.fxo_frame(&to_exchange);
    }

    /// Steps until `f` matches an FXS event (returns it), at most `limit` ms.
    pub fn until_fxs(
        &mut self,
        limit: Millis,
        f: impl Fn(&LineEvent) -> bool,
    ) -> (Millis, LineEvent) {
        let start = self.fxs_events.len();
        let end = self.now + limit;
        while self.now < end {
            self.step(5);
            if let Some(e) = self.fxs_events[start..].iter().find(|(_, e)| f(e)) {
                return e.clone();
            }
        }
        panic!(
            "no matching FXS event within {limit} ms; events: {:?}",
            self.fxs_events
        );
    }

    pub fn until_fxo(
        &mut self,
        limit: Millis,
        f: impl Fn(&LineEvent) -> bool,
    ) -> (Millis, LineEvent) {
        let start = self.fxo_events.len();
        let end = self.now + limit;
        while self.now < end {
            self.step(5);
            if let Some(e) = self.fxo_events[start..].iter().find(|(_, e)| f(e)) {
                return e.clone();
            }
        }
        panic!(
            "no matching FXO event within {limit} ms; events: {:?}",
            self.fxo_events
        );
    }
}

/// `n` ms of a sine at `hz`, amplitude 8000.
pub fn sine(hz: f64, ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| {
            let v = (std::f64::consts::TAU * hz * i as f64 / 8000.0).sin() * 8000.0;
            #[expect(clippy::cast_possible_truncation, reason = "|v| ≤ 8000")]
            let s = v as i16;
            s
        })
        .collect()
}

/// Power of `hz` in `x` relative to the total (Goertzel).
pub fn tone_fraction(x: &[i16], hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / 8000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut total = 0.0;
    for &v in x {
        let v = f64::from(v);
        total += v * v;
        let s = v + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - c * s1 * s2;
    if total == 0.0 {
        0.0
    } else {
        p * 2.0 / x.len() as f64 / total
    }
}
