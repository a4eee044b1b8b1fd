//! kotel-filelog (being written).
