//! Flowgate: the gateway daemon and its CLI.
//!
//! # Layout
//!
//! - [`config`]: the daemon configuration (one serde struct, validated).
//! - [`store`]: sled — flows, number bindings, activeflows, calls, messages, the event log.
pub mod config;
pub mod store;
