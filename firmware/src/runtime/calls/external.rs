//! `external_media_start` / `external_media_stop` on a call: VoIPBIN's options checked
//! against what the gateway can do (RTP over UDP, G.711, as a client sending to
//! `external_host`), then the stream is started on the call's media session
//! ([`crate::media::external`]). Options the gateway cannot honour fail the action with a
//! reason naming the option, instead of streaming something else.
//!
//! The API's WebSocket media stream (`GET /v1.0/calls/{id}/media_stream`) starts here too:
//! the same taps, frames through channels to the API's WebSocket task.

use flowgate_flows::engine::Outcome;
use flowgate_flows::model::ExternalMediaStartOption;
use flowgate_sip::sdp::Codec;
use tracing::{debug, info};

use super::LiveCall;
use crate::media::{ExternalMediaOptions, MediaError, MediaStreamEnds, TapDirection};
use crate::runtime::RuntimeError;

/// The options of `external_media_start` the gateway can honour, host not yet resolved.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    host: String,
    codec: Codec,
    listen: Option<TapDirection>,
    speak: Option<TapDirection>,
}

/// Checks the options (VoIPBIN's defaults for empty ones: rtp, udp, client, ulaw).
/// `transport_data` has no meaning for RTP over UDP (Asterisk ignores it too) and `data`
/// is reserved, so both are ignored.
fn plan(o: &ExternalMediaStartOption) -> Result<Plan, String> {
    if o.external_host.trim().is_empty() {
        return Err("external_host is empty (host:port of the RTP receiver)".into());
    }
    match o.encapsulation.as_str() {
        "" | "rtp" => {}
        other => {
            return Err(format!(
                "encapsulation {other:?} is not supported: the gateway streams rtp only"
            ));
        }
    }
    match o.transport.as_str() {
        "" | "udp" => {}
        other => {
            return Err(format!(
                "transport {other:?} is not supported: the gateway streams RTP over udp only"
            ));
        }
    }
    match o.connection_type.as_str() {
        "" | "client" => {}
        other => {
            return Err(format!(
                "connection_type {other:?} is not supported: the gateway sends to external_host (client) only"
            ));
        }
    }
    let codec = match o.format.as_str() {
        "" | "ulaw" => Codec::Pcmu,
        "alaw" => Codec::Pcma,
        other => {
            return Err(format!(
                "format {other:?} is not supported: the gateway streams ulaw or alaw (G.711, 8 kHz)"
            ));
        }
    };
    let listen =
        TapDirection::parse("direction_listen", &o.direction_listen).map_err(|e| e.to_string())?;
    let speak =
        TapDirection::parse("direction_speak", &o.direction_speak).map_err(|e| e.to_string())?;
    if listen.is_none() && speak.is_none() {
        return Err(
            "direction_listen and direction_speak are both empty: nothing would be streamed \
             (set either to in, out or both)"
                .into(),
        );
    }
    Ok(Plan {
        host: o.external_host.trim().to_owned(),
        codec,
        listen,
        speak,
    })
}

impl LiveCall {
    /// `external_media_start`: answers the call if needed (like the other media actions),
    /// then streams; the flow goes on at once (VoIPBIN: next immediately).
    pub(super) async fn external_media_start(&self, option: ExternalMediaStartOption) -> Outcome {
        let fail = |why: String| Outcome::Failed(format!("external_media_start: {why}"));
        let plan = match plan(&option) {
            Ok(p) => p,
            Err(why) => return fail(why),
        };
        // A name is resolved like any host name on the LAN; the first address is used.
        let host = match tokio::net::lookup_host(plan.host.as_str()).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => a,
                None => return fail(format!("external_host {:?} has no address", plan.host)),
            },
            Err(e) => {
                return fail(format!(
                    "external_host {:?} is not host:port or cannot be resolved: {e}",
                    plan.host
                ));
            }
        };
        let media = match self.media().await {
            Ok(m) => m,
            Err(e) => return fail(e.to_string()),
        };
        let options = ExternalMediaOptions {
            host,
            codec: plan.codec,
            listen: plan.listen,
            speak: plan.speak,
        };
        match media.start_external(options).await {
            Ok(started) => {
                debug!(call = %self.inner.id, external_media = %started.id, %host, local = %started.local, "external media streaming");
                Outcome::Done
            }
            Err(e) => fail(e.to_string()),
        }
    }

    /// `GET /v1.0/calls/{id}/media_stream`: a WebSocket client's stream on the call's media
    /// session (answered first, as `talk` is).
    pub(crate) async fn media_stream(&self) -> Result<MediaStreamEnds, RuntimeError> {
        let media = self.media().await?;
        media.start_media_stream().await.map_err(|e| match e {
            MediaError::InvalidOption { .. } => {
                RuntimeError::TooManyStreams(self.inner.id, crate::media::external::MAX_PER_CALL)
            }
            other => RuntimeError::NoAudio(self.inner.id, other.to_string()),
        })
    }

    /// `external_media_stop`: stops every stream of the call (as VoIPBIN does). A call
    /// without streams is not an error there either.
    pub(super) async fn external_media_stop(&self) -> Outcome {
        let Some(media) = self.open_media_session() else {
            return Outcome::Done;
        };
        match media.stop_external(None).await {
            Ok(n) => {
                info!(call = %self.inner.id, streams = n, "external media stopped");
                Outcome::Done
            }
            // The session ended: its streams ended with it.
            Err(_) => Outcome::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(f: impl FnOnce(&mut ExternalMediaStartOption)) -> ExternalMediaStartOption {
        let mut o = ExternalMediaStartOption {
            external_host: "192.0.2.1:7000".into(),
            direction_listen: "in".into(),
            ..ExternalMediaStartOption::default()
        };
        f(&mut o);
        o
    }

    #[test]
    fn voipbin_defaults_are_rtp_udp_client_ulaw() {
        let p = plan(&option(|_| {})).unwrap();
        assert_eq!(p.codec, Codec::Pcmu);
        assert_eq!(p.listen, Some(TapDirection::In));
        assert_eq!(p.speak, None);
        let p = plan(&option(|o| {
            o.encapsulation = "rtp".into();
            o.transport = "udp".into();
            o.connection_type = "client".into();
            o.format = "alaw".into();
            o.transport_data = "ignored".into();
        }))
        .unwrap();
        assert_eq!(p.codec, Codec::Pcma);
    }

    #[test]
    fn what_the_gateway_cannot_do_is_named() {
        type Tweak = fn(&mut ExternalMediaStartOption);
        let cases: [(Tweak, &str); 7] = [
            (|o| o.encapsulation = "audiosocket".into(), "encapsulation"),
            (|o| o.transport = "websocket".into(), "transport"),
            (|o| o.transport = "tcp".into(), "transport"),
            (|o| o.connection_type = "server".into(), "connection_type"),
            (|o| o.format = "slin16".into(), "format"),
            (|o| o.direction_speak = "sideways".into(), "direction_speak"),
            (|o| o.direction_listen = String::new(), "both empty"),
        ];
        for (tweak, word) in cases {
            let err = plan(&option(tweak)).unwrap_err();
            assert!(err.contains(word), "{err}");
        }
        assert!(plan(&option(|o| o.external_host = " ".into())).is_err());
    }
}
