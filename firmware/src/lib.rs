//! Flowgate: the gateway daemon and its CLI.
//!
//! # Layout
//!
//! - [`store`]: sled — flows, number bindings, activeflows, calls, messages, the event log.
pub mod store;
