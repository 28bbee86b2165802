//! The SIM, identity and the network: `+CPIN`, `+CGMI/+CGMM/+CGMR/+CGSN/+CIMI`, the ICCID in
//! each vendor's spelling, `+CNUM`, registration (`+CREG`, `+CGREG`, `+CEREG`), `+CSQ`,
//! `+COPS`, `+CPAS`, and the vendor switches for status URCs (`+QINDCFG`, `+QURCCFG`, `^CURC`,
//! `+CNSMOD`, `+AUTOCSQ`).
//!
//! Registration and signal are configuration ([`SimulatorConfig`](crate::simulator::SimulatorConfig));
//! they change only when the gateway turns the radio off (`AT+CFUN=0/4`) or deregisters
//! (`AT+COPS=2`), which is reported with `+CREG`/`+CGREG`/`+CEREG` URCs when enabled.

use super::commands::{Cmd, Models, Reply, Spec};
use super::line::Op;
use super::{Out, SimCore, line_out, toa};

/// Quectel `AT+QINDCFG` URC switches (EC25 manual, "AT+QINDCFG").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QuectelUrcs {
    pub(super) all: bool,
    pub(super) csq: bool,
    pub(super) smsfull: bool,
    pub(super) ring: bool,
    pub(super) smsincoming: bool,
    pub(super) act: bool,
    pub(super) ccinfo: bool,
}

impl Default for QuectelUrcs {
    fn default() -> Self {
        Self {
            all: true,
            csq: false,
            smsfull: false,
            ring: true,
            smsincoming: true,
            act: false,
            ccinfo: false,
        }
    }
}

const QIND_TYPES: [&str; 7] = [
    "all",
    "csq",
    "smsfull",
    "ring",
    "smsincoming",
    "act",
    "ccinfo",
];

impl QuectelUrcs {
    fn get_mut(&mut self, kind: &str) -> Option<&mut bool> {
        Some(match kind {
            "all" => &mut self.all,
            "csq" => &mut self.csq,
            "smsfull" => &mut self.smsfull,
            "ring" => &mut self.ring,
            "smsincoming" => &mut self.smsincoming,
            "act" => &mut self.act,
            "ccinfo" => &mut self.ccinfo,
            _ => return None,
        })
    }

    /// URCs of `kind` are enabled (and the `"all"` master switch is on).
    pub(super) fn on(&self, kind: bool) -> bool {
        self.all && kind
    }
}

/// Settings of this family (reset by a reboot, except the SIM's lock which locks again).
#[derive(Debug, Clone)]
pub(super) struct Network {
    pub(super) sim_unlocked: bool,
    creg: u8,
    cgreg: u8,
    cereg: u8,
    /// `AT+COPS=3,<format>`: 0 long name, 1 short name, 2 numeric.
    cops_format: u8,
    /// `AT+COPS=2`: deregistered until `AT+COPS=0/1`.
    deregistered: bool,
    pub(super) qind: QuectelUrcs,
    curc: u8,
    cnsmod: u8,
    autocsq: (u8, u8),
}

impl Network {
    pub(super) fn boot(pin: bool) -> Self {
        Self {
            sim_unlocked: !pin,
            creg: 0,
            cgreg: 0,
            cereg: 0,
            cops_format: 0,
            deregistered: false,
            qind: QuectelUrcs::default(),
            curc: 1,
            cnsmod: 0,
            autocsq: (0, 0),
        }
    }
}

const QUECTEL: Models = Models::QUECTEL;
const HUAWEI: Models = Models::HUAWEI;
const SIMCOM: Models = Models::SIMCOM;
const LTE: Models = Models::QUECTEL.or(Models::SIMCOM);

