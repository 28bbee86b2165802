//! End-to-end tests: the real daemon on the simulated board, driven through its API.

#![allow(clippy::unwrap_used, reason = "tests")]

/// API hygiene: tokens, bad bodies.
mod api;
/// Audio: prompts heard, in-band digits, recordings, interrupts.
mod audio;
/// Calls: IVR with DTMF, interrupts.
mod calls;
/// `connect`: calls forwarded between two modems, audio, digits, hang-ups, fail-over.
mod connect;
/// Crash safety: kill -9 during an SMS burst.
mod crash;
/// The Yocto layer: oelint-adv, crate list, unit, udev rules, shell scripts.
mod layer;
/// SMS: the keyword bot, API-triggered notifications.
mod sms;
/// Under a service manager: READY, watchdog pings tied to store writes, STOPPING.
mod systemd;
