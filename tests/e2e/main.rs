//! End-to-end tests: the real daemon on the simulated board, driven through its API.

#![allow(clippy::unwrap_used, reason = "tests")]

/// The LAN admin page: sessions, CSRF, page weight; the browser test in chromium.
mod admin;
/// `amd`: a person or a machine answers.
mod amd;
/// Analog ports: a phone dialling an IVR, a landline connected to a mobile.
mod analog;
/// API hygiene: tokens, bad bodies.
mod api;
/// Audio: prompts heard, in-band digits, recordings, interrupts.
mod audio;
/// Calls: IVR with DTMF, interrupts.
mod calls;
/// `conference_join`: three calls mixed, mute through the API, leaving one by one.
mod conference;
/// `connect`: calls forwarded between two modems, audio, digits, hang-ups, fail-over.
mod connect;
/// Crash safety: kill -9 during an SMS burst.
mod crash;
/// `email_send` against a real SMTP server.
mod email;
/// External media: a call's audio as RTP to a LAN host and back, stop, end with the call.
mod external_media;
/// `fetch`: every method validation admits.
mod fetch;
/// Hostile input: bounded work per request, connection limits, strict bodies.
mod hostile;
/// The Yocto layer: oelint-adv, crate list, unit, udev rules, shell scripts.
mod layer;
/// The WebSocket media stream: listeners hear the caller exactly, speak to it, refusals.
mod media_stream;
/// `queue_join`: a GSM caller waits, hears the wait flow, is put through to a SIP agent;
/// wait timeout and kick.
mod queue;
/// The API against its OpenAPI document, by schemathesis.
mod schemathesis;
/// SIP: calls from SIPp into flows, GSM calls connected to SIP, toll-fraud refusal.
mod sip;
/// SMS: the keyword bot, API-triggered notifications.
mod sms;
/// Under a service manager: READY, watchdog pings tied to store writes, STOPPING.
mod systemd;
/// `transcribe_*` against a real recogniser (pocketsphinx behind the OpenAI shape).
mod transcribe;
