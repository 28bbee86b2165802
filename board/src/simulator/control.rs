//! [`SimulatorControl`]: the handle tests, the daemon's `/v1.0/gateway/sim` API and
//! `flowgate-modemsim` drive a simulated modem with — inject what the network and the far end do
//! (SMS, status reports, calls, DTMF, USSD, caller audio), inject faults, read back what the
//! gateway did ([`SimulatorView`]), and wait for it deterministically
//! ([`SimulatorControl::wait_for`] wakes on every state change, never on a timer).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::timeout;

use super::core::{
    FaultAction, Out, SentSmsRecord, SimCore, SimulatedCallRecord, UssdScript, audio, calls, sms,
    ussd,
};
use super::shell::{SimCmd, SimShared};
use super::{SimulatedModel, SimulatorError, SimulatorEvent};
use crate::modem::at::types::{CallStat, Direction};

/// A read-only view of the simulator state, for [`SimulatorControl::wait_for`] conditions.
pub struct SimulatorView<'a> {
    core: &'a SimCore,
}

impl SimulatorView<'_> {
    /// SMS parts the gateway sent.
    pub fn sent_sms(&self) -> &[SentSmsRecord] {
        &self.core.sms.sent
    }

    /// Numbers the gateway dialled.
    pub fn dialled(&self) -> &[String] {
        &self.core.calls.dialled
    }

    /// DTMF digits the gateway sent.
    pub fn dtmf_sent(&self) -> String {
        self.core.audio.dtmf_sent.iter().collect()
    }

    /// USSD codes the gateway sent.
    pub fn ussd_requests(&self) -> &[String] {
        &self.core.ussd.requests
    }

    /// Every call so far.
    pub fn call_log(&self) -> &[SimulatedCallRecord] {
        &self.core.calls.log
    }

    /// Current calls as (id, direction, state, number).
    pub fn calls(&self) -> Vec<(u64, Direction, CallStat, String)> {
        self.core.calls.current()
    }

    /// Stored messages of every memory (index, stat, PDU).
    pub fn stored(&self) -> Vec<(u32, u8, String)> {
        self.core.sms.stored()
    }

    /// Stored messages with the memory holding them (memory, index, stat, PDU).
    pub fn stored_by_memory(&self) -> Vec<(String, u32, u8, String)> {
        self.core.sms.stored_by_memory()
    }

    /// Parts the gateway sent with `AT+CMGS` rather than from storage (`AT+CMSS`): each is
    /// at-least-once across gateway crashes.
    pub fn cmgs_sends(&self) -> usize {
        self.core.sms.cmgs_sends()
    }

    /// Message references of the status reports the modem dropped: `AT+CNMI` asked for
    /// none (a full memory makes the network hold them back until there is room).
    pub fn reports_lost(&self) -> Vec<u8> {
        self.core.sms.reports_lost().to_vec()
    }

    /// Messages held back by the network (memory full).
    pub fn network_queue_len(&self) -> usize {
        self.core.sms.network_queue_len()
    }

    /// Command lines received.
    pub fn commands(&self) -> &[String] {
        &self.core.log.commands
    }

    /// Reboots so far.
    pub fn reboots(&self) -> u32 {
        self.core.log.reboots
    }

    /// Samples recorded from the gateway.
    pub fn recorded_len(&self) -> usize {
        self.core.audio.recorded().len()
    }

    /// Samples of caller audio still queued.
    pub fn audio_queued(&self) -> usize {
        self.core.audio.queued()
    }

    /// Whether the voice port is active.
    pub fn audio_active(&self) -> bool {
        self.core.audio.active()
    }
}

/// Control handle of a simulated modem. Cheap to clone.
#[derive(Clone)]
pub struct SimulatorControl {
    shared: Arc<SimShared>,
}

impl std::fmt::Debug for SimulatorControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorControl")
            .field("at", &self.at_path())
            .finish()
    }
}

impl SimulatorControl {
    pub(super) fn new(shared: Arc<SimShared>) -> Self {
        Self { shared }
    }

    pub(super) fn shared(&self) -> &SimShared {
        &self.shared
    }

    /// The path the gateway opens for AT (symlink when configured).
    pub fn at_path(&self) -> PathBuf {
        self.shared
            .link
            .clone()
            .unwrap_or_else(|| self.shared.at_path.lock().clone())
    }

