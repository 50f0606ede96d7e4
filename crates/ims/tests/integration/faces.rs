//! Faces through the API: a policy that asks for them gets every face found as the `Face`
//! object scene, seen by the real Python SDK, boxes in the original image's pixels; the default
//! policy does not look; `faces.max_per_image` keeps the largest.

use crate::harness::{b64, python, single, workspace_root, Server};
use serde_json::{json, Value};

/// The two-person photo of ../shared/data/faces; `None` without ../shared.
fn two_people() -> Option<String> {
    let path = workspace_root().join("../shared/data/faces/face_recognition/examples/two_people.jpg");
    std::fs::read(path).ok().map(|b| b64(&b))
}

fn moderate(server: &Server, params: Value) -> Value {
    single(python(&server.job(params))).unwrap()
}

fn face_scene(response: &Value) -> Option<&Value> {
    response["ObjectResults"].as_array()?.iter().find(|o| o["Scene"] == "Face")
}

fn corner(detail: &Value) -> (f64, f64, f64) {
    let l = &detail["Location"];
    (l["X"].as_f64().unwrap(), l["Y"].as_f64().unwrap(), l["Width"].as_f64().unwrap())
}

#[test]
fn faces_are_listed_when_a_policy_asks_for_them() {
    let Some(photo) = two_people() else {
        crate::shared::absent("this test needs the two-person photo");
        return;
    };
    let server = Server::start();
    let plain = moderate(&server, json!({"FileContent": photo}));
    assert!(face_scene(&plain).is_none(), "the default policy does not look for faces: {plain}");

    server.call("CreateBizConfig", json!({"BizType": "with_faces", "Faces": true})).unwrap();
    let response = moderate(&server, json!({"FileContent": photo, "BizType": "with_faces"}));
    assert_eq!(response["Suggestion"], "Pass", "finding a face is no finding: {response}");
    let scene = face_scene(&response).expect("the Face scene");
    assert_eq!((scene["Suggestion"].as_str(), scene["Label"].as_str()), (Some("Pass"), Some("Normal")));
    assert_eq!(scene["Names"], json!(["Face"]));
    let details = scene["Details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{scene}");
    // crates/inference/tests/face-boxes.csv: (785, 78, 176) and (244, 59, 166), the larger first.
    for (detail, (x, y, side), id) in
        [(&details[0], (785.0, 78.0, 176.0), "0"), (&details[1], (244.0, 59.0, 166.0), "1")]
    {
        let (gx, gy, gw) = corner(detail);
        assert!((gx - x).abs() <= 15.0 && (gy - y).abs() <= 15.0 && (gw - side).abs() <= 20.0, "{detail}");
        assert_eq!(detail["ObjectId"], id);
        assert!(detail["Score"].as_u64().unwrap() >= 50, "{detail}");
    }

    // At most faces.max_per_image, the largest.
    let one = Server::start_with(&[("IMS_FACES__MAX_PER_IMAGE", "1")], &[]);
    one.call("CreateBizConfig", json!({"BizType": "with_faces", "Faces": true})).unwrap();
    let response = moderate(&one, json!({"FileContent": photo, "BizType": "with_faces"}));
    let details = face_scene(&response).expect("the Face scene")["Details"].as_array().unwrap().clone();
    assert_eq!(details.len(), 1, "{response}");
    assert!((corner(&details[0]).0 - 785.0).abs() <= 15.0, "the larger face: {}", details[0]);
}
