//! Voice calls (27.007 §6-7, 22.083, 24.091): dialling (`ATD…;`), answering (`ATA`), hanging
//! up (`ATH`, `+CHUP`, Quectel `+QHUP`), hold, swap, release and explicit call transfer
//! (`+CHLD`), the call list (`+CLCC`), caller id and ring format (`+CLIP`, `+CRC`), call
//! waiting (`+CCWA`), `ATH` behaviour (`+CVHU`), supplementary service notifications (`+CSSN`),
//! and the call-state URCs of each dialect: Quectel `+QIND: "ccinfo"` and `^DSCI`, Huawei
//! `^ORIG/^CONF/^CONN/^CEND`, SIMCom unsolicited `+CLCC`, `VOICE CALL:` and `MISSED_CALL:`.
//!
//! The far end is the control handle and the dial policy; its actions arrive as timers
//! ([`fire`]) or control operations (`incoming_call`, `remote_*`).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::commands::{Cmd, Models, Reply, Spec};
use super::line::Op;
use super::{Out, Scheduled, SimCore, audio, line_out, network, toa};
use crate::modem::at::types::{CallStat, Direction};
use crate::simulator::dialect::CallUrcs;
use crate::simulator::{DialOutcome, SimulatorError, SimulatorEvent};

/// A call as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulatedCallRecord {
    /// Simulator-unique id.
    pub id: u64,
    /// Direction as seen by the modem.
    pub direction: Direction,
    /// The other party.
    pub number: String,
    /// Whether it was ever active.
    pub answered: bool,
    /// Who or what ended it (`gateway`, `remote`, `busy`, `no-answer`, `rejected`,
    /// `transferred`, `reboot`), if ended.
    pub ended_by: Option<String>,
    /// The call this one was joined to by an explicit call transfer (`AT+CHLD=4`).
    #[serde(default)]
    pub transferred_with: Option<u64>,
}

#[derive(Debug, Clone)]
struct SimCall {
    id: u64,
    index: u8,
    dir: Direction,
    state: CallStat,
    number: String,
    started: Instant,
}

/// Call URC switches (a reboot resets them).
#[derive(Debug, Clone, Default)]
struct CallUrcSettings {
    clip: bool,
    crc: bool,
    /// SIMCom `AT+CLCC=1`.
    clcc: bool,
    /// Quectel `AT^DSCI=1`.
    dsci: bool,
    /// `+CCWA` presentation.
    ccwa: bool,
    /// `+CVHU` mode: 1 makes `ATH` leave voice calls alone.
    cvhu: u8,
    cssn: (u8, u8),
}

/// The calls family's state.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    list: Vec<SimCall>,
    next_id: u64,
    urc: CallUrcSettings,
    /// Every call so far.
    pub(crate) log: Vec<SimulatedCallRecord>,
    /// Numbers the gateway dialled.
    pub(crate) dialled: Vec<String>,
}

impl Calls {
    /// Current calls as (id, direction, state, number).
    pub(crate) fn current(&self) -> Vec<(u64, Direction, CallStat, String)> {
        self.list
            .iter()
            .map(|c| (c.id, c.dir, c.state, c.number.clone()))
            .collect()
    }

    /// A call is active (audio and DTMF can flow).
    pub(super) fn any_active(&self) -> bool {
        self.list.iter().any(|c| c.state == CallStat::Active)
    }

