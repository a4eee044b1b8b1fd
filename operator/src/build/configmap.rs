//! The content-addressed collector ConfigMap.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::namespaced_meta;
use crate::names::CONFIG_KEY;
use crate::validate::Validated;

pub fn config_map(v: &Validated) -> ConfigMap {
    ConfigMap {
        metadata: namespaced_meta(v, v.names.config_map(&v.config_hash)),
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_string(),
            v.config_yaml.clone(),
        )])),
        ..Default::default()
    }
}
