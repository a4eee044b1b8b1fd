//! Telling the allocator when memory is short.
//!
//! An allocator keeps freed memory for reuse, so resident memory stays at the high-water mark
//! of a burst long after the data is gone, and the memory limiter, which reads resident
//! memory, would go on refusing for memory nothing uses (measured in BENCHMARKS.md). The Go
//! collector's limiter forces a garbage collection past its soft limit; kotelcol's tells the
//! allocator, through a hook the binary installs (it owns the global allocator), to return
//! freed memory at once while resident memory is past a soft limit, and to go back to its
//! cheaper default once it is not.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static HOOK: OnceLock<fn(bool)> = OnceLock::new();
static UNDER_PRESSURE: AtomicBool = AtomicBool::new(false);

/// Installs what to call when memory becomes short (`true`) and when it no longer is
/// (`false`). The first hook stays.
pub fn set_hook(hook: fn(bool)) {
    let _ = HOOK.set(hook);
}

/// Reports whether resident memory is past a soft limit now; the hook hears only changes.
pub(crate) fn report(under_pressure: bool) {
    if UNDER_PRESSURE.load(Ordering::Relaxed) != under_pressure
        && UNDER_PRESSURE.swap(under_pressure, Ordering::Relaxed) != under_pressure
        && let Some(hook) = HOOK.get()
    {
        hook(under_pressure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static LAST: AtomicBool = AtomicBool::new(false);

    fn hook(short: bool) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        LAST.store(short, Ordering::SeqCst);
    }

    #[test]
    fn the_hook_hears_each_change_once() {
        set_hook(hook);
        for short in [true, true, true, false, false, true] {
            report(short);
        }
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
        assert!(LAST.load(Ordering::SeqCst));
        report(false);
    }
}