    /// The current AT pty (`/dev/pts/N`), which changes when the port vanishes.
    pub fn at_pty(&self) -> PathBuf {
        self.shared.at_path.lock().clone()
    }

    /// The voice port path (symlink when configured).
    pub fn pcm_path(&self) -> PathBuf {
        self.shared
            .pcm_link
            .clone()
            .unwrap_or_else(|| self.shared.pcm_path.clone())
    }

    /// The simulated model.
    pub fn model(&self) -> SimulatedModel {
        self.shared.core.lock().model()
    }

    /// Simulator events.
    pub fn subscribe(&self) -> broadcast::Receiver<SimulatorEvent> {
        self.shared.events.subscribe()
    }

    fn out(
        &self,
        f: impl FnOnce(&mut SimCore) -> Result<Vec<Out>, SimulatorError>,
    ) -> Result<(), SimulatorError> {
        self.shared.with(|c| f(c).map(|o| (o, ())))
    }

    // ------------------------------------------------------------- inject

    /// An SMS with `text` from `from` (split into a multipart message when long). Returns the
    /// PDUs delivered.
    pub fn send_sms(&self, from: &str, text: &str) -> Result<Vec<String>, SimulatorError> {
        self.shared.with(|c| {
            let pdus = sms::encode_sms(c, from, text)?;
            let mut out = Vec::new();
            for p in &pdus {
                out.extend(sms::inject_pdu(c, p)?);
            }
            Ok((out, pdus))
        })
    }

    /// Encodes an SMS as DELIVER PDUs without delivering them (deliver with
    /// [`SimulatorControl::send_pdu`], in any order).
    pub fn encode_sms(&self, from: &str, text: &str) -> Result<Vec<String>, SimulatorError> {
        self.shared
            .with(|c| sms::encode_sms(c, from, text).map(|p| (Vec::new(), p)))
    }

    /// Delivers a raw PDU (hex, SMSC field first).
    pub fn send_pdu(&self, hex: &str) -> Result<(), SimulatorError> {
        self.out(|c| sms::inject_pdu(c, hex))
    }

    /// An incoming call from `number`.
    pub fn incoming_call(&self, number: &str) -> Result<(), SimulatorError> {
        self.out(|c| calls::incoming_call(c, number))
    }

    /// The far end hangs up the most recent call (or stops ringing).
    pub fn remote_hangup(&self) -> Result<(), SimulatorError> {
        self.out(calls::remote_hangup)
    }

    /// The far end of the simulator call `id` (see [`SimulatorControl::calls`]) hangs up, e.g. the
    /// held one of two calls.
    pub fn remote_hangup_call(&self, id: u64) -> Result<(), SimulatorError> {
        self.out(|c| calls::remote_hangup_call(c, id))
    }

    /// The far end answers the outgoing call (dial outcome `Manual`).
    pub fn remote_answer(&self) -> Result<(), SimulatorError> {
        self.out(calls::remote_answer)
    }

    /// The far end is busy.
    pub fn remote_busy(&self) -> Result<(), SimulatorError> {
        self.out(calls::remote_busy)
    }

    /// The far end does not answer.
    pub fn remote_no_answer(&self) -> Result<(), SimulatorError> {
        self.out(calls::remote_no_answer)
    }

    /// The far end presses `digits` (needs an active call). The modem reports them with its
    /// DTMF URC once the gateway enabled detection (`AT+QTONEDET=1`, `AT^DDTMFCFG=0,1`,
    /// `AT+DDET=1`); with detection off nothing is reported, as on a real modem.
    pub fn dtmf(&self, digits: &str) -> Result<(), SimulatorError> {
        self.out(|c| audio::far_end_dtmf(c, digits))
    }

    /// Queues the reply to the next USSD request.
    pub fn queue_ussd_reply(&self, script: UssdScript) -> Result<(), SimulatorError> {
        self.out(|c| {
            ussd::queue(c, script);
            Ok(Vec::new())
        })
    }

    /// A network-initiated USSD message, now (shown once the gateway enabled `+CUSD` results
    /// with `AT+CUSD=1`).
    pub fn ussd_notify(&self, script: &UssdScript) -> Result<(), SimulatorError> {
        self.out(|c| Ok(ussd::notify(c, script)))
    }

