//! The LAN API: VoIPBIN-shaped resources under `/v1.0`, gateway resources under
//! `/v1.0/gateway`, OpenAPI at `/v1.0/openapi.json`.

pub mod auth;
pub mod error;
