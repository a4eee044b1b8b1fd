//! kotel-k8sattributes (being written).