    /// A status report with TP-ST `status` for message reference `mr` sent to `to`.
    pub fn status_report(&self, mr: u8, to: &str, status: u8) -> Result<(), SimulatorError> {
        self.out(|c| sms::status_report(c, mr, to, status))
    }

    /// Queues caller audio (8 kHz samples) for the voice port.
    ///
    /// # Errors
    /// [`SimulatorError::Invalid`] when the queue would hold more than
    /// [`MAX_QUEUED_SAMPLES`](crate::simulator::MAX_QUEUED_SAMPLES).
    pub fn queue_audio(&self, samples: &[i16]) -> Result<(), SimulatorError> {
        self.out(|c| {
            c.audio.queue(samples)?;
            Ok(Vec::new())
        })
    }

    /// Drops the caller audio not yet played (it is dropped anyway when the call ends);
    /// returns how many samples were dropped.
    pub fn clear_audio(&self) -> usize {
        self.shared.core.lock().audio.clear_queue()
    }

    /// Writes a line as a URC (`\r\n<line>\r\n`).
    pub fn send_urc(&self, line: &str) -> Result<(), SimulatorError> {
        let bytes = format!("\r\n{line}\r\n").into_bytes();
        self.shared
            .cmds
            .send(SimCmd::Out(vec![Out::Bytes(bytes)]))
            .map_err(|_| SimulatorError::Stopped)
    }

    /// Writes raw bytes to the AT port (garbage, NULs, partial lines).
    pub fn send_garbage(&self, bytes: &[u8]) -> Result<(), SimulatorError> {
        self.shared
            .cmds
            .send(SimCmd::Out(vec![Out::Bytes(bytes.to_vec())]))
            .map_err(|_| SimulatorError::Stopped)
    }

    // ------------------------------------------------------------- faults

    /// Delays every reply by `d`.
    pub fn set_reply_delay(&self, d: Duration) {
        let _ = self.out(|c| {
            c.faults.reply_delay = d;
            Ok(Vec::new())
        });
    }

    /// Ignores the next `n` command lines completely.
    pub fn drop_replies(&self, n: u32) {
        let _ = self.out(|c| {
            c.faults.drop_replies = n;
            Ok(Vec::new())
        });
    }

    /// Stops (or resumes) answering anything.
    pub fn set_unresponsive(&self, on: bool) {
        let _ = self.out(|c| {
            c.faults.unresponsive = on;
            Ok(Vec::new())
        });
    }

    /// The next `n` `AT+CPIN?` answer `+CME ERROR: 14` (SIM busy).
    pub fn set_sim_busy(&self, n: u32) {
        let _ = self.out(|c| {
            c.faults.sim_busy = n;
            Ok(Vec::new())
        });
    }

    /// Forces a full SMS memory (or clears it; held-back messages are then delivered).
    pub fn set_memory_full(&self, full: bool) -> Result<(), SimulatorError> {
        self.out(|c| Ok(sms::set_memory_full(c, full)))
    }

    /// The next `times` commands starting with `prefix` (e.g. `AT+CMGS`) get `action`; for
    /// `AT+CMGS`/`AT+CMGW` it applies when the body arrives (a reboot "in the middle of a
    /// send"). [`FaultAction::NoReply`] on `AT+CMSS` sends the message and loses the reply.
    pub fn fail_next(&self, prefix: &str, action: FaultAction, times: u32) {
        self.fail_after(prefix, 0, action, times);
    }

    /// Like [`SimulatorControl::fail_next`], but the first `skip` matching commands go through
    /// normally (e.g. the second part of a multipart send fails).
    pub fn fail_after(&self, prefix: &str, skip: u32, action: FaultAction, times: u32) {
        let _ = self.out(|c| {
            c.faults.add_trigger(prefix, action, skip, times);
            Ok(Vec::new())
        });
    }

    /// Makes the network refuse (or allow again) explicit call transfer (`AT+CHLD=4`
    /// answers `+CME ERROR: 3`).
    pub fn set_ect_refused(&self, refused: bool) {
        let _ = self.out(|c| {
            c.faults.ect_refused = refused;
            Ok(Vec::new())
        });
    }

