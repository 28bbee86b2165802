//! Keeping controllers in sync with the gateway: event webhooks, event-log retention, and
//! the revisioned flow set behind `/v1.0/gateway/sync/flows`.
//!
//! # Layout
//!
//! - [`flowset`]: every flow change (API CRUD and whole-set import/export) with the set's
//!   revision, so concurrent changes are detected (`ETag` / `If-Match`).
//! - [`webhooks`]: delivery of the persistent event log to configured targets (in order,
//!   retried with backoff, cursor persisted) and to each activeflow's own `webhook_uri`.
//! - [`retention`]: pruning the event log without losing undelivered events, record retention
//!   by age and count, and the disk budget (`[data] max_disk_mib`).
//!
//! The daemon calls [`spawn_webhooks`] once after the runtime has started.

pub mod flowset;
pub mod retention;
pub mod webhooks;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, WebhookTarget};
use crate::runtime::Runtime;
use webhooks::{
    ACTIVEFLOW_HOOKS_CURSOR, ActiveflowHooks, DeliveryOptions, TargetWorker, cursor_key,
};

/// Starts a delivery task per `[[webhooks]]` target, the per-activeflow webhook follower, the
/// event-log retention task and the disk-budget task, all tracked by the runtime (so its
/// shutdown waits for them) and stopped by `cancel`.
pub fn spawn_webhooks(runtime: &Runtime, config: &Config, cancel: CancellationToken) {
    spawn_with(
        runtime,
        &config.webhooks,
        config.data.event_retention,
        DeliveryOptions::default(),
        cancel.clone(),
    );
    let options =
        retention::BudgetOptions::from_config(&config.data, cursor_keys(&config.webhooks));
    runtime.spawn(retention::run_budget(runtime.db().clone(), options, cancel));
}

/// The meta keys of every webhook cursor: the configured targets' and the per-activeflow
/// follower's (events they have not received are never pruned).
pub fn cursor_keys(targets: &[WebhookTarget]) -> Vec<String> {
    let mut keys: Vec<String> = (0..targets.len()).map(|i| cursor_key(targets, i)).collect();
    keys.push(ACTIVEFLOW_HOOKS_CURSOR.to_owned());
    keys
}

/// [`spawn_webhooks`] with explicit targets, retention and delivery options.
pub fn spawn_with(
    runtime: &Runtime,
    targets: &[WebhookTarget],
    retention: u64,
    options: DeliveryOptions,
    cancel: CancellationToken,
) {
    let db = runtime.db();
    let mut keys = Vec::with_capacity(targets.len() + 1);
    for (i, target) in targets.iter().enumerate() {
        let key = cursor_key(targets, i);
        keys.push(key.clone());
        let worker = TargetWorker::new(
            db.store.clone(),
            runtime.http().clone(),
            target.clone(),
            key,
            options.clone(),
            runtime.metrics().clone(),
        );
        runtime.spawn(worker.run(cancel.clone()));
    }
    keys.push(ACTIVEFLOW_HOOKS_CURSOR.to_owned());
    let hooks = ActiveflowHooks::new(
        db.clone(),
        runtime.http().clone(),
        options,
        runtime.metrics().clone(),
    );
    runtime.spawn(hooks.run(cancel.clone()));
    runtime.spawn(retention::run(db.store.clone(), retention, keys, cancel));
}
