//! Small serde helpers for upstream's config conventions.

use serde::{Deserialize, Deserializer};

/// For `Option<T>` fields where a key present with no value (`grpc:`) means "enabled with
/// defaults" and an absent key means "off". Use with `#[serde(default, deserialize_with = …)]`.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}
