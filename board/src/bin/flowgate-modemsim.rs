//! `flowgate-modemsim`: the simulated modem, standalone.
//!
//! Starts a simulated modem on a pseudo-terminal, prints the AT and PCM pty paths, and reads
//! control commands from stdin (one per line; `help` lists them). Point a gateway (or
//! `picocom`, `socat`) at the AT path as if it were `/dev/ttyUSB2`.

use std::path::PathBuf;
use std::time::Duration;

use flowgate_board::simulator::{
    DialOutcome, FaultAction, SimulatedModel, Simulator, SimulatorConfig, SimulatorControl,
    SimulatorEvent, UssdCoding, UssdScript,
};
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str = "\
flowgate-modemsim — a simulated GSM/LTE modem on a pseudo-terminal

USAGE:
    flowgate-modemsim [OPTIONS]

OPTIONS:
    --profile <ID>      quectel-ec25 (default), huawei-e1550, simcom-sim7600
    --link <PATH>       stable symlink to the AT pty (re-pointed if the port vanishes)
    --pcm-link <PATH>   stable symlink to the serial-PCM voice pty
    --number <MSISDN>   the SIM's own number (default +15550001000)
    --pin <PIN>         the SIM starts locked with this PIN
    --dial <OUTCOME>    what dialled numbers do: answer (default), busy, noanswer, manual
    --ring-ms <MS>      ring time before answer / no-answer (default 2000)
    --slots <N>         SMS storage slots (default 50)
    --verbose           print every AT line the gateway sends
    -h, --help          this text

OUTPUT:
    AT_PORT=<path> and PCM_PORT=<path> lines, then simulator events as they happen.

STDIN COMMANDS (one per line):
    sms <from> <text…>          an incoming SMS (multipart when long)
    pdu <hex>                   an incoming SMS as a raw PDU (SMSC field first)
    call <from>                 an incoming call
    hangup                      the far end hangs up (or stops ringing)
    answer | busy | noanswer    the far end of an outgoing call (with --dial manual)
    dtmf <digits>               the far end presses keys (needs an active call; reported
                                once the gateway enabled DTMF detection)
    ussd-reply <text>           reply to the next USSD request (GSM 7-bit)
    ussd-reply-ucs2 <text>      reply to the next USSD request (UCS2)
    ussd-notify <text>          a network-initiated USSD message now (shown after AT+CUSD=1)
    report <mr> <to> [status]   a status report (TP-ST, default 0 = delivered)
    tone <hz> <ms>              queue a caller tone on the voice port
    sent                        SMS the gateway sent (decoded, with MR)
    dialled                     numbers the gateway dialled
    dtmf-sent                   digits the gateway sent
    calls                       current calls
    stored                      stored SMS (index, stat, PDU)
    recorded                    samples the gateway sent on the voice port
    save-audio <path>           write them as raw 8 kHz s16le mono
    reboot                      reboot (RDY / ^BOOT; calls dropped, SMS kept)
    vanish <ms>                 unplug the AT port for <ms>, then re-create it
    garbage <text>              write raw text (\\r \\n \\0 escapes) to the AT port
    urc <line>                  write one URC line
    delay <ms>                  delay every reply
    drop <n>                    ignore the next n commands
    unresponsive on|off         stop/resume answering
    simbusy <n>                 the next n AT+CPIN? answer +CME ERROR: 14
    memfull on|off              force a full SMS memory
    fail <prefix> reboot|reboot-after|drop|far-end-leaves|error <final line>
                                fault on the next command starting with <prefix>
                                (reboot-after: answer it, then reboot at once)
    help                        this list
    quit                        stop
";

struct Args {
    config: SimulatorConfig,
    verbose: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut c = SimulatorConfig::default();
    let mut verbose = false;
    let mut ring = 2_000u64;
    let mut dial = "answer".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--profile" => {
                let v = val("--profile")?;
                c.model =
                    SimulatedModel::from_id(&v).ok_or_else(|| format!("unknown profile `{v}`"))?;
            }
            "--link" => c.link = Some(PathBuf::from(val("--link")?)),
            "--pcm-link" => c.pcm_link = Some(PathBuf::from(val("--pcm-link")?)),
            "--number" => c.own_number = val("--number")?,
            "--pin" => c.pin = Some(val("--pin")?),
            "--dial" => dial = val("--dial")?,
            "--ring-ms" => {
                ring = val("--ring-ms")?
                    .parse()
                    .map_err(|_| "--ring-ms needs a number".to_owned())?
            }
            "--slots" => {
                c.storage_slots = val("--slots")?
                    .parse()
                    .map_err(|_| "--slots needs a number".to_owned())?
            }
            "--verbose" => verbose = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    c.dial.default = match dial.as_str() {
        "answer" => DialOutcome::Answer { ring_ms: ring },
        "busy" => DialOutcome::Busy { after_ms: ring },
        "noanswer" => DialOutcome::NoAnswer { after_ms: ring },
        "manual" => DialOutcome::Manual,
        other => return Err(format!("unknown --dial outcome `{other}`")),
    };
    Ok(Args { config: c, verbose })
}

