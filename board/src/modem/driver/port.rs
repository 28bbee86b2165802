//! The port task: the one owner of a modem's AT port.
//!
//! It writes commands one at a time (call-control commands jump the queue ahead of SMS
//! traffic), feeds every byte read to the [`AtCodec`], answers each request with its
//! [`Response`] or a [`ModemError`], enforces per-command timeouts, sends SMS bodies at the
//! `> ` prompt, and passes URCs and link problems to the manager as [`PortNotice`]s. The
//! serial stream is attached and detached by the manager (which opens and reopens the port),
//! so this task never blocks on opening a device.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace, warn};

use crate::modem::at::codec::{AtCodec, AtEvent, Pending, Response};
use crate::modem::at::urc::{Urc, UrcError};
use crate::modem::error::ModemError;

/// A byte stream the port task can own: a serial port, or anything else in tests.
pub(crate) trait AtStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AtStream for T {}

/// Queue priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// Call control: goes before queued SMS/status traffic.
    High,
    /// Everything else.
    Normal,
}

/// One command to execute.
#[derive(Debug, Clone)]
pub(crate) struct Command {
    /// What the codec needs to know (text, expected lines, prompt, dial).
    pub(crate) pending: Pending,
    /// Timeout for the final result (after the body, for prompt commands).
    pub(crate) timeout: Duration,
    /// Body sent at the `> ` prompt, followed by Ctrl-Z.
    pub(crate) body: Option<String>,
    /// Timeout for the prompt.
    pub(crate) prompt_timeout: Duration,
    /// Queue priority.
    pub(crate) priority: Priority,
    /// Sent only while the port's boot count ([`Mark::boots`]) is still this; otherwise it
    /// fails with [`ModemError::BootedBefore`] unsent (see [`Command::unless_booted_since`]).
    pub(crate) boots: Option<u64>,
}

impl Command {
    /// A command with the given timeout and normal priority.
    pub(crate) fn new(text: impl AsRef<str>, timeout: Duration) -> Self {
        Self {
            pending: Pending::for_command(text.as_ref()),
            timeout,
            body: None,
            prompt_timeout: timeout,
            priority: Priority::Normal,
            boots: None,
        }
    }

    /// Sends the command only if no boot URC was read since the answer marked `boots`: a
    /// command that acts on a setting made then (the SMS write memory of `AT+CMGW` and
    /// `AT+CMSS`) would act on the power-on default instead. The check runs in the port
    /// task as the command is written, so a boot read while it waited in the queue stops
    /// it; a boot still on the wire then is caught by the caller comparing the answer's mark.
    pub(crate) fn unless_booted_since(mut self, boots: u64) -> Self {
        self.boots = Some(boots);
        self
    }

    /// Marks the command as call control.
    pub(crate) fn high(mut self) -> Self {
        self.priority = Priority::High;
        self
    }

    /// Adds a body to send at the prompt.
    pub(crate) fn with_body(mut self, body: String, prompt_timeout: Duration) -> Self {
        self.pending.prompt = true;
        self.body = Some(body);
        self.prompt_timeout = prompt_timeout;
        self
    }

    /// Accepts another information-line name.
    pub(crate) fn also_expect(mut self, name: &str) -> Self {
        self.pending = self.pending.also_expect(name);
        self
    }
}

/// What the port task tells the manager.
#[derive(Debug)]
pub(crate) enum PortNotice {
    /// An unsolicited result code, with the time it was read.
    Urc(Urc, Instant),
    /// A malformed URC (logged by the manager).
    BadUrc(UrcError),
    /// A command timed out at `at`.
    Timeout {
        /// The command.
        command: String,
        /// When.
        at: Instant,
    },
    /// The stream failed; it has been dropped.
    Lost {
        /// Why.
        reason: String,
    },
}

/// Attach/detach a stream.
pub(crate) enum PortControl {
    /// Use this stream from now on.
    Attach(Box<dyn AtStream>),
    /// Drop the stream (fails pending requests).
    Detach(String),
}

