//! Leader election against the fake API: one holder at a time, renewals, takeover after expiry,
//! release on shutdown.

mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kotel_operator::lease::LeaderElector;
use kube::Api;
use serde_json::json;
use support::Fake;

const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/kotel-system/leases/kotel-operator-leader";

fn elector(fake: &Arc<Fake>, identity: &str) -> LeaderElector {
    let client = support::client(fake.clone(), "kotel-system");
    LeaderElector::new(
        Api::<Lease>::namespaced(client, "kotel-system"),
        "kotel-operator-leader",
        identity,
        Duration::from_secs(15),
    )
}

#[tokio::test]
async fn one_leader_at_a_time_and_takeover_after_expiry_or_release() {
    let fake = Arc::new(Fake::default());
    let a = elector(&fake, "a");
    let b = elector(&fake, "b");

    assert!(
        a.try_acquire_or_renew().await.unwrap(),
        "a creates the lease"
    );
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b waits while a holds it"
    );
    assert!(a.try_acquire_or_renew().await.unwrap(), "a renews");
    assert_eq!(fake.get(LEASE).unwrap()["spec"]["holderIdentity"], "a");

    // a stops renewing: once renewTime + duration has passed, b takes over.
    let mut lease = fake.get(LEASE).unwrap();
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    fake.put(LEASE, lease);
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "b takes the expired lease"
    );
    let lease = fake.get(LEASE).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(!a.try_acquire_or_renew().await.unwrap(), "a lost it");

    // b releases on shutdown: a gets it at once.
    b.release().await.unwrap();
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_eq!(fake.get(LEASE).unwrap()["spec"]["holderIdentity"], "a");
}

#[tokio::test]
async fn a_stale_write_loses_the_race() {
    let fake = Arc::new(Fake::default());
    let a = elector(&fake, "a");
    assert!(a.try_acquire_or_renew().await.unwrap());
    let mut lease = fake.get(LEASE).unwrap();
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    fake.put(LEASE, lease);

    // b reads the expired lease, but another candidate writes before b does: b's replace
    // carries a stale resourceVersion, gets 409, and b reports "not leader" instead of failing.
    *fake.race_after_get.lock().unwrap() = Some(LEASE.to_string());
    let b = elector(&fake, "b");
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert_eq!(fake.get(LEASE).unwrap()["spec"]["holderIdentity"], "a");
}
