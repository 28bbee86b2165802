//! Simulated hardware.
