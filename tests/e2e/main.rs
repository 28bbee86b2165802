//! End-to-end tests: the real daemon on the simulated board, driven through its API.

#![allow(clippy::unwrap_used, reason = "tests")]

/// SMS: the keyword bot, API-triggered notifications.
mod sms;
/// Calls: IVR with DTMF, interrupts.
mod calls;
/// API hygiene: tokens, bad bodies.
mod api;
/// Crash safety: kill -9 during an SMS burst.
mod crash;
/// Audio: prompts heard, in-band digits, recordings, interrupts.
mod audio;
