//! kotel-kubeletstats (being written).