pub(super) const COMMANDS: &[Spec] = &[
    Spec::all("+CPIN", cpin),
    Spec::all("+CGMI", cgmi),
    Spec::all("+CGMM", cgmm),
    Spec::all("+CGMR", cgmr),
    Spec::all("+CGSN", cgsn),
    Spec::sim("+CIMI", cimi),
    Spec {
        name: "+QCCID",
        models: QUECTEL,
        sim: true,
        run: iccid,
    },
    Spec {
        name: "+CCID",
        models: QUECTEL.or(SIMCOM),
        sim: true,
        run: iccid,
    },
    Spec {
        name: "^ICCID",
        models: HUAWEI,
        sim: true,
        run: iccid,
    },
    Spec {
        name: "+CICCID",
        models: SIMCOM,
        sim: true,
        run: iccid,
    },
    Spec::sim("+CNUM", cnum),
    Spec::all("+CREG", creg),
    Spec::all("+CGREG", creg),
    Spec::only("+CEREG", LTE, creg),
    Spec::all("+CSQ", csq),
    Spec::all("+COPS", cops),
    Spec::all("+CPAS", cpas),
    Spec::only("+QINDCFG", QUECTEL, qindcfg),
    Spec::only("+QURCCFG", QUECTEL, qurccfg),
    Spec::only("^CURC", HUAWEI, curc),
    Spec::only("+CNSMOD", SIMCOM, cnsmod),
    Spec::only("+AUTOCSQ", SIMCOM, autocsq),
];

/// The answer of an action command without parameters (`+CGMI` and friends): the line, `OK`
/// to the test form (27.007 §5), `ERROR` otherwise.
fn action(cmd: &Cmd<'_>, line: impl FnOnce() -> String) -> Reply {
    match cmd.op {
        Op::Exec => Reply::line(line()),
        Op::Test => Reply::ok(),
        _ => Reply::error(),
    }
}

fn cpin(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => {
            if c.faults.sim_busy > 0 {
                c.faults.sim_busy -= 1;
                return Reply::cme(14);
            }
            let st = if c.net.sim_unlocked {
                "READY"
            } else {
                "SIM PIN"
            };
            Reply::line(format!("+CPIN: {st}"))
        }
        Op::Test => Reply::ok(),
        Op::Exec => Reply::error(),
        Op::Set => {
            if c.net.sim_unlocked {
                // 27.007 §8.3: a PIN when none is asked for is not allowed.
                return Reply::cme(3);
            }
            let given = cmd.args.opt_text(0).unwrap_or("");
            if c.cfg.pin.as_deref() == Some(given) {
                c.net.sim_unlocked = true;
                Reply::ok().then([line_out("+CPIN: READY")])
            } else {
                Reply::cme(16)
            }
        }
    }
}

fn cgmi(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let m = c.d.manufacturer;
    action(cmd, || m.to_owned())
}

fn cgmm(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let m = c.d.model;
    action(cmd, || m.to_owned())
}

fn cgmr(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    // EC25 manual (AT+CGMR): "Revision: <revision>"; Huawei and SIMCom print it bare.
    let r = if c.d.ati == crate::simulator::dialect::AtiStyle::Plain {
        format!("Revision: {}", c.d.revision)
    } else {
        c.d.revision.to_owned()
    };
    action(cmd, || r)
}

fn cgsn(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let imei = c.cfg.imei.clone();
    action(cmd, || imei)
}

fn cimi(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let imsi = c.cfg.imsi.clone();
    action(cmd, || imsi)
}

fn iccid(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    // Huawei reads it with `AT^ICCID?`, the others run `AT+QCCID`/`AT+CICCID`/`AT+CCID`.
    let wanted = if cmd.name == "^ICCID" {
        Op::Read
    } else {
        Op::Exec
    };
    if cmd.op == Op::Test {
        return Reply::ok();
    }
    if cmd.op != wanted {
        return Reply::error();
    }
    let prefix = if c
        .d
        .iccid_command
        .trim_start_matches("AT")
        .starts_with(cmd.name)
    {
        c.d.iccid_prefix
    } else {
        "+CCID: "
    };
    Reply::line(format!("{prefix}{}", c.cfg.iccid))
}

fn cnum(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let n = c.cfg.own_number.clone();
    action(cmd, || format!("+CNUM: \"\",\"{n}\",{}", toa(&n)))
}

/// The registration `<stat>` now: the configured one while the radio is on and registered.
fn stat(c: &SimCore) -> u8 {
    if c.general.radio_on() && !c.net.deregistered {
        c.cfg.registration
    } else {
        0
    }
}

/// Registered (home or roaming): calls and SMS can go out.
pub(super) fn registered(c: &SimCore) -> bool {
    matches!(stat(c), 1 | 5)
}

