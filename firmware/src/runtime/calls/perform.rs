//! The call commands of a flow: answer, hangup, sleep, digits, the media actions (external
//! media included), `transcribe_start`/`transcribe_stop`, `connect`, the conferences and
//! `queue_join`. Each becomes a
//! `'static` future the runner may drop at any time (an interrupt, the far end hanging up):
//! whatever it started stops with it.

use std::time::Duration;

use flowgate_flows::engine::{Command, Outcome};
use flowgate_flows::model::CommandOption;
use futures::FutureExt;
use futures::future::BoxFuture;
use uuid::Uuid;

use super::LiveCall;
use crate::media::Source;
use crate::model::ActiveflowRecord;

/// VoIPBIN ends `digits_receive` at once when `duration` is 0; a caller would expect time.
const DEFAULT_DIGITS_TIMEOUT_MS: i64 = 5000;

pub(super) fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0))
}

impl LiveCall {
    /// Executes a call command of the flow `record` (`step_key` names this step, stable
    /// across restarts, for the ids of what the command creates).
    pub(crate) fn perform(
        &self,
        record: &ActiveflowRecord,
        step_key: Uuid,
        command: Command,
    ) -> BoxFuture<'static, Outcome> {
        let this = self.clone();
        if let CommandOption::QueueJoin(option) = command.option {
            // The wait flow runs with the flow's variables (VoIPBIN runs it in the same
            // activeflow).
            let activeflow = record.id;
            let variables = record.engine.variables().to_map();
            return async move { this.queue_join(activeflow, option, variables).await }.boxed();
        }
        // Only recording and transcribe on-end flows inherit the flow's variables.
        let variables = if matches!(
            command.option,
            CommandOption::RecordingStart(_) | CommandOption::TranscribeStart(_)
        ) {
            record.engine.variables().to_map()
        } else {
            indexmap::IndexMap::new()
        };
        async move { this.perform_inner(command, step_key, variables).await }.boxed()
    }

    pub(super) async fn perform_inner(
        &self,
        command: Command,
        step_key: Uuid,
        variables: indexmap::IndexMap<String, String>,
    ) -> Outcome {
        let kind = command.kind();
        // This future is as large as its largest arm for as long as any action runs (an
        // `echo` for hours, on every call): the arms whose futures are several times the
        // common ones (connect, the starts of recording, external media and transcription)
        // are boxed, so a call pays for them only while they run.
        match command.option {
            CommandOption::Answer(_) => match self.answer().await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(format!("answer: {e}")),
            },
            CommandOption::Hangup(option) => {
                let reason = self.hangup_reason(&option.reason, option.reference_id.non_nil());
                self.hangup(&reason).await;
                self.close_media();
                Outcome::Hangup
            }
            CommandOption::Sleep(option) => {
                tokio::time::sleep(millis(option.duration)).await;
                Outcome::Done
            }
            CommandOption::DigitsReceive(option) => {
                // Digits arrive through the runner's mailbox (the engine decides when enough
                // have come); this future is only the timeout. VoIPBIN ends at once when
                // `duration` is 0; 0 means the default of 5 s here (documented in the README).
                let ms = if option.duration > 0 {
                    option.duration
                } else {
                    DEFAULT_DIGITS_TIMEOUT_MS
                };
                tokio::time::sleep(millis(ms)).await;
                Outcome::Timeout
            }
            CommandOption::DigitsSend(option) => {
                self.send_digits(&option.digits, option.duration, option.interval)
                    .await
            }
            CommandOption::Talk(option) => {
                let source = Source::Tts {
                    text: option.text,
                    language: Some(option.language).filter(|l| !l.is_empty()),
                    voice: Some(option.voice_id).filter(|v| !v.is_empty()),
                };
                self.play_and_wait("talk", source, option.r#async).await
            }
            CommandOption::Play(option) => {
                self.play_and_wait("play", Source::Urls(option.stream_urls), false)
                    .await
            }
            CommandOption::Beep(_) => self.play_and_wait("beep", Source::Beep, false).await,
            CommandOption::Echo(option) | CommandOption::StreamEcho(option) => {
                self.echo(option.duration).await
            }
            CommandOption::RecordingStart(option) => {
                Box::pin(self.flow_recording_start(option, variables)).await
            }
            CommandOption::RecordingStop(_) => match self.stop_recording().await {
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::Failed(format!("recording_stop: {e}")),
            },
            CommandOption::Amd(option) => self.amd(option).await,
            CommandOption::ExternalMediaStart(option) => {
                Box::pin(self.external_media_start(option)).await
            }
            CommandOption::ExternalMediaStop(_) => self.external_media_stop().await,
            CommandOption::TranscribeStart(option) => {
                Box::pin(self.transcribe_start(option, variables)).await
            }
            CommandOption::TranscribeStop(_) => self.transcribe_stop().await,
            CommandOption::Connect(option) => Box::pin(self.connect(step_key, option)).await,
            CommandOption::ConferenceJoin(option) => {
                self.conference_join("conference_join", option.conference_id.uuid())
                    .await
            }
            CommandOption::ConfbridgeJoin(option) => {
                self.conference_join("confbridge_join", option.confbridge_id.uuid())
                    .await
            }
            // VoIPBIN has no executor for `mute` (it is a no-op there) and the action has no
            // options, so muting here could never be undone by the flow: say so instead.
            CommandOption::Mute(_) => Outcome::Failed(
                "mute: the action has no executor in VoIPBIN; use POST /v1.0/calls/{id}/mute"
                    .into(),
            ),
            _ => Outcome::Failed(format!("{kind}: not a call action")),
        }
    }

    /// The reason a flow's `hangup` records: the referenced call's reason when it names one
    /// (VoIPBIN: `reference_id` overrides `reason`), else the reason given, else normal.
    fn hangup_reason(&self, reason: &str, reference: Option<Uuid>) -> String {
        if let Some(other) = reference
            && let Ok(Some(call)) = self.inner.rt.db().calls.get(other)
            && !call.hangup_reason.is_empty()
        {
            return call.hangup_reason;
        }
        if reason.is_empty() {
            "normal".to_owned()
        } else {
            reason.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::runner::Runner;

    /// The size of the future `f` returns, without making one.
    fn future_size<A, F: Future>(_: fn(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A call keeps its runner's future and its current action's future for as long as the
    /// action runs (an `echo` or a `play` for hours): at a thousand calls every kilobyte of
    /// them is a megabyte. What they are only for a moment (answering and its flow start,
    /// opening media, `connect`, a commit) is boxed so it does not set their size; these
    /// bounds (debug build, where futures are larger than in release) catch an await of a
    /// large future that slips back in. Before the boxing: echo 4,280 bytes, play 4,480,
    /// an action's future 5.7 K (connect's), the runner 4,088.
    #[test]
    fn the_futures_a_waiting_call_keeps_stay_small() {
        let echo = future_size(|c: LiveCall| async move { c.echo(0).await });
        let play =
            future_size(
                |c: LiveCall| async move { c.play_and_wait("play", Source::Beep, false).await },
            );
        let action = future_size(|(c, command): (LiveCall, Command)| async move {
            c.perform_inner(command, Uuid::nil(), indexmap::IndexMap::new())
                .await
        });
        let runner = future_size(|r: Runner| r.run());
        assert!(echo <= 1024, "echo's future is {echo} bytes");
        assert!(play <= 1024, "play's future is {play} bytes");
        assert!(action <= 2560, "an action's future is {action} bytes");
        assert!(runner <= 3584, "the runner's future is {runner} bytes");
    }
}