    /// The call numbered `index` (as `+CLCC` numbers it) is active.
    pub(super) fn is_active_index(&self, index: u8) -> bool {
        self.list
            .iter()
            .any(|c| c.index == index && c.state == CallStat::Active)
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn free_index(&self) -> u8 {
        (1..=7u8)
            .find(|i| !self.list.iter().any(|c| c.index == *i))
            .unwrap_or(7)
    }

    fn pos(&self, id: u64) -> Option<usize> {
        self.list.iter().position(|c| c.id == id)
    }

    /// Ids of the calls in one of `states`.
    fn ids_in(&self, states: &[CallStat]) -> Vec<u64> {
        self.list
            .iter()
            .filter(|c| states.contains(&c.state))
            .map(|c| c.id)
            .collect()
    }

    fn record(&mut self, id: u64) -> Option<&mut SimulatedCallRecord> {
        self.log.iter_mut().find(|r| r.id == id)
    }
}

/// A reboot drops every call and the URC switches.
pub(super) fn reboot(c: &mut SimCore) {
    for call in std::mem::take(&mut c.calls.list) {
        if let Some(r) = c.calls.record(call.id) {
            r.ended_by = Some("reboot".to_owned());
        }
    }
    c.calls.urc = CallUrcSettings::default();
}

/// `+CPAS` activity: 4 a call in progress, 3 only ringing, 0 idle.
pub(super) fn activity(c: &SimCore) -> u8 {
    if c.calls.list.iter().any(|x| {
        matches!(
            x.state,
            CallStat::Active | CallStat::Held | CallStat::Dialing | CallStat::Alerting
        )
    }) {
        4
    } else if c.calls.list.is_empty() {
        0
    } else {
        3
    }
}

const QUECTEL: Models = Models::QUECTEL;

pub(super) const COMMANDS: &[Spec] = &[
    Spec::sim("D", dial),
    Spec::all("A", answer),
    Spec::all("H", hangup),
    Spec::all("+CHUP", chup),
    Spec::only("+QHUP", QUECTEL, qhup),
    Spec::all("+CHLD", chld_cmd),
    Spec::all("+CLCC", clcc),
    Spec::all("+CLIP", clip),
    Spec::all("+CRC", crc),
    Spec::all("+CCWA", ccwa),
    Spec::all("+CVHU", cvhu),
    Spec::all("+CSSN", cssn),
    Spec::only("^DSCI", QUECTEL, dsci),
];

fn stat_code(s: CallStat) -> i8 {
    match s {
        CallStat::Active => 0,
        CallStat::Held => 1,
        CallStat::Dialing => 2,
        CallStat::Alerting => 3,
        CallStat::Incoming => 4,
        CallStat::Waiting => 5,
        CallStat::Released => -1,
    }
}

fn dir_code(d: Direction) -> u8 {
    match d {
        Direction::Outgoing => 0,
        Direction::Incoming => 1,
    }
}

/// A 0/1 switch command: `+X?` → `+X: <n>`, `+X=?` → `+X: (0,1)`, `+X=<n>`.
fn switch(cmd: &Cmd<'_>, now: bool, set: impl FnOnce(bool)) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("{}: {}", cmd.name, u8::from(now))),
        Op::Test => Reply::line(format!("{}: (0,1)", cmd.name)),
        Op::Set => match cmd.args.int::<u8>(0, "n") {
            Ok(v @ 0..=1) => {
                set(v == 1);
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

fn clip(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    if cmd.op == Op::Read {
        // <m> 1: CLIP provisioned by the network.
        return Reply::line(format!("+CLIP: {},1", u8::from(c.calls.urc.clip)));
    }
    let now = c.calls.urc.clip;
    switch(cmd, now, |v| c.calls.urc.clip = v)
}

fn crc(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let now = c.calls.urc.crc;
    switch(cmd, now, |v| c.calls.urc.crc = v)
}

fn dsci(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let now = c.calls.urc.dsci;
    switch(cmd, now, |v| c.calls.urc.dsci = v)
}

/// `+CCWA=<n>[,<mode>[,<class>]]`: `<n>` presents waiting calls; mode 2 asks the network
/// (call waiting is active for voice here).
fn ccwa(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Set => {
            let n = cmd.args.opt_int::<u8>(0, "n");
            let mode = cmd.args.opt_int::<u8>(1, "mode");
            match (n, mode) {
                (Ok(n @ (None | Some(0..=1))), Ok(mode @ (None | Some(0..=2)))) => {
                    if let Some(n) = n {
                        c.calls.urc.ccwa = n == 1;
                    }
                    if mode == Some(2) {
                        Reply::line("+CCWA: 1,1")
                    } else {
                        Reply::ok()
                    }
                }
                _ => Reply::error(),
            }
        }
        _ => {
            let now = c.calls.urc.ccwa;
            switch(cmd, now, |_| {})
        }
    }
}

fn cvhu(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+CVHU: {}", c.calls.urc.cvhu)),
        Op::Test => Reply::line("+CVHU: (0-1)"),
        Op::Set => match cmd.args.int::<u8>(0, "mode") {
            Ok(m @ 0..=1) => {
                c.calls.urc.cvhu = m;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// `+CSSN=<n>[,<m>]`: stored and reported; the simulated network sends no supplementary
/// service notifications.
fn cssn(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!(
            "+CSSN: {},{}",
            c.calls.urc.cssn.0, c.calls.urc.cssn.1
        )),
        Op::Test => Reply::line("+CSSN: (0,1),(0,1)"),
        Op::Set => {
            let n = cmd.args.int::<u8>(0, "n");
            let m = cmd.args.opt_int::<u8>(1, "m");
            match (n, m) {
                (Ok(n @ 0..=1), Ok(m @ (None | Some(0..=1)))) => {
                    c.calls.urc.cssn = (n, m.unwrap_or(c.calls.urc.cssn.1));
                    Reply::ok()
                }
                _ => Reply::error(),
            }
        }
        Op::Exec => Reply::error(),
    }
}

fn clcc(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let simcom = c.d.calls == CallUrcs::Clcc;
    match cmd.op {
        Op::Exec => Reply::lines(c.calls.list.iter().map(|x| {
            format!(
                "+CLCC: {},{},{},0,0,\"{}\",{}",
                x.index,
                dir_code(x.dir),
                stat_code(x.state),
                x.number,
                toa(&x.number)
            )
        })),
        Op::Test => Reply::ok(),
        // SIM7600: `AT+CLCC=<n>` reports the list unsolicited on every change.
        Op::Read if simcom => Reply::line(format!("+CLCC: {}", u8::from(c.calls.urc.clcc))),
        Op::Set if simcom => match cmd.args.int::<u8>(0, "n") {
            Ok(v @ 0..=1) => {
                c.calls.urc.clcc = v == 1;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        _ => Reply::error(),
    }
}

/// State URCs for a call entering `state` (the dialect's call reporting).
fn state_urcs(c: &SimCore, call: &SimCall, state: CallStat, cc: u16) -> Vec<Out> {
    let mut out = Vec::new();
    match c.d.calls {
        CallUrcs::Ccinfo => {
            if c.net.qind.on(c.net.qind.ccinfo) {
                out.push(line_out(&format!(
                    "+QIND: \"ccinfo\",{},{},{},0,0,\"{}\",{}",
                    call.index,
                    dir_code(call.dir),
                    stat_code(state),
                    call.number,
                    toa(&call.number)
                )));
            }
            if c.calls.urc.dsci {
                // chan_quectel: ^DSCI stat 6 is "released".
                let st = if state == CallStat::Released {
                    6
                } else {
                    stat_code(state)
                };
                out.push(line_out(&format!(
                    "^DSCI: {},{},{st},0,\"{}\",{}",
                    call.index,
                    dir_code(call.dir),
                    call.number,
                    toa(&call.number)
                )));
            }
        }
        CallUrcs::Clcc => {
            if c.calls.urc.clcc {
                let st = if state == CallStat::Released {
                    6
                } else {
                    stat_code(state)
                };
                out.push(line_out(&format!(
                    "+CLCC: {},{},{st},0,0,\"{}\",{}",
                    call.index,
                    dir_code(call.dir),
                    call.number,
                    toa(&call.number)
                )));
            }
        }
        CallUrcs::Huawei => {
            let line = match state {
                CallStat::Dialing => Some(format!("^ORIG:{},0", call.index)),
                CallStat::Alerting => Some(format!("^CONF:{}", call.index)),
                CallStat::Active => Some(format!("^CONN:{},0", call.index)),
                CallStat::Released => {
                    let secs = call.started.elapsed().as_secs();
                    Some(format!("^CEND:{},{secs},104,{cc}", call.index))
                }
                _ => None,
            };
            if let Some(l) = line {
                out.push(line_out(&l));
            }
        }
    }
    out
}

fn set_state(c: &mut SimCore, id: u64, state: CallStat) -> Vec<Out> {
    let Some(call) = c.calls.pos(id).and_then(|i| c.calls.list.get_mut(i)) else {
        return Vec::new();
    };
    // A held call taken back was answered long ago.
    let answering = state == CallStat::Active && call.state != CallStat::Held;
    call.state = state;
    let call = call.clone();
    let mut out = state_urcs(c, &call, state, 0);
    if answering {
        if let Some(r) = c.calls.record(id) {
            r.answered = true;
        }
        if c.d.calls == CallUrcs::Clcc {
            out.push(line_out("VOICE CALL: BEGIN"));
        }
    }
    out.extend(audio::update(c));
    c.emit(SimulatorEvent::CallState { call: id, state });
    out
}

/// Ends a call: `text` is the call-progress line (`NO CARRIER`, `BUSY`, `NO ANSWER`) sent before
/// the state URC, `cc` the cause Huawei puts in `^CEND`.
fn end(c: &mut SimCore, id: u64, text: Option<&str>, cc: u16, by: &str) -> Vec<Out> {
    let Some(i) = c.calls.pos(id) else {
        return Vec::new();
    };
    let call = c.calls.list.remove(i);
    let mut out = Vec::new();
    if c.d.calls != CallUrcs::Huawei
        && let Some(t) = text
    {
        if c.d.calls == CallUrcs::Clcc && call.state == CallStat::Active {
            let secs = call.started.elapsed().as_secs();
            out.push(line_out(&format!("VOICE CALL: END: {secs:06}")));
        }
        out.push(line_out(t));
    }
    if c.d.calls == CallUrcs::Clcc && call.state == CallStat::Incoming && by == "remote" {
        out.push(line_out(&format!("MISSED_CALL: 12:00AM {}", call.number)));
    }
    out.extend(state_urcs(c, &call, CallStat::Released, cc));
    if let Some(r) = c.calls.record(id) {
        r.ended_by = Some(by.to_owned());
    }
    if c.d.calls == CallUrcs::Huawei {
        // ^DDSETEX routes one call's audio.
        c.audio.routed = false;
    }
    c.emit(SimulatorEvent::CallEnded {
        call: id,
        by: by.to_owned(),
    });
    out.extend(audio::update(c));
    out
}

/// `ATD<number>;` — a voice call (without the `;` a data call, which a voice-only simulation
/// answers `NO CARRIER`).
fn dial(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let rest = cmd.raw.trim();
    let number: String = rest.trim_end_matches(';').trim().to_owned();
    if number.is_empty() || !rest.ends_with(';') {
        return Reply::text("NO CARRIER");
    }
    if !network::registered(c) {
        return Reply::text("NO CARRIER");
    }
    // One call set-up at a time; a ringing incoming call must be answered or rejected.
    if c.calls.list.iter().any(|x| {
        matches!(
            x.state,
            CallStat::Dialing | CallStat::Alerting | CallStat::Incoming | CallStat::Waiting
        )
    }) {
        return Reply::cme(3);
    }
    // Dialling with a call in progress puts that call on hold first (22.083).
    let mut held = Vec::new();
    for id in c.calls.ids_in(&[CallStat::Active]) {
        held.extend(set_state(c, id, CallStat::Held));
    }
    c.calls.dialled.push(number.clone());
    c.emit(SimulatorEvent::Dialled {
        number: number.clone(),
    });
    let id = c.calls.new_id();
    let call = SimCall {
        id,
        index: c.calls.free_index(),
        dir: Direction::Outgoing,
        state: CallStat::Dialing,
        number: number.clone(),
        started: Instant::now(),
    };
    c.calls.log.push(SimulatedCallRecord {
        id,
        direction: Direction::Outgoing,
        number: number.clone(),
        answered: false,
        ended_by: None,
        transferred_with: None,
    });
    let mut after = state_urcs(c, &call, CallStat::Dialing, 0);
    c.calls.list.push(call);
    let ms = Duration::from_millis;
    match c.cfg.dial.outcome_for(&number) {
        DialOutcome::Answer { ring_ms } => {
            after.push(Out::Schedule(ms(ring_ms / 2), Scheduled::Alert(id)));
            after.push(Out::Schedule(ms(ring_ms), Scheduled::Answer(id)));
        }
        DialOutcome::Busy { after_ms } => {
            after.push(Out::Schedule(ms(after_ms), Scheduled::Busy(id)));
        }
        DialOutcome::NoAnswer { after_ms } => {
            after.push(Out::Schedule(ms(after_ms / 2), Scheduled::Alert(id)));
            after.push(Out::Schedule(ms(after_ms), Scheduled::NoAnswer(id)));
        }
        DialOutcome::Manual => after.push(Out::Schedule(ms(0), Scheduled::Alert(id))),
    }
    Reply::ok().before(held).then(after)
}

/// `ATA` answers the ringing call (a waiting call is taken with `AT+CHLD=2`).
fn answer(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    if cmd.op != Op::Exec {
        return Reply::error();
    }
    let Some(id) = c
        .calls
        .list
        .iter()
        .find(|x| x.dir == Direction::Incoming && x.state == CallStat::Incoming)
        .map(|x| x.id)
    else {
        return Reply::text("NO CARRIER");
    };
    c.emit(SimulatorEvent::Answered { call: id });
    let after = set_state(c, id, CallStat::Active);
    Reply::ok().then(after)
}

/// `ATH`: ends the calls (with `+CVHU=1` voice calls stay, as 27.007 §6.20 says).
fn hangup(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    if cmd.basic_value() != Some(0) {
        return Reply::error();
    }
    if c.calls.urc.cvhu == 1 {
        return Reply::ok();
    }
    local_hangup(c, None)
}

fn chup(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Exec => local_hangup(c, None),
        Op::Test => Reply::ok(),
        _ => Reply::error(),
    }
}

/// Quectel `AT+QHUP=<cause>[,<idx>]`.
fn qhup(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::line("+QHUP: (1-127),(1-7)"),
        Op::Set => match (
            cmd.args.int::<u8>(0, "cause"),
            cmd.args.opt_int::<u8>(1, "idx"),
        ) {
            (Ok(1..=127), Ok(idx)) => local_hangup(c, idx),
            _ => Reply::error(),
        },
        _ => Reply::error(),
    }
}

fn local_hangup(c: &mut SimCore, index: Option<u8>) -> Reply {
    let ids: Vec<u64> = c
        .calls
        .list
        .iter()
        .filter(|x| index.is_none_or(|i| x.index == i))
        .map(|x| x.id)
        .collect();
    let mut after = Vec::new();
    for id in ids {
        after.extend(end(c, id, None, 16, "gateway"));
    }
    Reply::ok().then(after)
}

fn chld_cmd(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::line("+CHLD: (0,1,1x,2,2x,4)"),
        Op::Set => {
            let v = cmd.args.text(0, "n").unwrap_or("").trim().to_owned();
            chld(c, &v)
        }
        _ => Reply::error(),
    }
}

/// `AT+CHLD=<n>` (27.007 §7.13, 22.030 §6.5.5): 0 releases held calls (or rejects a waiting
/// one), 1 releases active calls and takes the other one, 1x releases call x, 2 holds the
/// active calls and takes the held or waiting one (a swap), 2x keeps only call x active, 4 is
/// explicit call transfer. Conferences (3) are not simulated (`+CME ERROR: 4`).
fn chld(c: &mut SimCore, v: &str) -> Reply {
    let setup = c.calls.ids_in(&[CallStat::Dialing, CallStat::Alerting]);
    let ringing = c.calls.ids_in(&[CallStat::Incoming, CallStat::Waiting]);
    let active = c.calls.ids_in(&[CallStat::Active]);
    let held = c.calls.ids_in(&[CallStat::Held]);
    match v {
        "0" => {
            let (targets, by) = if held.is_empty() {
                (ringing, "rejected")
            } else {
                (held, "gateway")
            };
            if targets.is_empty() {
                return Reply::cme(3);
            }
            let mut after = Vec::new();
            for id in targets {
                after.extend(end(c, id, None, 16, by));
            }
            Reply::ok().then(after)
        }
        "1" => {
            let mut after = Vec::new();
            for id in active {
                after.extend(end(c, id, None, 16, "gateway"));
            }
            if let Some(&id) = ringing.first().or(held.first()) {
                after.extend(take_call(c, id));
            }
            Reply::ok().then(after)
        }
        "2" => {
            // A held call cannot be taken back while another call is being set up.
            if !setup.is_empty() || (active.is_empty() && held.is_empty() && ringing.is_empty()) {
                return Reply::cme(3);
            }
            let mut after = Vec::new();
            for id in active {
                after.extend(set_state(c, id, CallStat::Held));
            }
            if let Some(&id) = ringing.first().or(held.first()) {
                after.extend(take_call(c, id));
            }
            Reply::ok().then(after)
        }
        "4" => ect(c, &setup, &active, &held),
        _ => match (v.strip_prefix('1'), v.strip_prefix('2')) {
            (Some(x), _) if !x.is_empty() => match x.parse::<u8>() {
                Ok(idx) => local_hangup(c, Some(idx)),
                Err(_) => Reply::cme(3),
            },
            (_, Some(x)) if !x.is_empty() => {
                let Some(id) = x
                    .parse::<u8>()
                    .ok()
                    .and_then(|idx| c.calls.list.iter().find(|x| x.index == idx))
                    .filter(|x| matches!(x.state, CallStat::Active | CallStat::Held))
                    .map(|x| x.id)
                else {
                    return Reply::cme(3);
                };
                if !setup.is_empty() {
                    return Reply::cme(3);
                }
                let mut after = Vec::new();
                for other in active.into_iter().filter(|a| *a != id) {
                    after.extend(set_state(c, other, CallStat::Held));
                }
                if held.contains(&id) {
                    after.extend(set_state(c, id, CallStat::Active));
                }
                Reply::ok().then(after)
            }
            _ => Reply::cme(4),
        },
    }
}

/// Makes a held or ringing call the active one.
fn take_call(c: &mut SimCore, id: u64) -> Vec<Out> {
    if c.calls
        .list
        .iter()
        .any(|x| x.id == id && matches!(x.state, CallStat::Incoming | CallStat::Waiting))
    {
        c.emit(SimulatorEvent::Answered { call: id });
    }
    set_state(c, id, CallStat::Active)
}

/// `AT+CHLD=4`: explicit call transfer (24.091). The network joins the held call to the other
/// one when that one is active or alerting, and both leave this modem.
fn ect(c: &mut SimCore, setup: &[u64], active: &[u64], held: &[u64]) -> Reply {
    let alerting: Vec<u64> = setup
        .iter()
        .copied()
        .filter(|id| {
            c.calls
                .list
                .iter()
                .any(|x| x.id == *id && x.state == CallStat::Alerting)
        })
        .collect();
    let other = match (active, alerting.as_slice()) {
        ([a], []) | ([], [a]) => *a,
        _ => return Reply::cme(3),
    };
    let ([held], 2) = (held, c.calls.list.len()) else {
        return Reply::cme(3);
    };
    let held = *held;
    if c.faults.ect_refused {
        return Reply::cme(3);
    }
    let mut after = Vec::new();
    for (id, with) in [(held, other), (other, held)] {
        if let Some(r) = c.calls.record(id) {
            r.transferred_with = Some(with);
        }
        after.extend(end(c, id, None, 16, "transferred"));
    }
    Reply::ok().then(after)
}

/// A call timer fired.
pub(super) fn fire(c: &mut SimCore, action: Scheduled) -> Vec<Out> {
    let state = |c: &SimCore, id: u64| c.calls.list.iter().find(|x| x.id == id).map(|x| x.state);
    match action {
        Scheduled::Alert(id) if state(c, id) == Some(CallStat::Dialing) => {
            set_state(c, id, CallStat::Alerting)
        }
        Scheduled::Answer(id)
            if matches!(state(c, id), Some(CallStat::Dialing | CallStat::Alerting)) =>
        {
            set_state(c, id, CallStat::Active)
        }
        Scheduled::Busy(id) => end(c, id, Some("BUSY"), 17, "busy"),
        Scheduled::NoAnswer(id) => end(c, id, Some("NO ANSWER"), 19, "no-answer"),
        Scheduled::Ring(id) if state(c, id) == Some(CallStat::Incoming) => {
            let Some(call) = c.calls.list.iter().find(|x| x.id == id).cloned() else {
                return Vec::new();
            };
            let mut out = ring_urcs(c, &call);
            if let Some(every) = c.cfg.ring_interval_ms {
                out.push(Out::Schedule(
                    Duration::from_millis(every),
                    Scheduled::Ring(id),
                ));
            }
            out
        }
        _ => Vec::new(),
    }
}

fn ring_urcs(c: &SimCore, call: &SimCall) -> Vec<Out> {
    let mut out = vec![line_out(if c.calls.urc.crc {
        "+CRING: VOICE"
    } else {
        "RING"
    })];
    if c.calls.urc.clip {
        out.push(line_out(&format!(
            "+CLIP: \"{}\",{},,,,0",
            call.number,
            toa(&call.number)
        )));
    }
    out
}

// ------------------------------------------------------------------ control

/// An incoming call from `number`: it rings (`RING`/`+CRING` and `+CLIP`), or, with another
/// call in progress, waits (`+CCWA` when presented).
pub(crate) fn incoming_call(c: &mut SimCore, number: &str) -> Result<Vec<Out>, SimulatorError> {
    if number.is_empty() || number.len() > 32 {
        return Err(SimulatorError::Invalid(format!(
            "`{number}` is not a caller number"
        )));
    }
    if c.calls.list.len() >= 7 {
        return Err(SimulatorError::Invalid("too many calls".to_owned()));
    }
    let busy = c
        .calls
        .list
        .iter()
        .any(|x| matches!(x.state, CallStat::Active | CallStat::Held));
    let state = if busy {
        CallStat::Waiting
    } else {
        CallStat::Incoming
    };
    let id = c.calls.new_id();
    let call = SimCall {
        id,
        index: c.calls.free_index(),
        dir: Direction::Incoming,
        state,
        number: number.to_owned(),
        started: Instant::now(),
    };
    c.calls.log.push(SimulatedCallRecord {
        id,
        direction: Direction::Incoming,
        number: number.to_owned(),
        answered: false,
        ended_by: None,
        transferred_with: None,
    });
    let mut out = state_urcs(c, &call, state, 0);
    if busy {
        if c.calls.urc.ccwa {
            out.push(line_out(&format!(
                "+CCWA: \"{}\",{},1",
                call.number,
                toa(&call.number)
            )));
        }
    } else {
        out.extend(ring_urcs(c, &call));
        if let Some(every) = c.cfg.ring_interval_ms {
            out.push(Out::Schedule(
                Duration::from_millis(every),
                Scheduled::Ring(id),
            ));
        }
    }
    c.calls.list.push(call);
    c.emit(SimulatorEvent::IncomingCall {
        call: id,
        number: number.to_owned(),
    });
    Ok(out)
}

/// The far end of call `id` hangs up (a ringing call stops ringing). `NO CARRIER` tells the
/// gateway unless other calls go on (then only the state URCs say which call ended).
fn remote_end(c: &mut SimCore, id: u64) -> Vec<Out> {
    let ringing = c
        .calls
        .list
        .iter()
        .any(|x| x.id == id && matches!(x.state, CallStat::Incoming | CallStat::Waiting));
    let alone = c.calls.list.len() == 1;
    let text = (!ringing || alone).then_some("NO CARRIER");
    end(c, id, text, 16, "remote")
}

/// The far end hangs up the most recent call.
pub(crate) fn remote_hangup(c: &mut SimCore) -> Result<Vec<Out>, SimulatorError> {
    let id = c
        .calls
        .list
        .last()
        .map(|x| x.id)
        .ok_or(SimulatorError::NoCall)?;
    Ok(remote_end(c, id))
}

/// The far end of the most recent call hangs up while a command is on its way
/// ([`super::faults::FaultAction::FarEndLeaves`]): no `NO CARRIER` of its own (the
/// command's final result says it), only the state URCs, which follow the reply.
pub(crate) fn far_end_leaves(c: &mut SimCore) -> Vec<Out> {
    match c.calls.list.last().map(|x| x.id) {
        Some(id) => end(c, id, None, 16, "remote"),
        None => Vec::new(),
    }
}

/// The far end of call `id` hangs up.
pub(crate) fn remote_hangup_call(c: &mut SimCore, id: u64) -> Result<Vec<Out>, SimulatorError> {
    if c.calls.pos(id).is_none() {
        return Err(SimulatorError::NoCall);
    }
    Ok(remote_end(c, id))
}

fn outgoing(c: &SimCore) -> Result<u64, SimulatorError> {
    c.calls
        .list
        .iter()
        .find(|x| {
            x.dir == Direction::Outgoing
                && matches!(x.state, CallStat::Dialing | CallStat::Alerting)
        })
        .map(|x| x.id)
        .ok_or(SimulatorError::NoCall)
}

/// The far end answers the outgoing call.
pub(crate) fn remote_answer(c: &mut SimCore) -> Result<Vec<Out>, SimulatorError> {
    let id = outgoing(c)?;
    Ok(set_state(c, id, CallStat::Active))
}

/// The far end is busy.
pub(crate) fn remote_busy(c: &mut SimCore) -> Result<Vec<Out>, SimulatorError> {
    let id = outgoing(c)?;
    Ok(end(c, id, Some("BUSY"), 17, "busy"))
}

/// The far end does not answer.
pub(crate) fn remote_no_answer(c: &mut SimCore) -> Result<Vec<Out>, SimulatorError> {
    let id = outgoing(c)?;
    Ok(end(c, id, Some("NO ANSWER"), 19, "no-answer"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{core, run, text};
    use super::*;
    use crate::simulator::SimulatedModel;

    fn states(c: &SimCore) -> Vec<(String, CallStat)> {
        let mut v: Vec<(String, CallStat)> = c
            .calls
            .current()
            .into_iter()
            .map(|(_, _, s, n)| (n, s))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn ok<T>(r: Result<T, SimulatorError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn hold_dial_swap_and_transfer() {
        let mut c = core(SimulatedModel::QuectelEc25);
        run(&mut c, "AT+QINDCFG=\"ccinfo\",1,0");
        assert!(
            run(&mut c, "AT+CHLD=2").contains("+CME ERROR: 3"),
            "no call"
        );
        ok(incoming_call(&mut c, "+1001"));
        assert!(run(&mut c, "ATA").contains("OK"));
        assert!(run(&mut c, "AT+CHLD=2").contains("OK"));
        assert_eq!(states(&c), vec![("+1001".into(), CallStat::Held)]);
        assert!(run(&mut c, "ATD+1002;").contains("OK"));
        // No retrieve while the second call is being set up; ECT needs it alerting.
        assert!(run(&mut c, "AT+CHLD=2").contains("+CME ERROR: 3"));
        assert!(run(&mut c, "AT+CHLD=4").contains("+CME ERROR: 3"));
        let b = ok(outgoing(&c));
        c.fire(Scheduled::Alert(b));
        ok(remote_answer(&mut c));
        assert_eq!(
            states(&c),
            vec![
                ("+1001".into(), CallStat::Held),
                ("+1002".into(), CallStat::Active)
            ]
        );
        // Swap, refused transfer, swap back.
        assert!(run(&mut c, "AT+CHLD=2").contains("OK"));
        assert_eq!(
            states(&c),
            vec![
                ("+1001".into(), CallStat::Active),
                ("+1002".into(), CallStat::Held)
            ]
        );
        c.faults.ect_refused = true;
        assert!(run(&mut c, "AT+CHLD=4").contains("+CME ERROR: 3"));
        assert_eq!(c.calls.current().len(), 2);
        c.faults.ect_refused = false;
        let r = run(&mut c, "AT+CHLD=4");
        assert!(r.starts_with("\r\nOK\r\n"), "{r:?}");
        assert_eq!(r.matches("\"ccinfo\"").count(), 2, "both released: {r:?}");
        assert!(c.calls.current().is_empty());
        let ids: Vec<u64> = c.calls.log.iter().map(|r| r.id).collect();
        for (r, other) in c.calls.log.iter().zip(ids.iter().rev()) {
            assert_eq!(r.ended_by.as_deref(), Some("transferred"));
            assert_eq!(r.transferred_with, Some(*other));
        }
    }

    #[test]
    fn dial_holds_the_active_call_and_chld_releases() {
        let mut c = core(SimulatedModel::Sim7600);
        run(&mut c, "AT+CLCC=1");
        ok(incoming_call(&mut c, "+2001"));
        assert!(
            run(&mut c, "ATD+2002;").contains("+CME ERROR: 3"),
            "ringing"
        );
        run(&mut c, "ATA");
        let r = run(&mut c, "ATD+2002;");
        assert!(
            r.contains("+CLCC: 1,1,1,"),
            "the active call is held first: {r:?}"
        );
        let b = ok(outgoing(&c));
        c.fire(Scheduled::Answer(b));
        // 1: release the active call, take the held one back.
        assert!(run(&mut c, "AT+CHLD=1").contains("OK"));
        assert_eq!(states(&c), vec![("+2001".into(), CallStat::Active)]);
        // 0 with nothing held or waiting is refused; 1x releases by index.
        assert!(run(&mut c, "AT+CHLD=0").contains("+CME ERROR: 3"));
        assert!(run(&mut c, "AT+CHLD=11").contains("OK"));
        assert!(c.calls.current().is_empty());
        assert!(run(&mut c, "AT+CHLD=3").contains("+CME ERROR: 4"));
        assert!(run(&mut c, "AT+CHLD=?").contains("+CHLD: (0,1,1x,2,2x,4)"));
    }

    #[test]
    fn a_caller_giving_up_while_it_rings_is_reported() {
        // Quectel without ccinfo: NO CARRIER is all a plain 27.007 client gets.
        let mut q = core(SimulatedModel::QuectelEc25);
        run(&mut q, "AT+CLIP=1");
        let r = text(&ok(incoming_call(&mut q, "+3001")));
        assert!(r.contains("\r\nRING\r\n") && r.contains("+CLIP: \"+3001\",145,,,,0"));
        assert_eq!(text(&ok(remote_hangup(&mut q))), "\r\nNO CARRIER\r\n");
        // SIMCom adds MISSED_CALL; Huawei reports ^CEND.
        let mut s = core(SimulatedModel::Sim7600);
        ok(incoming_call(&mut s, "+3002"));
        let r = text(&ok(remote_hangup(&mut s)));
        assert!(
            r.contains("NO CARRIER") && r.contains("MISSED_CALL: 12:00AM +3002"),
            "{r:?}"
        );
        let mut h = core(SimulatedModel::HuaweiE1550);
        ok(incoming_call(&mut h, "+3003"));
        let r = text(&ok(remote_hangup(&mut h)));
        assert!(r.starts_with("\r\n^CEND:1,"), "{r:?}");
    }

    #[test]
    fn a_second_caller_waits() {
        let mut c = core(SimulatedModel::QuectelEc25);
        run(&mut c, "AT+CCWA=1");
        ok(incoming_call(&mut c, "+4001"));
        run(&mut c, "ATA");
        let r = text(&ok(incoming_call(&mut c, "+4002")));
        assert_eq!(r, "\r\n+CCWA: \"+4002\",145,1\r\n");
        assert!(run(&mut c, "AT+CLCC").contains("+CLCC: 2,1,5,0,0,\"+4002\",145"));
        assert!(run(&mut c, "AT+CPAS").contains("+CPAS: 4"));
        // The waiting caller gives up: the active call goes on, no NO CARRIER.
        let id = c.calls.current()[1].0;
        assert_eq!(text(&ok(remote_hangup_call(&mut c, id))), "");
        assert_eq!(states(&c), vec![("+4001".into(), CallStat::Active)]);
    }

    #[test]
    fn ath_follows_cvhu_and_dsci_reports() {
        let mut c = core(SimulatedModel::QuectelEc25);
        run(&mut c, "AT^DSCI=1");
        run(&mut c, "AT+CVHU=1");
        ok(incoming_call(&mut c, "+5001"));
        let r = run(&mut c, "ATA");
        assert!(r.contains("^DSCI: 1,1,0,0,\"+5001\",145"), "{r:?}");
        assert_eq!(run(&mut c, "ATH"), "\r\nOK\r\n");
        assert_eq!(c.calls.current().len(), 1, "ATH ignored for voice");
        run(&mut c, "AT+CVHU=0");
        let r = run(&mut c, "ATH");
        assert!(r.contains("^DSCI: 1,1,6,0,\"+5001\",145"), "{r:?}");
        assert!(c.calls.current().is_empty());
        assert!(run(&mut c, "AT+CLIP?").contains("+CLIP: 0,1"));
        assert!(run(&mut c, "AT+CRC=?").contains("+CRC: (0,1)"));
        assert!(run(&mut c, "AT+CVHU?").contains("+CVHU: 0"));
        assert!(run(&mut c, "AT+CLCC=1").contains("ERROR"), "SIMCom only");
    }
}