    /// Reboots now (`RDY`/`^BOOT` after the boot delay; calls and settings are lost, stored
    /// SMS are kept).
    pub fn reboot(&self) -> Result<(), SimulatorError> {
        self.out(|c| Ok(c.reboot()))
    }

    /// Unplugs the modem: the AT pty is closed, and after `down` re-created at a new pty
    /// (the symlink, if configured, follows), with the modem freshly booted.
    pub fn vanish(&self, down: Duration) -> Result<(), SimulatorError> {
        self.shared
            .cmds
            .send(SimCmd::Vanish(down))
            .map_err(|_| SimulatorError::Stopped)
    }

    // ---------------------------------------------------------- read back

    /// Reads the state through a [`SimulatorView`].
    pub fn view<T>(&self, f: impl FnOnce(&SimulatorView<'_>) -> T) -> T {
        let core = self.shared.core.lock();
        f(&SimulatorView { core: &core })
    }

    /// SMS parts the gateway sent.
    pub fn sent_sms(&self) -> Vec<SentSmsRecord> {
        self.view(|v| v.sent_sms().to_vec())
    }

    /// Whole messages the gateway sent, parts joined in sequence order: (recipient, text).
    pub fn sent_messages(&self) -> Vec<(String, String)> {
        struct Joining {
            to: String,
            key: Option<(u16, u8)>,
            parts: Vec<(u8, String)>,
        }
        let mut out: Vec<Joining> = Vec::new();
        for p in self.sent_sms() {
            let key = p.concat.map(|(r, t, _)| (r, t));
            let seq = p.concat.map_or(1, |(_, _, s)| s);
            let text = p.text.clone().unwrap_or_default();
            let open = out.iter_mut().find(|j| {
                key.is_some()
                    && j.to == p.to
                    && j.key == key
                    && j.parts.len() < usize::from(key.map_or(1, |k| k.1))
            });
            match open {
                Some(j) => j.parts.push((seq, text)),
                None => out.push(Joining {
                    to: p.to.clone(),
                    key,
                    parts: vec![(seq, text)],
                }),
            }
        }
        out.into_iter()
            .map(|mut j| {
                j.parts.sort_by_key(|(s, _)| *s);
                (j.to, j.parts.into_iter().map(|(_, t)| t).collect())
            })
            .collect()
    }

    /// Numbers dialled.
    pub fn dialled(&self) -> Vec<String> {
        self.view(|v| v.dialled().to_vec())
    }

    /// DTMF digits the gateway sent.
    pub fn dtmf_sent(&self) -> String {
        self.view(|v| v.dtmf_sent())
    }

    /// Every call so far.
    pub fn call_log(&self) -> Vec<SimulatedCallRecord> {
        self.view(|v| v.call_log().to_vec())
    }

    /// Stored messages of every memory (index, stat, PDU).
    pub fn stored(&self) -> Vec<(u32, u8, String)> {
        self.view(|v| v.stored())
    }

    /// Stored messages with the memory holding them (memory, index, stat, PDU).
    pub fn stored_by_memory(&self) -> Vec<(String, u32, u8, String)> {
        self.view(|v| v.stored_by_memory())
    }

    /// Parts the gateway sent with `AT+CMGS` rather than from storage (`AT+CMSS`).
    pub fn cmgs_sends(&self) -> usize {
        self.view(|v| v.cmgs_sends())
    }

    /// Message references of the status reports the modem dropped (none asked for with
    /// `AT+CNMI`; a full memory makes the network hold them back until there is room).
    pub fn reports_lost(&self) -> Vec<u8> {
        self.view(|v| v.reports_lost())
    }

    /// Current calls as (simulator call id, direction, state, number).
    pub fn calls(&self) -> Vec<(u64, Direction, CallStat, String)> {
        self.view(|v| v.calls())
    }

    /// Waits until the current calls, as (number, state) sorted by number, equal `want`.
    pub async fn wait_for_calls(
        &self,
        want: &[(&str, CallStat)],
        limit: Duration,
    ) -> Result<(), SimulatorError> {
        let mut want: Vec<(String, CallStat)> =
            want.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        self.wait_for(&format!("calls {want:?}"), limit, |v| {
            let mut now: Vec<(String, CallStat)> =
                v.calls().into_iter().map(|(_, _, s, n)| (n, s)).collect();
            now.sort_by(|a, b| a.0.cmp(&b.0));
            (now == want).then_some(())
        })
        .await
    }

    /// Command lines received from the gateway.
    pub fn commands(&self) -> Vec<String> {
        self.view(|v| v.commands().to_vec())
    }

    /// What the gateway sent on the voice port (8 kHz samples), so far.
    pub fn recorded_audio(&self) -> Vec<i16> {
        self.shared.core.lock().audio.recorded().to_vec()
    }

    /// Takes the recording (it starts empty again).
    pub fn take_recorded_audio(&self) -> Vec<i16> {
        self.shared.core.lock().audio.take_recorded()
    }

    /// Waits until `f` returns `Some` (checked after every state change), at most `limit`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        f: impl Fn(&SimulatorView<'_>) -> Option<T>,
    ) -> Result<T, SimulatorError> {
        let mut rx = self.shared.changed.subscribe();
        let fut = async {
            loop {
                if let Some(v) = self.view(&f) {
                    return Ok(v);
                }
                if rx.changed().await.is_err() {
                    return Err(SimulatorError::Stopped);
                }
            }
        };
        timeout(limit, fut)
            .await
            .map_err(|_| SimulatorError::Timeout(what.to_owned()))?
    }

