//! Parsers that need more than a field path: the container log formats.

pub mod container;