/// `+CREG`/`+CGREG`/`+CEREG` line for presentation `n` (the read form puts `n` first).
fn reg_line(c: &SimCore, name: &str, n: u8, read: bool) -> String {
    let st = stat(c);
    let registered = matches!(st, 1 | 5);
    let loc = if n >= 2 && registered {
        let act = if name == "+CEREG" || (c.d.lte && n >= 2) {
            ",7"
        } else {
            ""
        };
        format!(",\"4CA\",\"81DE445\"{act}")
    } else {
        String::new()
    };
    if read {
        format!("{name}: {n},{st}{loc}")
    } else {
        format!("{name}: {st}{loc}")
    }
}

fn creg(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let n = match cmd.name {
        "+CREG" => c.net.creg,
        "+CGREG" => c.net.cgreg,
        _ => c.net.cereg,
    };
    match cmd.op {
        Op::Read => Reply::line(reg_line(c, cmd.name, n, true)),
        Op::Test => Reply::line(format!("{}: (0-2)", cmd.name)),
        Op::Exec => Reply::error(),
        Op::Set => match cmd.args.int::<u8>(0, "n") {
            Ok(v @ 0..=2) => {
                match cmd.name {
                    "+CREG" => c.net.creg = v,
                    "+CGREG" => c.net.cgreg = v,
                    _ => c.net.cereg = v,
                }
                Reply::ok()
            }
            _ => Reply::error(),
        },
    }
}

/// The registration URCs enabled now (after the radio or the registration changed).
pub(super) fn registration_urcs(c: &SimCore) -> Vec<Out> {
    let mut out = Vec::new();
    let mut kinds = vec![("+CREG", c.net.creg), ("+CGREG", c.net.cgreg)];
    if c.d.lte {
        kinds.push(("+CEREG", c.net.cereg));
    }
    for (name, n) in kinds {
        if n >= 1 {
            out.push(line_out(&reg_line(c, name, n, false)));
        }
    }
    out
}

fn csq(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Exec => {
            let rssi = if stat(c) == 0 { 99 } else { c.cfg.rssi };
            Reply::line(format!("+CSQ: {rssi},99"))
        }
        Op::Test => Reply::line("+CSQ: (0-31,99),(0-7,99)"),
        _ => Reply::error(),
    }
}

/// The home network code: MCC and MNC, the first five digits of the IMSI (a three-digit MNC
/// for North American MCCs 310-316).
fn plmn(c: &SimCore) -> String {
    let digits: String = c.cfg.imsi.chars().filter(char::is_ascii_digit).collect();
    let len = if digits.get(..2) == Some("31") { 6 } else { 5 };
    digits.get(..len).unwrap_or(&digits).to_owned()
}

fn short_name(c: &SimCore) -> String {
    c.cfg.operator.chars().take(8).collect()
}

fn operator_in(c: &SimCore, format: u8) -> String {
    match format {
        1 => short_name(c),
        2 => plmn(c),
        _ => c.cfg.operator.clone(),
    }
}

fn cops(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    let act = if c.d.lte { 7 } else { 2 };
    match cmd.op {
        Op::Read => {
            if stat(c) == 0 {
                let mode = if c.net.deregistered { 2 } else { 0 };
                return Reply::line(format!("+COPS: {mode}"));
            }
            let f = c.net.cops_format;
            Reply::line(format!("+COPS: 0,{f},\"{}\",{act}", operator_in(c, f)))
        }
        Op::Test => Reply::line(format!(
            "+COPS: (2,\"{}\",\"{}\",\"{}\",{act}),,(0-4),(0-2)",
            c.cfg.operator,
            short_name(c),
            plmn(c)
        )),
        Op::Exec => Reply::error(),
        Op::Set => {
            let mode = cmd.args.int::<u8>(0, "mode");
            let format = cmd.args.opt_int::<u8>(1, "format");
            let (Ok(mode), Ok(format)) = (mode, format) else {
                return Reply::error();
            };
            if format.is_some_and(|f| f > 2) {
                return Reply::error();
            }
            match mode {
                0 | 2 | 3 => {}
                1 => {
                    // Manual selection: only the one network the SIM sees.
                    let f = format.unwrap_or(0);
                    let wanted = cmd.args.opt_text(2).unwrap_or("");
                    if wanted != operator_in(c, f) {
                        return Reply::cme(30);
                    }
                }
                _ => return Reply::error(),
            }
            if let Some(f) = format {
                c.net.cops_format = f;
            }
            let before = stat(c);
            match mode {
                0 | 1 => c.net.deregistered = false,
                2 => c.net.deregistered = true,
                _ => {}
            }
            let urcs = if stat(c) == before {
                Vec::new()
            } else {
                registration_urcs(c)
            };
            Reply::ok().then(urcs)
        }
    }
}

