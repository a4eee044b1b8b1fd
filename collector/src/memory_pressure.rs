//! Telling the allocator when memory is short.
//!
//! An allocator keeps freed memory for reuse, so resident memory stays at the high-water mark
//! of a burst long after the data is gone, and the memory limiter, which reads resident
//! memory, would go on refusing for memory nothing uses (measured in BENCHMARKS.md). The Go
//! collector's limiter forces a garbage collection past its soft limit; kotelcol's tells the
//! allocator, through a hook the binary installs (it owns the global allocator), to return
//! freed memory while resident memory is past a soft limit, and to go back to its cheaper
//! default once it is not.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static HOOK: OnceLock<fn(bool)> = OnceLock::new();
static UNDER_PRESSURE: AtomicBool = AtomicBool::new(false);

/// Installs what to call at each reading of resident memory past a soft limit (`true`) and
/// once when a reading is back under it (`false`). The first hook stays.
pub fn set_hook(hook: fn(bool)) {
    let _ = HOOK.set(hook);
}

/// Reports a reading of resident memory: whether it is past a soft limit. The hook hears every
/// reading past it (each may return memory) and the end of it once.
pub(crate) fn report(under_pressure: bool) {
    let was = UNDER_PRESSURE.swap(under_pressure, Ordering::Relaxed);
    if heard(was, under_pressure)
        && let Some(hook) = HOOK.get()
    {
        hook(under_pressure);
    }
}

/// Whether the hook hears a reading, given the one before.
fn heard(was_under_pressure: bool, under_pressure: bool) -> bool {
    under_pressure || was_under_pressure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_hears_every_reading_under_pressure_and_its_end_once() {
        let readings = [false, false, true, true, false, false, true];
        let mut was = false;
        let heard: Vec<bool> = readings
            .iter()
            .filter(|&&now| heard(std::mem::replace(&mut was, now), now))
            .copied()
            .collect();
        assert_eq!(heard, [true, true, false, true]);
    }
}
