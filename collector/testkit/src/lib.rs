//! kotel-testkit: what the workspace's test suites share.
//!
//! Tests never assert timings: they wait for a state with a generous bound (a liveness bound)
//! and fail naming what never happened.

pub mod proxy;

use std::time::Duration;

use tokio::time::{Instant, sleep};

/// The bound most waits use.
pub const LIVENESS: Duration = Duration::from_secs(60);

/// How often to look: often enough for fast tests, gently for slow ones.
fn every(within: Duration) -> Duration {
    (within / 300).clamp(Duration::from_millis(10), Duration::from_millis(300))
}

/// Polls `f` until it yields `Some`, and returns that; panics naming `what` after `within`.
pub async fn wait_for<T, Fut>(what: &str, within: Duration, mut f: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {within:?} waiting for {what}"
        );
        sleep(every(within)).await;
    }
}

/// Polls `cond` until it holds; panics naming `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    wait_for(what, within, || std::future::ready(cond().then_some(()))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_what_was_waited_for() {
        let mut n = 0;
        let got = wait_for("the third look", LIVENESS, || {
            n += 1;
            std::future::ready((n == 3).then_some(n))
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for a state that never comes")]
    async fn names_what_never_happened() {
        wait_until(
            "a state that never comes",
            Duration::from_millis(30),
            || false,
        )
        .await;
    }
}