fn cpas(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Exec => Reply::line(format!("+CPAS: {}", super::calls::activity(c))),
        Op::Test => Reply::line("+CPAS: (0,3,4)"),
        _ => Reply::error(),
    }
}

fn qindcfg(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::lines(
            QIND_TYPES
                .iter()
                .map(|t| format!("+QINDCFG: \"{t}\",(0,1),(0,1)")),
        ),
        Op::Set => {
            let kind = cmd.args.opt_text(0).unwrap_or("").to_ascii_lowercase();
            let value = cmd.args.opt_int::<u8>(1, "enable");
            let Some(slot) = c.net.qind.get_mut(&kind) else {
                return Reply::cme(50);
            };
            match value {
                Ok(None) => {
                    let v = u8::from(*slot);
                    Reply::line(format!("+QINDCFG: \"{kind}\",{v}"))
                }
                Ok(Some(v @ 0..=1)) => {
                    *slot = v == 1;
                    Reply::ok()
                }
                _ => Reply::cme(50),
            }
        }
        _ => Reply::error(),
    }
}

/// Only the AT port exists in the simulator, so only `"usbat"` can carry the URCs.
fn qurccfg(_: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Test => Reply::line("+QURCCFG: \"urcport\",(\"usbat\",\"usbmodem\",\"uart1\")"),
        Op::Set => {
            if !cmd
                .args
                .opt_text(0)
                .is_some_and(|k| k.eq_ignore_ascii_case("urcport"))
            {
                return Reply::cme(50);
            }
            match cmd.args.opt_text(1) {
                None => Reply::line("+QURCCFG: \"urcport\",\"usbat\""),
                Some(p) if p.eq_ignore_ascii_case("usbat") => Reply::ok(),
                Some(_) => Reply::cme(4),
            }
        }
        _ => Reply::error(),
    }
}