/// Where a response stands in the byte stream relative to URCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// When it was read (the clock URC notices carry too).
    pub(crate) at: Instant,
    /// URC notices sent to the manager before it (see `Shared::caught_up`).
    pub(crate) urcs: u64,
    /// Boot URCs (`RDY`, `^BOOT`, heartbeats included) read before it: settings made by
    /// a command answered at a lower count (the SMS memory `AT+CPMS` selected) may be gone.
    pub(crate) boots: u64,
}

pub(crate) struct Request {
    cmd: Command,
    reply: oneshot::Sender<Result<(Response, Mark), ModemError>>,
}

/// Submits commands to the port task. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct AtClient {
    tx: mpsc::UnboundedSender<Request>,
}

impl AtClient {
    /// Runs a command; `Ok` carries any final result (check it with [`ModemError::check`]).
    pub(crate) async fn run(&self, cmd: Command) -> Result<Response, ModemError> {
        self.run_at(cmd).await.map(|(r, _)| r)
    }

    /// Like [`AtClient::run`], with the response's place among the URCs: the URCs read
    /// before it may still be unprocessed by the manager (see `Shared::caught_up`).
    pub(crate) async fn run_at(&self, cmd: Command) -> Result<(Response, Mark), ModemError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { cmd, reply })
            .map_err(|_| ModemError::Stopped)?;
        rx.await.map_err(|_| ModemError::Stopped)?
    }

    /// Runs a command and fails on any final result but `OK`/`CONNECT`.
    pub(crate) async fn ok(&self, cmd: Command) -> Result<Response, ModemError> {
        self.run(cmd).await.and_then(ModemError::check)
    }

    /// Like [`AtClient::ok`], with the response's place among the URCs.
    pub(crate) async fn ok_at(&self, cmd: Command) -> Result<(Response, Mark), ModemError> {
        let (r, at) = self.run_at(cmd).await?;
        Ok((ModemError::check(r)?, at))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Prompt,
    Final,
}

struct InFlight {
    req: Request,
    phase: Phase,
    deadline: Instant,
    /// A `^BOOT` arrived while this command was pending on a modem whose `^BOOT` may be a
    /// heartbeat: if the deadline passes unanswered, the modem rebooted and dropped it.
    after_boot: bool,
}

/// The port task's state.
pub(crate) struct PortTask {
    port_name: String,
    stream: Option<Box<dyn AtStream>>,
    codec: AtCodec,
    high: VecDeque<Request>,
    normal: VecDeque<Request>,
    in_flight: Option<InFlight>,
    notices: mpsc::UnboundedSender<PortNotice>,
    /// URC notices sent so far.
    urcs_sent: u64,
    /// Boot URCs read so far (see [`Mark::boots`]).
    boots: u64,
    /// `None`: `^BOOT` always means the modem rebooted. `Some(grace)`: it may be a
    /// heartbeat; a command pending when it arrives gets at most `grace` more to answer.
    boot_heartbeat_grace: Option<Duration>,
}

/// Creates the port task and its client; run it with [`PortTask::run`].
pub(crate) fn port_task(
    port_name: String,
    notices: mpsc::UnboundedSender<PortNotice>,
    boot_heartbeat_grace: Option<Duration>,
) -> (PortTask, AtClient, mpsc::UnboundedReceiver<Request>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        PortTask {
            port_name,
            stream: None,
            codec: AtCodec::default(),
            high: VecDeque::new(),
            normal: VecDeque::new(),
            in_flight: None,
            notices,
            urcs_sent: 0,
            boots: 0,
            boot_heartbeat_grace,
        },
        AtClient { tx },
        rx,
    )
}

/// Requests the port task reads from (opaque).
pub(crate) type RequestRx = mpsc::UnboundedReceiver<Request>;

