//! Flowgate: the gateway daemon and its CLI.
//!
//! # Layout
//!
//! - [`api`]: the axum LAN API.
//! - [`cli`]: the `flowgate` command line (the only user of `anyhow`).
//! - [`config`]: the daemon configuration (one serde struct, validated).
//! - [`daemon`]: `flowgate run` — board, runtime, API, shutdown.
//! - [`media`]: call audio — ALSA and serial-PCM ports, TTS, play, record, DTMF.
//! - [`analog`]: the board's FXS/FXO ports as lines, with `[analog]` applied.
//! - [`metrics`]: counters and gauges for Prometheus.
//! - [`model`]: the gateway's records (numbers, calls, messages, recordings).
//! - [`sip`]: the SIP user agent as the `sip` line, the demo extension, registration events.
//! - [`runtime`]: runs activeflows on calls, messages and API requests.
//! - [`store`]: sled — flows, number bindings, activeflows, calls, messages, the event log.
//! - [`sync`]: controller sync — event webhooks, log retention, the revisioned flow set.
pub mod analog;
pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod media;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod runtime;
pub mod sip;
pub mod store;
pub mod sync;
pub mod tls;
