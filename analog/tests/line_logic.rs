//! The line state machines with time as an input: ring cadences and caller-ID windows on FXS,
//! dial-tone timers, ring counting, caller-ID attachment, answering and disconnect supervision
//! on FXO. No chips, no audio: samples, digits and commands at chosen times.

use flowgate_analog::Millis;
use flowgate_analog::cid::{CallerId, Layout};
use flowgate_analog::line::fxo::{FxoAudio, FxoCommand, FxoConfig, FxoLine, FxoOutput};
use flowgate_analog::line::fxs::{
    CidMode, Feed, FxsAudio, FxsCommand, FxsConfig, FxsLine, FxsOutput,
};
use flowgate_analog::line::{Digits, Disconnect, EndReason, LineEvent, Tone};
use flowgate_analog::si3050::LineSample;

fn fxs(cadence: &[u16], cid: CidMode) -> FxsLine {
    let mut c = FxsConfig::default();
    c.ring_cadence.clear();
    c.ring_cadence.extend_from_slice(cadence).expect("fits");
    c.cid = cid;
    FxsLine::new(c)
}

/// Runs the FXS line on-hook from `from` to `to` in 5 ms steps; reports audio completion
/// `cid_ms` after each caller-ID burst starts. Returns the outputs with their times.
fn run_fxs(
    line: &mut FxsLine,
    from: Millis,
    to: Millis,
    cid_ms: Millis,
) -> Vec<(Millis, FxsOutput)> {
    let mut out = Vec::new();
    let mut cid_done_at = None;
    let mut t = from;
    while t <= to {
        line.hook_sample(false, t);
        if cid_done_at.is_some_and(|d| t >= d) {
            cid_done_at = None;
            line.audio_done(t);
        }
        while let Some(o) = line.pop() {
            if matches!(o, FxsOutput::Audio(FxsAudio::CallerId { .. })) {
                cid_done_at = Some(t + cid_ms);
            }
            out.push((t, o));
        }
        t += 5;
    }
    out
}

fn feeds(out: &[(Millis, FxsOutput)]) -> Vec<(Millis, Feed)> {
    out.iter()
        .filter_map(|(t, o)| match o {
            FxsOutput::Feed(f) => Some((*t, *f)),
            _ => None,
        })
        .collect()
}

#[test]
fn uk_double_ring_with_caller_id_in_the_long_pause() {
    let mut line = fxs(&[400, 200, 400, 2000], CidMode::Bell(Layout::Mdmf));
    line.command(
        FxsCommand::Ring {
            caller: Some(CallerId::new("0201234", None)),
        },
        0,
    )
    .expect("ring");
    let out = run_fxs(&mut line, 0, 6000, 700);
    let f = feeds(&out);
    let oht = Feed::OnHookTransmission { reversed: false };
    assert_eq!(
        f,
        vec![
            (0, Feed::Ringing),
            (400, Feed::Active),
            (600, Feed::Ringing),
            (1000, Feed::Active),
            // 500 ms after the double ring, caller ID in on-hook transmission…
            (1500, oht),
            (2200, Feed::Active),
            // …and the next double ring keeps the 2 s pause of the cadence.
            (3000, Feed::Ringing),
            (3400, Feed::Active),
            (3600, Feed::Ringing),
            (4000, Feed::Active),
            (6000, Feed::Ringing),
        ]
    );
}

#[test]
fn caller_id_longer_than_the_pause_delays_the_next_ring() {
    let mut line = fxs(&[1000, 1000], CidMode::EtsiAfterRing(Layout::Etsi));
    line.command(
        FxsCommand::Ring {
            caller: Some(CallerId::new("1", None)),
        },
        0,
    )
    .expect("ring");
    let out = run_fxs(&mut line, 0, 4000, 1200);
    let f = feeds(&out);
    // Caller ID 1500…2700, then the 300 ms guard: the second ring waits until 3000.
    assert_eq!(f[2], (1500, Feed::OnHookTransmission { reversed: false }));
    assert_eq!(f[3], (2700, Feed::Active));
    assert_eq!(f[4], (3000, Feed::Ringing));
}

