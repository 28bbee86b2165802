//! Test support shared by the SIP crate's tests and the end-to-end tests: the real
//! third-party peers (SIPp, baresip, kamailio) started on free loopback ports.
//!
//! A port found free by binding and releasing it can be taken by another test before the
//! peer binds it. The peer then fails to start, and a test that goes on waits for a peer
//! that is not there. So every launcher here waits until the process holds its ports
//! (its sockets seen in `/proc`), and starts it again on new ports when it could not
//! bind them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failure to start a peer fails the test that asked for it"
)]

pub mod baresip;
pub mod kamailio;
pub mod ports;
pub mod sipp;