async fn read_some(
    stream: &mut Option<Box<dyn AtStream>>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match stream {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl PortTask {
    /// Runs until cancelled or every client and the control channel are gone.
    pub(crate) async fn run(
        mut self,
        mut requests: RequestRx,
        mut control: mpsc::UnboundedReceiver<PortControl>,
        cancel: CancellationToken,
    ) {
        let mut buf = vec![0u8; 4096];
        let mut events = Vec::new();
        loop {
            self.start_next().await;
            let deadline = self.in_flight.as_ref().map(|f| f.deadline);
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                ctl = control.recv() => match ctl {
                    Some(PortControl::Attach(s)) => {
                        // A re-opened port may front a modem that restarted meanwhile.
                        self.boots += 1;
                        self.codec.reset();
                        self.stream = Some(s);
                        debug!(port = %self.port_name, "port attached");
                    }
                    Some(PortControl::Detach(reason)) => self.drop_stream(&reason, false),
                    None => break,
                },
                r = read_some(&mut self.stream, &mut buf) => match r {
                    Ok(0) => self.drop_stream("end of file", true),
                    Ok(n) => {
                        trace!(port = %self.port_name, bytes = %String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).escape_debug(), "rx");
                        self.codec.feed(buf.get(..n).unwrap_or_default(), &mut events);
                        for ev in events.drain(..) {
                            self.event(ev).await;
                        }
                    }
                    Err(e) => self.drop_stream(&e.to_string(), true),
                },
                () = sleep_opt(deadline) => self.timed_out().await,
                req = requests.recv() => match req {
                    Some(r) => match r.cmd.priority {
                        Priority::High => self.high.push_back(r),
                        Priority::Normal => self.normal.push_back(r),
                    },
                    None => break,
                },
            }
        }
        self.drop_stream("modem task stopped", false);
    }

    async fn start_next(&mut self) {
        while self.in_flight.is_none() {
            let Some(req) = self.high.pop_front().or_else(|| self.normal.pop_front()) else {
                return;
            };
            if self.stream.is_none() {
                let _ = req.reply.send(Err(self.gone("port not open")));
                continue;
            }
            if req.cmd.boots.is_some_and(|b| b != self.boots) {
                debug!(port = %self.port_name, cmd = %req.cmd.pending.text, "not sent: the modem booted since the setting it relies on was made");
                let _ = req.reply.send(Err(ModemError::BootedBefore {
                    command: req.cmd.pending.text,
                }));
                continue;
            }
            let line = format!("{}\r", req.cmd.pending.text);
            debug!(port = %self.port_name, cmd = %req.cmd.pending.text, "tx");
            let (phase, limit) = if req.cmd.body.is_some() {
                (Phase::Prompt, req.cmd.prompt_timeout)
            } else {
                (Phase::Final, req.cmd.timeout)
            };
            self.codec.begin(req.cmd.pending.clone());
            self.in_flight = Some(InFlight {
                req,
                phase,
                deadline: Instant::now() + limit,
                after_boot: false,
            });
            if let Err(e) = self.write(line.as_bytes(), limit).await {
                self.drop_stream(&e, true);
            }
        }
    }

    async fn write(&mut self, bytes: &[u8], limit: Duration) -> Result<(), String> {
        let Some(s) = self.stream.as_mut() else {
            return Err("port not open".to_owned());
        };
        match timeout(limit, async {
            s.write_all(bytes).await?;
            s.flush().await
        })
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Err(_) => Err("write blocked (the modem does not read)".to_owned()),
        }
    }

    async fn event(&mut self, ev: AtEvent) {
        match ev {
            AtEvent::Response(r) => match self.in_flight.take() {
                Some(f) => {
                    debug!(port = %self.port_name, cmd = %r.command, result = ?r.result, "rx final");
                    let mark = Mark {
                        at: Instant::now(),
                        urcs: self.urcs_sent,
                        boots: self.boots,
                    };
                    let _ = f.req.reply.send(Ok((r, mark)));
                }
                None => trace!(port = %self.port_name, "response without request"),
            },
            AtEvent::Prompt => {
                let Some(f) = self.in_flight.as_mut() else {
                    return;
                };
                if f.phase != Phase::Prompt {
                    return;
                }
                let body = f.req.cmd.body.clone().unwrap_or_default();
                let limit = f.req.cmd.timeout;
                f.phase = Phase::Final;
                f.deadline = Instant::now() + limit;
                let mut bytes = body.into_bytes();
                bytes.push(0x1A);
                if let Err(e) = self.write(&bytes, limit).await {
                    self.drop_stream(&e, true);
                }
            }
            AtEvent::Urc(u) => {
                let boot = matches!(u, Urc::Boot { .. });
                if boot || u == Urc::Ready {
                    self.boots += 1;
                }
                let rebooted = u == Urc::Ready || (boot && self.boot_heartbeat_grace.is_none());
                if rebooted && let Some(f) = self.in_flight.take() {
                    // The modem rebooted: nothing will answer this command.
                    self.codec.abort();
                    let _ = f.req.reply.send(Err(ModemError::Rebooted {
                        command: f.req.cmd.pending.text,
                    }));
                } else if boot
                    && let Some(grace) = self.boot_heartbeat_grace
                    && let Some(f) = self.in_flight.as_mut()
                    && !f.after_boot
                {
                    // A heartbeat, or a reboot that swallowed this command: a live modem
                    // answers it soon, a rebooted one never. Without this bound the command
                    // would hold the port for its whole timeout (two minutes for a listing),
                    // and the manager's `^BOOT` check queued behind it would never run in time.
                    f.after_boot = true;
                    f.deadline = f.deadline.min(Instant::now() + grace);
                }
                self.urc_notice(u);
            }
            AtEvent::BadUrc(e) => {
                let _ = self.notices.send(PortNotice::BadUrc(e));
            }
            // Some modems print an unsolicited `+CMS ERROR: 322` when an incoming message
            // cannot be stored: that is a full memory, reported like ^SMMEMFULL.
            AtEvent::Stray(line)
                if line.to_ascii_uppercase().replace(' ', "") == "+CMSERROR:322" =>
            {
                self.urc_notice(Urc::SmMemFull { mem: String::new() });
            }
            AtEvent::Stray(line) => debug!(port = %self.port_name, %line, "stray line"),
            AtEvent::Overflow { discarded } => {
                warn!(port = %self.port_name, discarded, "over-long line discarded")
            }
        }
    }

    /// Passes a URC to the manager, counting it.
    fn urc_notice(&mut self, u: Urc) {
        self.urcs_sent += 1;
        let _ = self.notices.send(PortNotice::Urc(u, Instant::now()));
    }

    async fn timed_out(&mut self) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        self.codec.abort();
        let command = f.req.cmd.pending.text.clone();
        if f.after_boot {
            // Unanswered since a `^BOOT`: the modem rebooted (the manager's `^BOOT` check,
            // next in line, confirms it and re-initialises). Not a fault for the ladder.
            warn!(port = %self.port_name, cmd = %command, "command unanswered after ^BOOT: the modem rebooted");
            if f.phase == Phase::Prompt {
                let _ = self.write(&[0x1B], Duration::from_millis(200)).await;
            }
            let _ = f.req.reply.send(Err(ModemError::Rebooted { command }));
            return;
        }
        let limit = if f.phase == Phase::Prompt {
            f.req.cmd.prompt_timeout
        } else {
            f.req.cmd.timeout
        };
        warn!(port = %self.port_name, cmd = %command, timeout_ms = limit.as_millis(), "command timed out");
        if f.phase == Phase::Prompt {
            // Leave the prompt if it comes late: ESC aborts the message.
            let _ = self.write(&[0x1B], Duration::from_millis(200)).await;
        }
        let timeout_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        let _ = f.req.reply.send(Err(ModemError::Timeout {
            command: command.clone(),
            timeout_ms,
        }));
        let _ = self.notices.send(PortNotice::Timeout {
            command,
            at: Instant::now(),
        });
    }

    fn gone(&self, reason: &str) -> ModemError {
        ModemError::PortGone {
            port: self.port_name.clone(),
            reason: reason.to_owned(),
        }
    }

    fn drop_stream(&mut self, reason: &str, notify: bool) {
        let had = self.stream.take().is_some();
        self.codec.reset();
        if let Some(f) = self.in_flight.take() {
            let _ = f.req.reply.send(Err(self.gone(reason)));
        }
        for r in self
            .high
            .drain(..)
            .chain(self.normal.drain(..))
            .collect::<Vec<_>>()
        {
            let _ = r.reply.send(Err(self.gone(reason)));
        }
        if had && notify {
            warn!(port = %self.port_name, %reason, "port lost");
            let _ = self.notices.send(PortNotice::Lost {
                reason: reason.to_owned(),
            });
        }
    }
}