#[test]
fn etsi_pre_ring_reverses_sends_then_rings() {
    let mut line = fxs(&[1000, 4000], CidMode::EtsiPreRing(Layout::Etsi));
    line.command(
        FxsCommand::Ring {
            caller: Some(CallerId::new("123", Some("A"))),
        },
        0,
    )
    .expect("ring");
    let out = run_fxs(&mut line, 0, 3000, 800);
    let f = feeds(&out);
    assert_eq!(
        f[..4],
        [
            (0, Feed::Reversed),
            (500, Feed::OnHookTransmission { reversed: true }),
            (1300, Feed::Active),
            (1600, Feed::Ringing),
        ]
    );
    // Without caller ID the ring starts at once.
    let mut line = fxs(&[1000, 4000], CidMode::EtsiPreRing(Layout::Etsi));
    line.command(FxsCommand::Ring { caller: None }, 0)
        .expect("ring");
    assert_eq!(
        feeds(&run_fxs(&mut line, 0, 100, 0)),
        vec![(0, Feed::Ringing)]
    );
}

#[test]
fn receiver_left_off_hook_goes_reorder_howler_permanent_signal() {
    let mut line = FxsLine::new(FxsConfig::default());
    let mut t = 0;
    let mut events = Vec::new();
    let mut audio = Vec::new();
    while t <= 90_000 {
        line.hook_sample(true, t);
        while let Some(o) = line.pop() {
            match o {
                FxsOutput::Event(e) => events.push((t, e)),
                FxsOutput::Audio(a) => audio.push((t, a)),
                FxsOutput::Feed(_) => {}
            }
        }
        t += 10;
    }
    assert_eq!(
        audio,
        vec![
            (10, FxsAudio::Tone(Tone::Dial)),
            (15_010, FxsAudio::Tone(Tone::Congestion)),
            (45_010, FxsAudio::Tone(Tone::Howler)),
            (85_010, FxsAudio::Silence),
        ]
    );
    assert_eq!(
        events,
        vec![
            (10, LineEvent::OffHook),
            (
                15_010,
                LineEvent::Ended {
                    reason: EndReason::NoRoute,
                    answered: false
                }
            ),
            (85_010, LineEvent::PermanentSignal),
        ]
    );
    assert!(
        line.command(FxsCommand::Ring { caller: None }, t).is_err(),
        "busy while off-hook"
    );
}

#[test]
fn interdigit_timeout_routes_and_digits_in_a_call_are_pulses_only() {
    let mut line = FxsLine::new(FxsConfig::default());
    line.hook_sample(true, 0);
    line.hook_sample(true, 20);
    line.dtmf('7', 100);
    line.dtmf('2', 300);
    let mut t = 300;
    let mut dialled = None;
    while t < 5000 && dialled.is_none() {
        t += 10;
        line.poll(t);
        while let Some(o) = line.pop() {
            if let FxsOutput::Event(e @ LineEvent::Dialled { .. }) = o {
                dialled = Some((t, e));
            }
        }
    }
    let (when, e) = dialled.expect("routed");
    assert_eq!(when, 4300);
    assert!(matches!(e, LineEvent::Dialled { digits, .. } if digits == "72"));
    line.command(FxsCommand::Answer, t).expect("answer");
    // DTMF during a call is the media layer's; the line ignores it.
    line.dtmf('5', t + 10);
    while let Some(o) = line.pop() {
        assert!(!matches!(o, FxsOutput::Event(LineEvent::Digit { .. })));
    }
}

fn sample(v: i8, current: u8, ring: Option<bool>) -> LineSample {
    LineSample {
        ring_positive: ring == Some(true),
        ring_negative: ring == Some(false),
        line_voltage: v,
        loop_current_raw: current,
    }
}

/// Feeds the FXO line a 20 Hz ring for `on` ms then `off` ms of battery, in 5 ms steps.
fn ring_burst(
    line: &mut FxoLine,
    t: &mut Millis,
    on: Millis,
    off: Millis,
    out: &mut Vec<(Millis, FxoOutput)>,
) {
    let start = *t;
    while *t < start + on + off {
        let ring = if *t < start + on {
            let p = (*t - start) % 50;
            if p < 20 {
                Some(true)
            } else if (25..45).contains(&p) {
                Some(false)
            } else {
                None
            }
        } else {
            None
        };
        line.sample(&sample(48, 0, ring), *t);
        while let Some(o) = line.pop() {
            out.push((*t, o));
        }
        *t += 5;
    }
}

