//! An in-memory fake of the Kubernetes API for tests: objects by path, every call recorded,
//! server-side apply, merge patch, create, replace (with resourceVersion checks), delete and
//! label-selected lists.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// A call the operator made: method and path (no query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub path: String,
}

impl Call {
    pub fn writes(&self) -> bool {
        self.method != Method::GET
    }
}

/// The fake API server: objects by path, every call recorded, optional injected failures.
#[derive(Default)]
pub struct Fake {
    pub objects: Mutex<BTreeMap<String, Value>>,
    pub calls: Mutex<Vec<Call>>,
    /// (method, path suffix) that answers 500.
    pub fail: Mutex<Option<(Method, String)>>,
    pub clock: Mutex<u64>,
    /// A path whose next GET is followed by another writer's update (a lost race).
    pub race_after_get: Mutex<Option<String>>,
}

fn conflict(message: &str) -> (StatusCode, Value) {
    (
        StatusCode::CONFLICT,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": "Conflict", "code": 409}),
    )
}

pub fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "not found", "reason": "NotFound", "code": 404}),
    )
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn matches_selector(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').expect("equality selector");
        obj["metadata"]["labels"][k].as_str() == Some(v)
    })
}

impl Fake {
    pub fn put(&self, path: &str, obj: Value) {
        self.objects.lock().unwrap().insert(path.to_string(), obj);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.objects.lock().unwrap().get(path).cloned()
    }

    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    pub fn tick(&self) -> u64 {
        let mut c = self.clock.lock().unwrap();
        *c += 1;
        *c
    }

    pub fn stamp(&self, obj: &mut Value, existing: Option<&Value>) {
        let t = self.tick();
        let meta = &mut obj["metadata"];
        match existing {
            Some(e) => {
                meta["creationTimestamp"] = e["metadata"]["creationTimestamp"].clone();
                meta["uid"] = e["metadata"]["uid"].clone();
            }
            None => {
                meta["creationTimestamp"] =
                    json!(format!("2026-01-01T00:{:02}:{:02}Z", t / 60, t % 60));
                meta["uid"] = json!(format!("uid-{t}"));
            }
        }
        meta["resourceVersion"] = json!(t.to_string());
    }

    pub fn handle(
        &self,
        method: Method,
        uri: &str,
        content_type: &str,
        body: &[u8],
    ) -> (StatusCode, Value) {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        self.calls.lock().unwrap().push(Call {
            method: method.clone(),
            path: path.to_string(),
        });
        if let Some((m, suffix)) = self.fail.lock().unwrap().as_ref()
            && *m == method
            && path.ends_with(suffix.as_str())
        {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "injected failure", "reason": "InternalError", "code": 500}),
            );
        }
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body).expect("JSON request body")
        };
        let mut objects = self.objects.lock().unwrap();
        match method {
            Method::GET => {
                if let Some(obj) = objects.get(path).cloned() {
                    if self
                        .race_after_get
                        .lock()
                        .unwrap()
                        .take_if(|p| p == path)
                        .is_some()
                    {
                        let mut bumped = obj.clone();
                        bumped["metadata"]["resourceVersion"] = json!("raced");
                        objects.insert(path.to_string(), bumped);
                    }
                    return (StatusCode::OK, obj);
                }
                let selector = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("labelSelector="))
                    .map(percent_decode);
                let prefix = format!("{path}/");
                let items: Vec<Value> = objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                    .map(|(_, v)| v.clone())
                    .filter(|v| selector.as_deref().is_none_or(|s| matches_selector(v, s)))
                    .collect();
                let is_collection = path.rsplit('/').next().is_some_and(|last| {
                    ["configmaps", "services", "daemonsets", "serviceaccounts"].contains(&last)
                });
                if is_collection {
                    (
                        StatusCode::OK,
                        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                    )
                } else {
                    not_found()
                }
            }
            Method::PATCH => {
                if let Some(parent) = path.strip_suffix("/status") {
                    let Some(obj) = objects.get_mut(parent) else {
                        return not_found();
                    };
                    obj["status"] = body["status"].clone();
                    return (StatusCode::OK, obj.clone());
                }
                if content_type.starts_with("application/merge-patch") {
                    let Some(obj) = objects.get_mut(path) else {
                        return not_found();
                    };
                    let expected = body["metadata"]["resourceVersion"].clone();
                    if !expected.is_null() && expected != obj["metadata"]["resourceVersion"] {
                        return (
                            StatusCode::CONFLICT,
                            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "conflict", "reason": "Conflict", "code": 409}),
                        );
                    }
                    let mut patch = body.clone();
                    patch["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .remove("resourceVersion");
                    merge(obj, &patch);
                    let mut updated = obj.clone();
                    drop(objects);
                    let t = self.tick();
                    updated["metadata"]["resourceVersion"] = json!(t.to_string());
                    self.put(path, updated.clone());
                    return (StatusCode::OK, updated);
                }
                // Server-side apply: the applied configuration replaces our fields.
                assert!(
                    content_type.starts_with("application/apply-patch"),
                    "{content_type}"
                );
                let existing = objects.get(path).cloned();
                let mut obj = body.clone();
                if let Some(e) = &existing {
                    obj["status"] = e["status"].clone();
                    if obj["status"].is_null() {
                        obj.as_object_mut().unwrap().remove("status");
                    }
                    obj["metadata"]["generation"] =
                        json!(e["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
                } else {
                    obj["metadata"]["generation"] = json!(1);
                }
                drop(objects);
                self.stamp(&mut obj, existing.as_ref());
                self.put(path, obj.clone());
                (StatusCode::OK, obj)
            }
            Method::DELETE => match objects.remove(path) {
                Some(obj) => (StatusCode::OK, obj),
                None => not_found(),
            },
            Method::POST if path.contains("/events") => (StatusCode::CREATED, body),
            Method::POST => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .expect("named object")
                    .to_string();
                let key = format!("{path}/{name}");
                if objects.contains_key(&key) {
                    return conflict("already exists");
                }
                let mut obj = body.clone();
                drop(objects);
                self.stamp(&mut obj, None);
                self.put(&key, obj.clone());
                (StatusCode::CREATED, obj)
            }
            Method::PUT => {
                let Some(existing) = objects.get(path).cloned() else {
                    return not_found();
                };
                if body["metadata"]["resourceVersion"] != existing["metadata"]["resourceVersion"] {
                    return conflict("the object has been modified");
                }
                let mut obj = body.clone();
                drop(objects);
                self.stamp(&mut obj, Some(&existing));
                self.put(path, obj.clone());
                (StatusCode::OK, obj)
            }
            other => panic!("unexpected method {other}"),
        }
    }
}

pub fn client(fake: Arc<Fake>, namespace: &str) -> Client {
    let service = tower::service_fn(move |req: Request<Body>| {
        let fake = fake.clone();
        async move {
            let method = req.method().clone();
            let uri = req.uri().to_string();
            let content_type = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = req.into_body().collect_bytes().await.unwrap();
            let (status, value) = fake.handle(method, &uri, &content_type, &body);
            let response = Response::builder()
                .status(status)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&value).unwrap()))
                .unwrap();
            Ok::<_, Infallible>(response)
        }
    });
    Client::new(service, namespace)
}