/// `^CURC`: the periodic status URCs (`^RSSI`, `^MODE`…) — the simulator sends none, so both
/// values behave the same.
fn curc(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("^CURC: {}", c.net.curc)),
        Op::Test => Reply::line("^CURC: (0-1)"),
        Op::Set => match cmd.args.int::<u8>(0, "mode") {
            Ok(v @ 0..=1) => {
                c.net.curc = v;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// `+CNSMOD`: network system mode, 8 = LTE (SIM7600 manual, AT+CNSMOD).
fn cnsmod(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => {
            let mode = if stat(c) == 0 { 0 } else { 8 };
            Reply::line(format!("+CNSMOD: {},{mode}", c.net.cnsmod))
        }
        Op::Test => Reply::line("+CNSMOD: (0-1)"),
        Op::Set => match cmd.args.int::<u8>(0, "n") {
            Ok(v @ 0..=1) => {
                c.net.cnsmod = v;
                Reply::ok()
            }
            _ => Reply::error(),
        },
        Op::Exec => Reply::error(),
    }
}

/// `+AUTOCSQ=<auto>[,<mode>]`: mode 1 reports on change (the simulated signal never changes);
/// the periodic mode 0 (a `+CSQ` every 5 s) is not simulated and is refused.
fn autocsq(c: &mut SimCore, cmd: &Cmd<'_>) -> Reply {
    match cmd.op {
        Op::Read => Reply::line(format!("+AUTOCSQ: {},{}", c.net.autocsq.0, c.net.autocsq.1)),
        Op::Test => Reply::line("+AUTOCSQ: (0-1),(0-1)"),
        Op::Set => {
            let auto = cmd.args.int::<u8>(0, "auto");
            let mode = cmd.args.opt_int::<u8>(1, "mode");
            match (auto, mode) {
                (Ok(0), Ok(m @ (None | Some(0..=1)))) => {
                    c.net.autocsq = (0, m.unwrap_or(0));
                    Reply::ok()
                }
                (Ok(1), Ok(Some(1))) => {
                    c.net.autocsq = (1, 1);
                    Reply::ok()
                }
                (Ok(1), Ok(None | Some(0))) => Reply::cme(4),
                _ => Reply::error(),
            }
        }
        Op::Exec => Reply::error(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{core, run};
    use crate::simulator::SimulatedModel;

    #[test]
    fn read_and_test_forms_carry_their_information_line() {
        let mut c = core(SimulatedModel::QuectelEc25);
        for (cmd, want) in [
            ("AT+CREG=?", "+CREG: (0-2)"),
            ("AT+CREG?", "+CREG: 0,1"),
            ("AT+CEREG?", "+CEREG: 0,1"),
            ("AT+CSQ=?", "+CSQ: (0-31,99),(0-7,99)"),
            ("AT+CSQ", "+CSQ: 20,99"),
            ("AT+COPS?", "+COPS: 0,0,\"Flowgate Sim\",7"),
            (
                "AT+COPS=?",
                "+COPS: (2,\"Flowgate Sim\",\"Flowgate\",\"310260\",7),,(0-4),(0-2)",
            ),
            ("AT+CPAS", "+CPAS: 0"),
            ("AT+CNUM", "+CNUM: \"\",\"+15550001000\",145"),
            ("AT+QCCID", "+QCCID: 89014103211118510720"),
            ("AT+QINDCFG=\"ccinfo\"", "+QINDCFG: \"ccinfo\",0"),
            ("AT+QURCCFG=\"urcport\"", "+QURCCFG: \"urcport\",\"usbat\""),
        ] {
            let r = run(&mut c, cmd);
            assert!(r.contains(&format!("\r\n{want}\r\n")), "{cmd}: {r:?}");
            assert!(r.ends_with("\r\nOK\r\n"), "{cmd}: {r:?}");
        }
        assert!(run(&mut c, "AT+CGMI=?").ends_with("\r\nOK\r\n"));
        assert!(
            run(&mut c, "AT^ICCID?").contains("ERROR"),
            "not a Quectel command"
        );
    }

    #[test]
    fn formats_registration_and_radio() {
        let mut c = core(SimulatedModel::QuectelEc25);
        run(&mut c, "AT+CREG=2");
        assert!(run(&mut c, "AT+CREG?").contains("+CREG: 2,1,\"4CA\",\"81DE445\",7"));
        run(&mut c, "AT+COPS=3,2");
        assert!(run(&mut c, "AT+COPS?").contains("+COPS: 0,2,\"310260\",7"));
        let r = run(&mut c, "AT+COPS=2");
        assert!(r.contains("\r\nOK\r\n\r\n+CREG: 0\r\n"), "{r:?}");
        assert!(run(&mut c, "AT+COPS?").contains("+COPS: 2"));
        assert!(run(&mut c, "AT+COPS=1,2,\"99999\"").contains("+CME ERROR: 30"));
        run(&mut c, "AT+COPS=0");
        run(&mut c, "AT+CFUN=4");
        assert!(run(&mut c, "AT+CSQ").contains("+CSQ: 99,99"));
        assert!(run(&mut c, "AT+CREG?").contains("+CREG: 2,0"));
        let mut h = core(SimulatedModel::HuaweiE1550);
        run(&mut h, "AT+CREG=2");
        assert!(run(&mut h, "AT+CREG?").contains("+CREG: 2,1,\"4CA\",\"81DE445\"\r\n"));
        assert!(run(&mut h, "AT^ICCID?").contains("^ICCID: 8901"));
    }

    #[test]
    fn pin() {
        let (events, _) = tokio::sync::broadcast::channel(16);
        let mut cfg = crate::simulator::SimulatorConfig::new(SimulatedModel::Sim7600);
        cfg.pin = Some("1234".to_owned());
        let mut c = super::SimCore::new(cfg, events);
        run(&mut c, "ATE0");
        run(&mut c, "AT+CMEE=1");
        assert!(run(&mut c, "AT+CPIN?").contains("+CPIN: SIM PIN"));
        assert!(run(&mut c, "AT+CIMI").contains("+CME ERROR: 11"));
        assert!(run(&mut c, "AT+CPIN=\"0000\"").contains("+CME ERROR: 16"));
        let r = run(&mut c, "AT+CPIN=\"1234\"");
        assert_eq!(r, "\r\nOK\r\n\r\n+CPIN: READY\r\n");
        assert!(run(&mut c, "AT+CIMI").contains("310260000000001"));
        assert!(run(&mut c, "AT+CPIN=\"1234\"").contains("+CME ERROR: 3"));
    }
}