fn events(out: &[(Millis, FxoOutput)]) -> Vec<(Millis, LineEvent)> {
    out.iter()
        .filter_map(|(t, o)| match o {
            FxoOutput::Event(e) => Some((*t, e.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn fxo_attaches_pre_ring_caller_id_only_while_fresh() {
    let mut line = FxoLine::new(FxoConfig::default());
    let mut out = Vec::new();
    let mut t = 0;
    line.caller_id(CallerId::new("555", None), 0);
    ring_burst(&mut line, &mut t, 2000, 4000, &mut out);
    let e = events(&out);
    assert!(
        matches!(&e[0].1, LineEvent::Incoming { caller: Some(c), rings: 1 } if c.number.as_deref() == Some("555")),
        "{e:?}"
    );

    // Caller ID older than 6 s is not this call's.
    let mut line = FxoLine::new(FxoConfig::default());
    let mut out = Vec::new();
    line.sample(&sample(48, 0, None), 0);
    line.caller_id(CallerId::new("555", None), 0);
    let mut t = 7000;
    ring_burst(&mut line, &mut t, 2000, 4000, &mut out);
    ring_burst(&mut line, &mut t, 2000, 100, &mut out);
    let e = events(&out);
    // Announced at the second ring, without caller ID.
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(matches!(&e[0], (t, LineEvent::Incoming { caller: None, rings: 2 }) if *t > 13_000));
}

#[test]
fn fxo_bell_caller_id_between_rings_then_auto_answer_and_ring_timeout() {
    let config = FxoConfig {
        auto_answer_rings: Some(2),
        ..FxoConfig::default()
    };
    let mut line = FxoLine::new(config);
    let mut out = Vec::new();
    let mut t = 0;
    ring_burst(&mut line, &mut t, 2000, 1000, &mut out);
    assert!(events(&out).is_empty(), "waits for caller ID after ring 1");
    line.caller_id(CallerId::new("6095551212", None), t);
    ring_burst(&mut line, &mut t, 2000, 500, &mut out);
    let e = events(&out);
    assert!(
        matches!(
            &e[0].1,
            LineEvent::Incoming {
                caller: Some(_),
                rings: 1
            }
        ),
        "{e:?}"
    );
    assert_eq!(e[1].1, LineEvent::Ring { rings: 2 });
    assert_eq!(e[2].1, LineEvent::Answered);
    assert!(out.iter().any(|(_, o)| *o == FxoOutput::Hook(true)));
    assert!(
        out.iter()
            .any(|(_, o)| *o == FxoOutput::Audio(FxoAudio::Connected))
    );

    // Without answering, 8 s without a ring ends the call: the caller gave up.
    let mut line = FxoLine::new(FxoConfig::default());
    let mut out = Vec::new();
    let mut t = 0;
    ring_burst(&mut line, &mut t, 2000, 4000, &mut out);
    ring_burst(&mut line, &mut t, 2000, 9000, &mut out);
    let e = events(&out);
    assert!(
        matches!(
            e.last(),
            Some((
                _,
                LineEvent::Ended {
                    reason: EndReason::RingingStopped,
                    answered: false
                }
            ))
        ),
        "{e:?}"
    );
}

/// An answered outgoing call, then the line samples `f(t)` from `t0` for `ms`.
fn supervise(
    config: FxoConfig,
    ms: Millis,
    f: impl Fn(Millis) -> LineSample,
) -> Vec<(Millis, LineEvent)> {
    let mut line = FxoLine::new(config);
    line.sample(&sample(48, 0, None), 0);
    line.command(FxoCommand::Dial(Digits::try_from("1").expect("d")), 0)
        .expect("dial");
    let mut out = Vec::new();
    let mut t = 0;
    while t < 3000 {
        line.sample(&sample(8, 23, None), t);
        line.audio_activity(t);
        if line
            .pop()
            .is_some_and(|o| matches!(o, FxoOutput::Audio(FxoAudio::SendDtmf(_))))
        {
            line.audio_done(t);
        }
        t += 5;
    }
    let _ = std::iter::from_fn(|| line.pop()).count();
    let t0 = t;
    while t < t0 + ms {
        line.sample(&f(t - t0), t);
        line.audio_activity(t);
        while let Some(o) = line.pop() {
            out.push((t - t0, o));
        }
        t += 5;
    }
    events(&out)
}

#[test]
fn fxo_disconnect_supervision_timing() {
    // Loop current gone for 80 ms ends the call; 60 ms does not.
    let e = supervise(FxoConfig::default(), 1000, |t| {
        sample(8, if (100..160).contains(&t) { 0 } else { 23 }, None)
    });
    assert!(e.is_empty(), "{e:?}");
    let e = supervise(FxoConfig::default(), 1000, |t| {
        sample(8, if t >= 100 { 0 } else { 23 }, None)
    });
    assert_eq!(
        e,
        vec![(
            180,
            LineEvent::Ended {
                reason: EndReason::FarEnd(Disconnect::LoopCurrent),
                answered: true
            }
        )]
    );
    // A polarity glitch shorter than 64 ms is no reversal; a held one is.
    let e = supervise(FxoConfig::default(), 1000, |t| {
        sample(if (100..140).contains(&t) { -8 } else { 8 }, 23, None)
    });
    assert!(e.is_empty(), "{e:?}");
    let e = supervise(FxoConfig::default(), 1000, |t| {
        sample(if t >= 100 { -8 } else { 8 }, 23, None)
    });
    assert_eq!(
        e,
        vec![(
            165,
            LineEvent::Ended {
                reason: EndReason::FarEnd(Disconnect::BatteryReversal),
                answered: true
            }
        )]
    );
    // Answer supervision by reversal: the first reversal answers, the second clears.
    let config = FxoConfig {
        answer_on_polarity: true,
        ..FxoConfig::default()
    };
    let e = supervise(config, 3000, |t| {
        sample(if (100..2000).contains(&t) { -8 } else { 8 }, 23, None)
    });
    assert_eq!(
        e,
        vec![
            (165, LineEvent::Answered),
            (
                2065,
                LineEvent::Ended {
                    reason: EndReason::FarEnd(Disconnect::BatteryReversal),
                    answered: true
                }
            )
        ]
    );
}

#[test]
fn fxo_silence_timeout() {
    let mut config = FxoConfig::default();
    config.supervision.silence_timeout_ms = Some(10_000);
    let mut line = FxoLine::new(config);
    line.sample(&sample(48, 0, None), 0);
    line.command(FxoCommand::Dial(Digits::try_from("1").expect("d")), 0)
        .expect("dial");
    let mut t = 0;
    let mut ended = None;
    while t < 20_000 && ended.is_none() {
        line.sample(&sample(8, 23, None), t);
        while let Some(o) = line.pop() {
            match o {
                FxoOutput::Audio(FxoAudio::SendDtmf(_)) => line.audio_done(t),
                FxoOutput::Event(e @ LineEvent::Ended { .. }) => ended = Some((t, e)),
                _ => {}
            }
        }
        t += 5;
    }
    let (when, e) = ended.expect("ended");
    assert_eq!(
        e,
        LineEvent::Ended {
            reason: EndReason::FarEnd(Disconnect::Silence),
            answered: true
        }
    );
    // Dialled at 2 s (no dial tone heard), connected then; 10 s of silence after that.
    assert_eq!(when, 12_000);
}

/// Drives an FXS phone through time in 5 ms steps with a scripted hook, collecting events.
struct Phone {
    line: FxsLine,
    t: Millis,
    off_hook: bool,
    events: Vec<LineEvent>,
}

impl Phone {
    fn new() -> Self {
        let c = FxsConfig {
            dial_plan: flowgate_analog::line::dialplan::DialPlan::with_extensions(["201", "202"])
                .expect("plan"),
            ..FxsConfig::default()
        };
        Self {
            line: FxsLine::new(c),
            t: 0,
            off_hook: false,
            events: Vec::new(),
        }
    }

    fn run(&mut self, ms: Millis) {
        let end = self.t + ms;
        while self.t < end {
            self.t += 5;
            self.line.hook_sample(self.off_hook, self.t);
            while let Some(o) = self.line.pop() {
                if let FxsOutput::Event(e) = o {
                    self.events.push(e);
                }
            }
        }
    }

    fn hook(&mut self, off: bool, ms: Millis) {
        self.off_hook = off;
        self.run(ms);
    }

    fn flash(&mut self) {
        self.hook(false, 400);
        self.hook(true, 200);
    }

    fn dial(&mut self, digits: &str) {
        for d in digits.chars() {
            self.line.dtmf(d, self.t);
            self.run(100);
        }
    }

    fn command(&mut self, c: FxsCommand) {
        self.line.command(c, self.t).expect("command");
        self.run(5);
    }

    fn take(&mut self) -> Vec<LineEvent> {
        std::mem::take(&mut self.events)
    }

    /// A call the phone received and answered, in progress.
    fn in_answered_call() -> Self {
        let mut p = Self::new();
        p.command(FxsCommand::Ring { caller: None });
        p.hook(true, 100);
        assert_eq!(p.take(), vec![LineEvent::Answered]);
        p
    }
}

#[test]
fn flash_dial_and_hang_up_transfers_the_held_call() {
    let mut p = Phone::in_answered_call();
    p.flash();
    assert_eq!(p.take(), vec![LineEvent::Flash { held: true }]);
    p.dial("202");
    let e = p.take();
    assert!(
        matches!(&e[..], [LineEvent::Consult { digits, .. }] if digits == "202"),
        "{e:?}"
    );
    p.command(FxsCommand::Ringback);
    p.command(FxsCommand::Answer);
    // Digits now belong to the consultation call's audio; nothing for the line.
    p.hook(false, 1000);
    assert_eq!(
        p.take(),
        vec![
            LineEvent::Transfer { answered: true },
            LineEvent::ConsultEnded {
                reason: EndReason::Transferred,
                answered: true
            },
            LineEvent::Ended {
                reason: EndReason::Transferred,
                answered: true
            },
        ]
    );
    assert!(!p.line.in_call());
    // The port is free: it rings for the next call.
    p.command(FxsCommand::Ring { caller: None });
    assert!(p.line.ringing());
}

#[test]
fn hanging_up_while_the_consultation_rings_is_a_blind_transfer() {
    let mut p = Phone::in_answered_call();
    p.flash();
    p.dial("201");
    p.command(FxsCommand::Ringback);
    p.take();
    p.hook(false, 1000);
    assert_eq!(p.take()[0], LineEvent::Transfer { answered: false });
    assert!(!p.line.in_call());
}

#[test]
fn flash_during_the_consultation_goes_back_to_the_held_call() {
    let mut p = Phone::in_answered_call();
    p.flash();
    p.dial("202");
    p.command(FxsCommand::Answer);
    p.take();
    p.flash();
    assert_eq!(
        p.take(),
        vec![
            LineEvent::ConsultEnded {
                reason: EndReason::PhoneOnHook,
                answered: true
            },
            LineEvent::Flash { held: false },
        ]
    );
    assert!(!p.line.held() && p.line.in_call());
    // The consulted party hanging up first: busy, and a flash still takes the call back.
    p.flash();
    p.dial("201");
    p.command(FxsCommand::Answer);
    p.command(FxsCommand::HangupConsult { tone: Tone::Busy });
    assert!(p.line.held() && !p.line.consulting());
    p.flash();
    let e = p.take();
    assert_eq!(
        &e[e.len() - 2..],
        [
            LineEvent::ConsultEnded {
                reason: EndReason::Local,
                answered: true
            },
            LineEvent::Flash { held: false }
        ]
    );
}

#[test]
fn the_held_party_hanging_up_leaves_the_consultation_as_the_call() {
    let mut p = Phone::in_answered_call();
    p.flash();
    p.dial("202");
    p.command(FxsCommand::Answer);
    p.take();
    p.command(FxsCommand::Hangup { tone: Tone::Busy });
    assert_eq!(
        p.take(),
        vec![LineEvent::Ended {
            reason: EndReason::Local,
            answered: true
        }]
    );
    assert!(p.line.in_call() && !p.line.held());
    // Now it is a plain call: on-hook ends it.
    p.hook(false, 1000);
    assert_eq!(
        p.take(),
        vec![LineEvent::Ended {
            reason: EndReason::PhoneOnHook,
            answered: true
        }]
    );
}

#[test]
fn on_hook_while_held_rings_the_phone_back() {
    let mut p = Phone::in_answered_call();
    p.flash();
    p.take();
    p.hook(false, 1000);
    assert!(p.line.ringing() && p.line.in_call(), "recall");
    assert!(p.take().is_empty(), "the held call is not dropped");
    p.hook(true, 100);
    assert_eq!(p.take(), vec![LineEvent::Flash { held: false }]);
    assert!(!p.line.held());
    // Recall again; this time the held party gives up while the phone rings.
    p.flash();
    p.hook(false, 1000);
    p.take();
    p.command(FxsCommand::Hangup { tone: Tone::Busy });
    assert_eq!(
        p.take(),
        vec![LineEvent::Ended {
            reason: EndReason::Local,
            answered: true
        }]
    );
    assert!(!p.line.ringing() && !p.line.in_call());
}
