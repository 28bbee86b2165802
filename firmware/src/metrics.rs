//! Process-wide counters and gauges, rendered in the Prometheus text format at
//! `GET /v1.0/gateway/metrics`.
//!
//! A fixed set of atomics rather than a metrics crate: the set is small and known, the
//! board is small, and the text format is a few lines of code.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

macro_rules! metrics {
    ($( $field:ident : $kind:ident = $help:literal ),* $(,)?) => {
        /// Every metric the gateway exports.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(
                #[doc = $help]
                pub $field: metrics!(@type $kind),
            )*
        }

        impl Metrics {
            /// Renders all metrics in the Prometheus text exposition format.
            pub fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let _ = writeln!(out, "# HELP flowgate_{} {}", stringify!($field), $help);
                    let _ = writeln!(out, "# TYPE flowgate_{} {}", stringify!($field), stringify!($kind));
                    let _ = writeln!(out, "flowgate_{} {}", stringify!($field), self.$field.load(Ordering::Relaxed));
                )*
                out
            }
        }
    };
    (@type counter) => { AtomicU64 };
    (@type gauge) => { AtomicI64 };
}

metrics! {
    activeflows_started_total: counter = "Activeflows started.",
    activeflows_ended_total: counter = "Activeflows ended.",
    activeflows_running: gauge = "Activeflows currently running.",
    actions_executed_total: counter = "Flow actions that reached the runtime.",
    sms_received_total: counter = "SMS received and stored.",
    sms_duplicates_total: counter = "SMS the modem delivered again after a restart (ignored).",
    sms_sent_total: counter = "SMS parts accepted by a modem.",
    sms_failed_total: counter = "SMS that failed after every attempt.",
    calls_incoming_total: counter = "Incoming calls.",
    calls_outgoing_total: counter = "Outgoing calls dialled.",
    calls_active: gauge = "Calls currently up.",
    api_requests_total: counter = "API requests served.",
    webhook_deliveries_total: counter = "Webhook deliveries that succeeded.",
    webhook_failures_total: counter = "Webhook delivery attempts that failed.",
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves a gauge by `delta`.
    pub fn add(gauge: &AtomicI64, delta: i64) {
        gauge.fetch_add(delta, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.sms_received_total);
        Metrics::add(&m.calls_active, 2);
        let text = m.render();
        assert!(text.contains(
            "# TYPE flowgate_sms_received_total counter\nflowgate_sms_received_total 1\n"
        ));
        assert!(text.contains("flowgate_calls_active 2\n"));
    }
}
