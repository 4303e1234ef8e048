//! Write-behind persistence of bindings and device state.
//!
//! The core task never waits on the database: it queues operations here, and this task applies them in batches
//! (one transaction per batch), so a burst of 10,000 REGISTERs costs a few dozen commits (the store itself
//! folds repeated upserts of one binding within a batch into one). A failed batch is retried with back-off, never dropped while
//! the daemon runs; at shutdown the queue is drained before the process exits, so a clean restart loses nothing.

use std::sync::Arc;
use std::time::Duration;

use switchboard_storage::{ActiveCallOp, BindingOp, DeviceState, NewCdr, Store};
use tokio::sync::mpsc;

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // queued and consumed at once; boxing would add an allocation per REGISTER
pub enum WriteOp {
    Binding(BindingOp),
    State(DeviceState),
    /// A call started, was answered or ended (`switchboard calls`).
    Active(ActiveCallOp),
    Cdr(NewCdr),
}

const BATCH: usize = 2000;
const LINGER: Duration = Duration::from_millis(10);

/// Runs until every sender is dropped and the queue is empty.
pub async fn run(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<WriteOp>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // A short linger gathers what follows into the same transaction: under a steady trickle (calls, each
        // with a CDR) this turns hundreds of tiny commits a second into a few dozen.
        if batch.len() < BATCH && !rx.is_closed() {
            tokio::time::sleep(LINGER).await;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
        }
        let mut bindings: Vec<BindingOp> = Vec::with_capacity(batch.len());
        let mut states = Vec::new();
        let mut calls = Vec::new();
        let mut cdrs = Vec::new();
        for op in batch.drain(..) {
            match op {
                WriteOp::Binding(b) => bindings.push(b),
                WriteOp::State(s) => states.push(s),
                WriteOp::Active(a) => calls.push(a),
                WriteOp::Cdr(c) => cdrs.push(c),
            }
        }
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        for attempt in 1.. {
            match apply(store.as_ref(), &bindings, &states, &calls).await {
                Ok(()) => {
                    tracing::debug!(ops = bindings.len(), states = states.len(), queued = rx.len(), took = ?started.elapsed(), "persisted");
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt, ops = bindings.len(), "persisting bindings failed; retrying");
                    if rx.is_closed() && attempt >= 5 {
                        tracing::error!(ops = bindings.len(), "giving up on persisting bindings at shutdown");
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if !cdrs.is_empty() {
            write_cdrs(store.as_ref(), cdrs).await;
        }
    }
}

async fn apply(
    store: &dyn Store,
    bindings: &[BindingOp],
    states: &[DeviceState],
    calls: &[ActiveCallOp],
) -> switchboard_storage::Result<()> {
    if !bindings.is_empty() {
        store.apply_bindings(bindings).await?;
    }
    for s in states {
        store.set_device_state(s).await?;
    }
    if !calls.is_empty() {
        store.apply_active_calls(calls).await?;
    }
    Ok(())
}

/// Inserts a batch of CDRs, retrying a failing batch a few times; then each record on its own, so one record the
/// database refuses (its service deleted mid-call) cannot hold up the others. A record that still fails is logged
/// whole at error level rather than dropped silently.
async fn write_cdrs(store: &dyn Store, cdrs: Vec<NewCdr>) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=3 {
        match store.insert_cdrs(&cdrs).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, attempt, records = cdrs.len(), "writing call records failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
    for cdr in cdrs {
        if let Err(e) = store.insert_cdrs(std::slice::from_ref(&cdr)).await {
            tracing::error!(error = %e, record = ?cdr, "call record could not be written");
        }
    }
}
