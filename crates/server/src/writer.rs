//! Write-behind persistence of bindings and device state.
//!
//! The event loop does not wait on the database: it queues operations here, and this task applies them in batches
//! (one transaction per batch), so a burst of 10,000 REGISTERs costs a few dozen commits (the store itself
//! folds repeated upserts of one binding within a batch into one). A failed batch is retried with back-off, never
//! dropped while the daemon runs; at shutdown the queue is drained before the process exits, so a clean restart
//! loses nothing.
//!
//! The queue is bounded ([`QUEUE`] operations). Nothing is ever dropped to stay inside it: when the database falls
//! that far behind, the event loop keeps what it could not queue in order ([`WriteQueue`]) and stops taking new SIP
//! messages until the writer has room again. Those messages then wait in the inbound queue, which is exactly
//! what the overload control measures: a slow database turns into 503s for new requests, not into memory
//! growth or lost registrations.

use std::sync::Arc;
use std::time::Duration;

use switchboard_storage::{ActiveCallOp, BindingOp, DeviceAuth, DeviceState, NewCdr, Store};
use tokio::sync::mpsc;

/// What the engine asks the store to keep.
pub use switchboard_engine::Persist as WriteOp;

const BATCH: usize = 2000;
const LINGER: Duration = Duration::from_millis(10);
/// Operations queued for the writer at most.
pub const QUEUE: usize = 65_536;

/// The event loop's end of the write-behind queue: sends without waiting while there is room, and keeps, in order,
/// what did not fit until [`WriteQueue::drain`] can wait for room.
#[derive(Debug)]
pub struct WriteQueue {
    tx: mpsc::Sender<WriteOp>,
    backlog: std::collections::VecDeque<WriteOp>,
    stalls: u64,
}

impl WriteQueue {
    pub fn new(tx: mpsc::Sender<WriteOp>) -> Self {
        WriteQueue { tx, backlog: std::collections::VecDeque::new(), stalls: 0 }
    }

    /// Queues `op` behind everything queued before it.
    pub fn push(&mut self, op: WriteOp) {
        if !self.backlog.is_empty() {
            return self.backlog.push_back(op);
        }
        match self.tx.try_send(op) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(op)) => {
                self.stalls += 1;
                tracing::warn!(queued = QUEUE, "the database is falling behind; SIP waits for the write-behind");
                self.backlog.push_back(op);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("write-behind queue closed; change not persisted");
            }
        }
    }

    /// Whether operations wait for room; the event loop then calls [`WriteQueue::drain`] before taking more work.
    pub fn is_backed_up(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Waits until everything kept back is queued.
    pub async fn drain(&mut self) {
        while let Some(op) = self.backlog.pop_front() {
            if self.tx.send(op).await.is_err() {
                tracing::error!("write-behind queue closed; change not persisted");
                self.backlog.clear();
            }
        }
    }

    /// Operations waiting to be written (queued and kept back).
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity() + self.backlog.len()
    }

    /// How often the queue was full since start.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }
}

/// Runs until every sender is dropped and the queue is empty.
pub async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<WriteOp>) {
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
        let mut auths = Vec::new();
        for op in batch.drain(..) {
            match op {
                WriteOp::Binding(b) => bindings.push(b),
                WriteOp::State(s) => states.push(s),
                WriteOp::Active(a) => calls.push(a),
                WriteOp::Cdr(c) => cdrs.push(c),
                WriteOp::Auth(a) => auths.push(a),
            }
        }
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        for attempt in 1.. {
            match apply(store.as_ref(), &bindings, &states, &calls, &auths).await {
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
    auths: &[DeviceAuth],
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
    store.set_device_auths(auths).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_storage::DeviceState;

    fn state(id: i64) -> WriteOp {
        WriteOp::State(DeviceState { device_id: id, online: true, since: 0 })
    }

    fn id(op: &WriteOp) -> i64 {
        match op {
            WriteOp::State(s) => s.device_id,
            _ => -1,
        }
    }

    /// A full queue keeps what did not fit, in order, behind what did; nothing is dropped, and draining waits for
    /// the writer.
    #[tokio::test]
    async fn a_full_queue_keeps_order_and_drops_nothing() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut q = WriteQueue::new(tx);
        for i in 0..5 {
            q.push(state(i));
        }
        assert!(q.is_backed_up());
        assert_eq!((q.depth(), q.stalls()), (5, 1));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(op) = rx.recv().await {
                got.push(id(&op));
            }
            got
        });
        q.drain().await;
        assert!(!q.is_backed_up());
        q.push(state(5));
        drop(q);
        assert_eq!(reader.await.unwrap(), vec![0, 1, 2, 3, 4, 5]);
    }
}
