//! The user agent: the tokio shell around the sans-IO cores.

pub mod registrar;
pub mod security;