    /// Waits until the gateway has sent at least `n` SMS parts.
    pub async fn wait_for_sent_sms(
        &self,
        n: usize,
        limit: Duration,
    ) -> Result<Vec<SentSmsRecord>, SimulatorError> {
        self.wait_for(&format!("{n} sent SMS parts"), limit, |v| {
            (v.sent_sms().len() >= n).then(|| v.sent_sms().to_vec())
        })
        .await
    }

    /// Waits until the gateway has dialled at least `n` numbers.
    pub async fn wait_for_dialled(
        &self,
        n: usize,
        limit: Duration,
    ) -> Result<Vec<String>, SimulatorError> {
        self.wait_for(&format!("{n} dialled numbers"), limit, |v| {
            (v.dialled().len() >= n).then(|| v.dialled().to_vec())
        })
        .await
    }

    /// Waits until the gateway has sent at least `n` DTMF digits.
    pub async fn wait_for_dtmf_sent(
        &self,
        n: usize,
        limit: Duration,
    ) -> Result<String, SimulatorError> {
        self.wait_for(&format!("{n} DTMF digits"), limit, |v| {
            let d = v.dtmf_sent();
            (d.chars().count() >= n).then_some(d)
        })
        .await
    }

    /// Waits until the storage holds exactly `n` messages.
    pub async fn wait_for_stored(&self, n: usize, limit: Duration) -> Result<(), SimulatorError> {
        self.wait_for(&format!("{n} stored SMS"), limit, |v| {
            (v.stored().len() == n).then_some(())
        })
        .await
    }

    /// Waits until the voice port is (in)active.
    pub async fn wait_for_audio(
        &self,
        active: bool,
        limit: Duration,
    ) -> Result<(), SimulatorError> {
        self.wait_for("voice port state", limit, |v| {
            (v.audio_active() == active).then_some(())
        })
        .await
    }

    /// Waits until at least `n` samples were recorded from the gateway.
    pub async fn wait_for_recorded(&self, n: usize, limit: Duration) -> Result<(), SimulatorError> {
        self.wait_for(&format!("{n} recorded samples"), limit, |v| {
            (v.recorded_len() >= n).then_some(())
        })
        .await
    }

    /// Waits until no call exists.
    pub async fn wait_for_no_calls(&self, limit: Duration) -> Result<(), SimulatorError> {
        self.wait_for("no calls", limit, |v| v.calls().is_empty().then_some(()))
            .await
    }

    /// Waits until a command line starting with `prefix` has been received `n` times.
    pub async fn wait_for_command(
        &self,
        prefix: &str,
        n: usize,
        limit: Duration,
    ) -> Result<(), SimulatorError> {
        let p = prefix.to_ascii_uppercase();
        self.wait_for(&format!("{n}× {prefix}"), limit, |v| {
            (v.commands()
                .iter()
                .filter(|c| c.to_ascii_uppercase().starts_with(&p))
                .count()
                >= n)
                .then_some(())
        })
        .await
    }
}
