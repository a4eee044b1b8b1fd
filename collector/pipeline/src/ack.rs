//! Delivery acknowledgements: how a receiver learns that data it handed on has left the
//! collector (sent, or durably queued), so it can move its own checkpoint only past what is safe.
//!
//! A receiver that cares makes a pair: the [`Acks`] ride in the [`crate::Envelope`] through
//! every stage (copied to every exporter of a fan-out, carried into whatever batch the data is
//! merged into, and into every piece of a split), and the receiver keeps the [`AckWait`]. When the
//! last holder lets go, the wait resolves: `true` if no holder reported a failure. A stage that
//! drops data for good calls [`Acks::fail`] first; an exporter that sent it just lets go.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;

/// One receiver hand-off: fires when every holder is gone.
struct Token {
    failed: AtomicBool,
    tx: std::sync::Mutex<Option<oneshot::Sender<bool>>>,
}

impl Drop for Token {
    fn drop(&mut self) {
        let tx = self.tx.get_mut().map(Option::take).unwrap_or(None);
        if let Some(tx) = tx {
            let _ = tx.send(!self.failed.load(Ordering::Relaxed));
        }
    }
}

/// The acknowledgements an envelope carries; empty (and free) for receivers that ask none.
#[derive(Clone, Default)]
pub struct Acks(Vec<Arc<Token>>);

impl Acks {
    /// A new acknowledgement and the receiver's end of it.
    pub fn pair() -> (Acks, AckWait) {
        let (tx, rx) = oneshot::channel();
        let token = Token {
            failed: AtomicBool::new(false),
            tx: std::sync::Mutex::new(Some(tx)),
        };
        (Acks(vec![Arc::new(token)]), AckWait(rx))
    }

    /// Carries `other`'s acknowledgements too (data merged into a batch).
    pub fn merge(&mut self, other: Acks) {
        self.0.extend(other.0);
    }

    /// The data is dropped for good: each receiver hears `false`.
    pub fn fail(&self) {
        for t in &self.0 {
            t.failed.store(true, Ordering::Relaxed);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Acks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Acks({})", self.0.len())
    }
}

/// Envelopes compare by their data; who waits for them is not part of it.
impl PartialEq for Acks {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The receiver's end: resolves when every copy of the data is delivered or dropped.
pub struct AckWait(oneshot::Receiver<bool>);

impl AckWait {
    /// `Some(delivered)` once settled, `None` while any copy is still on its way.
    pub fn settled(&mut self) -> Option<bool> {
        match self.0.try_recv() {
            Ok(delivered) => Some(delivered),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_when_the_last_copy_goes_and_reports_failure() {
        let (acks, mut wait) = Acks::pair();
        let copy = acks.clone();
        let mut batch = Acks::default();
        batch.merge(acks);
        assert_eq!(wait.settled(), None);
        drop(batch);
        assert_eq!(wait.settled(), None, "a fan-out copy is still on its way");
        drop(copy);
        assert_eq!(wait.settled(), Some(true));

        let (acks, mut wait) = Acks::pair();
        let copy = acks.clone();
        copy.fail();
        drop(copy);
        assert_eq!(wait.settled(), None);
        drop(acks);
        assert_eq!(wait.settled(), Some(false));
    }
}