fn unescape(s: &str) -> Vec<u8> {
    s.replace("\\r", "\r")
        .replace("\\n", "\n")
        .replace("\\0", "\0")
        .into_bytes()
}

fn on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".to_owned()),
    }
}

fn num<T: std::str::FromStr>(v: &str, what: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{what}: `{v}` is not a number"))
}

/// A sine tone at `hz` for `ms` at 8 kHz, about −10 dBFS.
fn tone(hz: f64, ms: u64) -> Vec<i16> {
    let n = ms.saturating_mul(8);
    (0..n)
        .map(|i| {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "amplitude is within ±10000"
            )]
            #[expect(clippy::cast_precision_loss, reason = "sample indexes are small")]
            let s =
                (10_000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8_000.0).sin()) as i16;
            s
        })
        .collect()
}

fn run(ctl: &SimulatorControl, line: &str) -> Result<Option<String>, String> {
    let line = line.trim();
    let (cmd, rest) = line
        .split_once(' ')
        .map_or((line, ""), |(c, r)| (c, r.trim()));
    let e = |x: flowgate_board::simulator::SimulatorError| x.to_string();
    let done = Ok(Some("ok".to_owned()));
    match cmd {
        "" => Ok(None),
        "help" => Ok(Some(
            USAGE
                .split("STDIN COMMANDS")
                .nth(1)
                .unwrap_or(USAGE)
                .to_owned(),
        )),
        "sms" => {
            let (from, text) = rest.split_once(' ').ok_or("usage: sms <from> <text>")?;
            let pdus = ctl.send_sms(from, text).map_err(e)?;
            Ok(Some(format!("delivered in {} part(s)", pdus.len())))
        }
        "pdu" => ctl.send_pdu(rest).map_err(e).and(done),
        "call" => ctl.incoming_call(rest).map_err(e).and(done),
        "hangup" => ctl.remote_hangup().map_err(e).and(done),
        "answer" => ctl.remote_answer().map_err(e).and(done),
        "busy" => ctl.remote_busy().map_err(e).and(done),
        "noanswer" => ctl.remote_no_answer().map_err(e).and(done),
        "dtmf" => ctl.dtmf(rest).map_err(e).and(done),
        "ussd-reply" => ctl
            .queue_ussd_reply(UssdScript::new(rest, UssdCoding::Gsm7))
            .map_err(e)
            .and(done),
        "ussd-reply-ucs2" => ctl
            .queue_ussd_reply(UssdScript::new(rest, UssdCoding::Ucs2))
            .map_err(e)
            .and(done),
        "ussd-notify" => ctl
            .ussd_notify(&UssdScript::new(rest, UssdCoding::Gsm7))
            .map_err(e)
            .and(done),
        "report" => {
            let mut p = rest.split_whitespace();
            let mr = num(p.next().ok_or("usage: report <mr> <to> [status]")?, "mr")?;
            let to = p.next().ok_or("usage: report <mr> <to> [status]")?;
            let st = p.next().map_or(Ok(0), |s| num(s, "status"))?;
            ctl.status_report(mr, to, st).map_err(e).and(done)
        }
        "tone" => {
            let mut p = rest.split_whitespace();
            let hz: f64 = num(p.next().ok_or("usage: tone <hz> <ms>")?, "hz")?;
            let ms: u64 = num(p.next().ok_or("usage: tone <hz> <ms>")?, "ms")?;
            ctl.queue_audio(&tone(hz, ms)).map_err(e).and(done)
        }
        "sent" => Ok(Some(
            ctl.sent_sms()
                .iter()
                .map(|s| {
                    format!(
                        "mr={} to={} concat={:?} report={} text={:?} pdu={}",
                        s.mr,
                        s.to,
                        s.concat,
                        s.status_report,
                        s.text.as_deref().unwrap_or(""),
                        s.pdu
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        )),
        "dialled" => Ok(Some(ctl.dialled().join("\n"))),
        "dtmf-sent" => Ok(Some(ctl.dtmf_sent())),
        "calls" => Ok(Some(ctl.view(|v| {
            v.calls()
                .iter()
                .map(|(id, d, s, n)| format!("call {id}: {d:?} {s:?} {n}"))
                .collect::<Vec<_>>()
                .join("\n")
        }))),
        "stored" => Ok(Some(
            ctl.stored()
                .iter()
                .map(|(i, st, p)| format!("{i}: stat {st} {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )),
        "recorded" => Ok(Some(format!("{} samples", ctl.recorded_audio().len()))),
        "save-audio" => {
            let bytes: Vec<u8> = ctl
                .recorded_audio()
                .iter()
                .flat_map(|s| s.to_le_bytes())
                .collect();
            std::fs::write(rest, &bytes).map_err(|x| format!("{rest}: {x}"))?;
            Ok(Some(format!("{} bytes written", bytes.len())))
        }
        "reboot" => ctl.reboot().map_err(e).and(done),
        "vanish" => ctl
            .vanish(Duration::from_millis(num(rest, "ms")?))
            .map_err(e)
            .and(done),
        "garbage" => ctl.send_garbage(&unescape(rest)).map_err(e).and(done),
        "urc" => ctl.send_urc(rest).map_err(e).and(done),
        "delay" => {
            ctl.set_reply_delay(Duration::from_millis(num(rest, "ms")?));
            done
        }
        "drop" => {
            ctl.drop_replies(num(rest, "n")?);
            done
        }
        "unresponsive" => {
            ctl.set_unresponsive(on_off(rest)?);
            done
        }
        "simbusy" => {
            ctl.set_sim_busy(num(rest, "n")?);
            done
        }
        "memfull" => ctl.set_memory_full(on_off(rest)?).map_err(e).and(done),
        "fail" => {
            let mut p = rest.splitn(3, ' ');
            let usage =
                "usage: fail <prefix> reboot|reboot-after|drop|far-end-leaves|error <final line>";
            let prefix = p.next().filter(|x| !x.is_empty()).ok_or(usage)?;
            let action = match p.next().ok_or(usage)? {
                "reboot" => FaultAction::Reboot,
                "reboot-after" => FaultAction::RebootAfter,
                "drop" => FaultAction::Drop,
                "far-end-leaves" => FaultAction::FarEndLeaves,
                "error" => FaultAction::Error(p.next().unwrap_or("ERROR").to_owned()),
                _ => return Err(usage.to_owned()),
            };
            ctl.fail_next(prefix, action, 1);
            done
        }
        other => Err(format!("unknown command `{other}` (try `help`)")),
    }
}

fn describe(ev: &SimulatorEvent, verbose: bool) -> Option<String> {
    Some(match ev {
        SimulatorEvent::Command { line } if verbose => format!("<< {line}"),
        SimulatorEvent::Command { .. } => return None,
        SimulatorEvent::SmsSent { record } => {
            format!(
                "SMS sent mr={} to={} text={:?}",
                record.mr,
                record.to,
                record.text.as_deref().unwrap_or("")
            )
        }
        SimulatorEvent::SmsDelivered { index } => format!("SMS delivered (index {index:?})"),
        SimulatorEvent::SmsDeleted { index } => format!("SMS {index} deleted"),
        SimulatorEvent::MemoryFull => "SMS memory full".to_owned(),
        SimulatorEvent::StatusReportSent { mr } => format!("status report sent for mr={mr}"),
        SimulatorEvent::Dialled { number } => format!("gateway dialled {number}"),
        SimulatorEvent::IncomingCall { call, number } => {
            format!("call {call} from {number} ringing")
        }
        SimulatorEvent::Answered { call } => format!("call {call} answered by the gateway"),
        SimulatorEvent::CallState { call, state } => format!("call {call} {state:?}"),
        SimulatorEvent::CallEnded { call, by } => format!("call {call} ended by {by}"),
        SimulatorEvent::DtmfSent { digit } => format!("gateway sent DTMF {digit}"),
        SimulatorEvent::UssdRequest { code } => format!("USSD request {code}"),
        SimulatorEvent::AudioActive { active } => {
            format!("voice port {}", if *active { "active" } else { "idle" })
        }
        SimulatorEvent::Rebooted => "rebooted".to_owned(),
        SimulatorEvent::PortGone => "AT port gone".to_owned(),
        SimulatorEvent::PortRecreated { path } => format!("AT port back at {}", path.display()),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if msg.is_empty() {
                print!("{USAGE}");
                return std::process::ExitCode::SUCCESS;
            }
            eprintln!("flowgate-modemsim: {msg}\n\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let profile = args.config.model;
    let sim = match Simulator::start(args.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("flowgate-modemsim: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let ctl = sim.control();
    println!(
        "flowgate-modemsim: {} ({})",
        profile.vendor_profile_id(),
        sim.vendor_profile().description
    );
    println!("AT_PORT={}", sim.at_path().display());
    println!("PCM_PORT={}", sim.pcm_path().display());
    let mut events = ctl.subscribe();
    let verbose = args.verbose;
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev) => {
                    if let Some(t) = describe(&ev, verbose) {
                        println!("* {t}");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    println!("* ({n} events skipped)")
                }
                Err(_) => return,
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            l = lines.next_line() => match l {
                Ok(Some(l)) => {
                    if l.trim() == "quit" {
                        break;
                    }
                    match run(&ctl, &l) {
                        Ok(Some(out)) if !out.is_empty() => println!("{out}"),
                        Ok(_) => {}
                        Err(msg) => println!("error: {msg}"),
                    }
                }
                // stdin closed: keep simulating until interrupted.
                Ok(None) | Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    break;
                }
            },
        }
    }
    drop(sim);
    std::process::ExitCode::SUCCESS
}
