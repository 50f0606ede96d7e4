//! A cluster: `ims serve` processes sharing one PostgreSQL database (`storage.url`), started by
//! the test itself (store::testing). Small made images, OCR off: this tests the sharing, not
//! the models.

use crate::harness::{b64, textured_jpeg, Server};
use serde_json::json;
use store::testing::TempPostgres;

/// Every node of a cluster seals and opens API secrets with the same master key.
const MASTER_KEY: &str = "5eb63bbbe01eeed093cb22bb8f5acdc35eb63bbbe01eeed093cb22bb8f5acdc3";

fn node(url: &str) -> Server {
    Server::start_with(
        &[("IMS_STORAGE__URL", url), ("IMS_MASTER_KEY", MASTER_KEY), ("IMS_INFERENCE__OCR", "false")],
        &[],
    )
}

#[test]
fn two_nodes_on_one_database_are_one_service() {
    let Some(postgres) = TempPostgres::start() else { return };
    let url = postgres.create_database("cluster");
    let (a, b) = (node(&url), node(&url));
    assert_eq!((&a.secret_id, &a.secret_key), (&b.secret_id, &b.secret_key), "one first account for both");
    assert!(a.log().contains("backend=\"postgres\"") || a.log().contains("backend=postgres"), "{}", a.log());

    // An account and key made through node A's command line sign calls to node B.
    let (account, secret_id, secret_key) = a.main_account("acme");
    let as_acme = |server: &Server, action: &str, params: serde_json::Value| {
        let mut job = server.job(params);
        job["action"] = json!(action);
        job["secret_id"] = json!(secret_id);
        job["secret_key"] = json!(secret_key);
        crate::harness::single(crate::harness::python(&job))
    };
    let image = b64(&textured_jpeg(320, 240, 7));
    let first = as_acme(&b, "ImageModeration", json!({"FileContent": image, "DataId": "on-b"}))
        .unwrap_or_else(|e| panic!("{e:?}\n{}", b.log()));
    assert_eq!(first["Suggestion"], "Pass", "{first}");

    // A block list filled through node A applies on node B.
    let lib = as_acme(&a, "CreateImageLib", json!({"LibName": "banned", "Label": "Ad", "Action": "Block"})).unwrap();
    let lib_id = lib["LibId"].as_str().unwrap();
    as_acme(&a, "CreateImageSamples", json!({"LibId": lib_id, "Images": [{"Name": "x", "FileContent": image}]}))
        .unwrap();
    let second = as_acme(&b, "ImageModeration", json!({"FileContent": image, "DataId": "on-b-again"})).unwrap();
    assert_eq!((second["Suggestion"].as_str(), second["Label"].as_str()), (Some("Block"), Some("Ad")), "{second}");

    // The history of calls to B reads the same from A; usage counts each call once.
    let listed = as_acme(&a, "DescribeImsList", json!({"PageSize": 10})).unwrap();
    let ids: Vec<&str> =
        listed["ImsDetailSet"].as_array().unwrap().iter().map(|r| r["DataId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["on-b-again", "on-b"], "{listed}");
    assert_eq!(a.metered(account), 2);
    assert_eq!(b.metered(account), 2);
}
