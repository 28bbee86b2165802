//! Flowgate: the gateway daemon and its CLI.
//!
//! # Layout
//!
//! - [`api`]: the axum LAN API.
//! - [`config`]: the daemon configuration (one serde struct, validated).
//! - [`metrics`]: counters and gauges for Prometheus.
//! - [`model`]: the gateway's records (numbers, calls, messages, recordings).
//! - [`store`]: sled — flows, number bindings, activeflows, calls, messages, the event log.
pub mod api;
pub mod config;
pub mod metrics;
pub mod model;
pub mod store;
