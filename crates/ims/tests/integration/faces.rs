//! Faces through the API: a policy that asks for them gets every face found as the `Face`
//! object scene, seen by the real Python SDK, boxes in the original image's pixels; the default
//! policy does not look; `faces.max_per_image` keeps the largest.

use crate::harness::{b64, python, single, workspace_root, Server};
use serde_json::{json, Value};

fn two_people_path() -> std::path::PathBuf {
    workspace_root().join("../shared/data/faces/face_recognition/examples/two_people.jpg")
}

/// The two-person photo of ../shared/data/faces; `None` without ../shared.
fn two_people() -> Option<String> {
    std::fs::read(two_people_path()).ok().map(|b| b64(&b))
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

fn photo(path: &str) -> String {
    b64(&std::fs::read(workspace_root().join("../shared/data/faces/face_recognition/examples").join(path)).unwrap())
}

/// (scene, names) of each face library scene of an answer.
fn recognised(response: &Value) -> Vec<(String, Vec<String>, String)> {
    let scenes = response["ObjectResults"].as_array().cloned().unwrap_or_default();
    scenes
        .iter()
        .filter(|o| o["Scene"] == "PolityFace" || o["Scene"] == "FaceLib")
        .map(|o| {
            let mut names: Vec<String> =
                o["Names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
            names.sort();
            (o["Scene"].as_str().unwrap().to_string(), names, o["Suggestion"].as_str().unwrap().to_string())
        })
        .collect()
}

/// People of the knn_examples train folders enrolled through the SDK, then recognised in the
/// test photos; unrelated people are not; a person of a two-person photo is blocked with their
/// box; an allow library passes its person; photos without one face are refused clearly.
#[test]
fn people_enrolled_through_the_sdk_are_recognised() {
    if two_people().is_none() {
        crate::shared::absent("this test needs the face photos");
        return;
    }
    let server = Server::start();
    let lib = server.call("CreateFaceLib", json!({"LibName": "cast", "Label": "Custom", "Action": "Block"})).unwrap();
    let cast = lib["LibId"].as_str().unwrap().to_string();
    let train = workspace_root().join("../shared/data/faces/face_recognition/examples/knn_examples/train");
    let mut people: Vec<String> =
        std::fs::read_dir(&train).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    people.sort();
    for person in &people {
        let images: Vec<Value> = crate::shared::files_under(&train.join(person))
            .iter()
            .map(|p| json!({"FileContent": b64(&std::fs::read(p).unwrap())}))
            .collect();
        let count = images.len();
        let added = server.call("CreateFaceSamples", json!({"LibId": cast, "Name": person, "Images": images})).unwrap();
        assert_eq!(added["Samples"].as_array().unwrap().len(), count, "{person}: {added}");
        let sample = &added["Samples"][0];
        assert_eq!((sample["Name"].as_str(), sample["Current"].as_bool()), (Some(person.as_str()), Some(true)));
        assert!(sample.get("Descriptor").is_none() && sample.get("Embedding").is_none(), "never answered");
    }
    let libs = server.call("DescribeFaceLibs", json!({})).unwrap();
    assert_eq!(
        (libs["FaceLibs"][0]["PersonCount"].as_i64(), libs["FaceLibs"][0]["SampleCount"].as_i64()),
        (Some(5), Some(9))
    );

    // Every test photo's people, and nobody else.
    for (file, expected) in [
        ("knn_examples/test/alex_lacamoire1.jpg", vec!["alex_lacamoire"]),
        ("knn_examples/test/johnsnow_test1.jpg", vec!["kit_harington"]),
        ("knn_examples/test/obama1.jpg", vec!["obama"]),
        ("knn_examples/test/kit_with_rose.jpg", vec!["kit_harington", "rose_leslie"]),
        ("knn_examples/test/obama_and_biden.jpg", vec!["biden", "obama"]),
        ("lin-manuel-miranda.png", vec![]),
    ] {
        let response = moderate(&server, json!({"FileContent": photo(file)}));
        let expected: Vec<String> = expected.into_iter().map(String::from).collect();
        let suggestion = if expected.is_empty() { "Pass" } else { "Block" };
        assert_eq!(
            recognised(&response),
            [("FaceLib".to_string(), expected.clone(), suggestion.to_string())],
            "{file}"
        );
        assert_eq!(response["Suggestion"], suggestion, "{file}: {response}");
        if !expected.is_empty() {
            assert_eq!(response["Label"], "Custom");
            assert!(expected.contains(&response["SubLabel"].as_str().unwrap().to_string()), "{response}");
        }
    }

    // A public-figure library holding one of two people: that face is blocked, with its box.
    let polity =
        server.call("CreateFaceLib", json!({"LibName": "figures", "Label": "Polity", "Action": "Block"})).unwrap();
    let figures = polity["LibId"].as_str().unwrap().to_string();
    let biden = photo("biden.jpg");
    let enrolled = server
        .call("CreateFaceSamples", json!({"LibId": figures, "Name": "Joe Biden", "Images": [{"FileContent": biden}]}))
        .unwrap();
    let person = enrolled["PersonId"].as_str().unwrap().to_string();
    server.call("CreateBizConfig", json!({"BizType": "figures_only", "FaceLibs": [figures]})).unwrap();
    let response = moderate(&server, json!({"FileContent": two_people().unwrap(), "BizType": "figures_only"}));
    assert_eq!(
        (response["Suggestion"].as_str(), response["Label"].as_str(), response["SubLabel"].as_str()),
        (Some("Block"), Some("Polity"), Some("Joe Biden")),
        "{response}"
    );
    assert_eq!(recognised(&response), [("PolityFace".to_string(), vec!["Joe Biden".to_string()], "Block".to_string())]);
    let scene = response["ObjectResults"].as_array().unwrap().iter().find(|o| o["Scene"] == "PolityFace").unwrap();
    let detail = &scene["Details"][0];
    let faces = face_scene(&response).unwrap()["Details"].as_array().unwrap().clone();
    let boxed =
        faces.iter().find(|f| f["ObjectId"] == detail["ObjectId"]).expect("the recognised face is one of the faces");
    assert_eq!(detail["Location"], boxed["Location"]);
    assert_eq!(detail["SubLabel"], "Polity");
    assert!(
        response["Reason"].as_str().unwrap().starts_with("polity: block face library `figures` recognises `Joe Biden`"),
        "{response}"
    );

    // An allow library passes its person: Obama allowed, Biden blocked.
    let allow =
        server.call("CreateFaceLib", json!({"LibName": "staff", "Label": "Custom", "Action": "Allow"})).unwrap();
    let staff = allow["LibId"].as_str().unwrap().to_string();
    server
        .call(
            "CreateFaceSamples",
            json!({"LibId": staff, "Name": "Barack Obama", "Images": [{"FileContent": photo("obama.jpg")}]}),
        )
        .unwrap();
    server.call("CreateBizConfig", json!({"BizType": "staff_and_figures", "FaceLibs": [figures, staff]})).unwrap();
    let obama = moderate(
        &server,
        json!({"FileContent": photo("knn_examples/test/obama1.jpg"), "BizType": "staff_and_figures"}),
    );
    assert_eq!(obama["Suggestion"], "Pass", "{obama}");
    assert_eq!(
        recognised(&obama),
        [
            ("PolityFace".to_string(), vec![], "Pass".to_string()),
            ("FaceLib".to_string(), vec!["Barack Obama".to_string()], "Pass".to_string())
        ]
    );

    // Photos without exactly one face are refused with their own codes, or the largest taken.
    let code = |params: Value| server.call("CreateFaceSamples", params).unwrap_err().0;
    let no_face = b64(&std::fs::read(workspace_root().join("../shared/data/safe/skimage/coffee.png")).unwrap());
    assert_eq!(
        code(json!({"LibId": figures, "Name": "x", "Images": [{"FileContent": no_face}]})),
        "InvalidParameterValue.NoFaceFound"
    );
    assert_eq!(
        code(json!({"LibId": figures, "Name": "x", "Images": [{"FileContent": two_people().unwrap()}]})),
        "InvalidParameterValue.MultipleFaces"
    );
    let largest = server.call("CreateFaceSamples", json!({"LibId": figures, "Name": "x", "Images": [{"FileContent": two_people().unwrap()}], "LargestFace": true})).unwrap();
    assert_eq!(largest["Samples"].as_array().unwrap().len(), 1);
    let x = largest["PersonId"].as_str().unwrap().to_string();
    let too_many: Vec<Value> = (0..21).map(|_| json!({"FileContent": biden.clone()})).collect();
    assert_eq!(
        code(json!({"LibId": figures, "Name": "x", "Images": too_many})),
        "InvalidParameterValue.InvalidParameter"
    );
    assert_eq!(code(json!({"LibId": figures, "Name": "x", "Images": []})), "InvalidParameterValue.InvalidParameter");
    assert_eq!(code(json!({"LibId": "nope", "Name": "x", "Images": [{"FileContent": biden}]})), "ResourceNotFound");

    // Removed: the next call no longer recognises him.
    let samples = server.call("DescribeFaceSamples", json!({"LibId": figures, "PersonId": person})).unwrap();
    assert_eq!(samples["TotalCount"], 1);
    server.call("DeleteFaceSamples", json!({"PersonIds": [person, x]})).unwrap();
    let response = moderate(&server, json!({"FileContent": two_people().unwrap(), "BizType": "figures_only"}));
    assert_eq!(response["Suggestion"], "Pass", "{response}");
    server.call("DeleteFaceLib", json!({"LibId": cast})).unwrap();
    assert_eq!(server.call("DescribeFaceLibs", json!({})).unwrap()["TotalCount"], 2);

    // The CLI enrols from a folder; the running server recognises the person at once.
    let account = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap().to_string();
    let cli = |args: &[&str]| server.cli(args).unwrap_or_else(|e| panic!("ims {args:?}: {e}"));
    let watch = cli(&[
        "facelib",
        "create",
        "--account",
        &account,
        "--name",
        "watch",
        "--label",
        "Custom",
        "--action",
        "review",
    ]);
    let watch = watch.trim();
    let folder = train.join("rose_leslie");
    let added = cli(&["facelib", "add", "--account", &account, watch, "--name", "Rose", folder.to_str().unwrap()]);
    assert!(added.contains("2 photos of Rose"), "{added}");
    assert!(server
        .cli(&["facelib", "add", "--account", &account, watch, "--name", "Both", two_people_path().to_str().unwrap()])
        .unwrap_err()
        .contains("InvalidParameterValue.MultipleFaces"));
    assert!(cli(&["facelib", "list", "--account", &account]).contains("watch"));
    server.call("CreateBizConfig", json!({"BizType": "watch_only", "FaceLibs": [watch]})).unwrap();
    let response = moderate(
        &server,
        json!({"FileContent": photo("knn_examples/test/kit_with_rose.jpg"), "BizType": "watch_only"}),
    );
    assert_eq!(
        (response["Suggestion"].as_str(), response["SubLabel"].as_str()),
        (Some("Review"), Some("Rose")),
        "{response}"
    );
}

/// The Teenager scene: refused without the opt-in age model; with it, a face estimated under
/// the policy's MinorAge sends the image to review. (No photo here has a minor the model sees
/// as one, so the test raises MinorAge to 30 over two actors estimated 26 and 29: the rule,
/// not the model's accuracy, which docs/faces.md states.)
#[test]
fn the_teenager_scene_needs_the_age_model_and_reviews_young_faces() {
    if two_people().is_none() {
        crate::shared::absent("this test needs the face photos");
        return;
    }
    let scenes = json!(["Porn", "Sexy", "Terror", "Teenager"]);
    let without = Server::start();
    let refused = without.call("CreateBizConfig", json!({"BizType": "minors", "Scenes": scenes})).unwrap_err();
    assert_eq!(refused.0, "UnsupportedOperation", "{refused:?}");
    assert!(refused.1.contains("faces.age_model"), "{refused:?}");

    let model = crate::harness::artifacts_dir().join("models/faceres-age.onnx");
    if !model.exists() {
        println!("SKIPPED: needs {} (scripts/fetch.py --with faceres)", model.display());
        return;
    }
    let server = Server::start_with(&[("IMS_FACES__AGE_MODEL", "true")], &[]);
    server.call("CreateBizConfig", json!({"BizType": "minors", "Scenes": scenes, "MinorAge": 30})).unwrap();
    let young =
        moderate(&server, json!({"FileContent": photo("knn_examples/test/kit_with_rose.jpg"), "BizType": "minors"}));
    assert_eq!(
        (young["Suggestion"].as_str(), young["Label"].as_str(), young["SubLabel"].as_str()),
        (Some("Review"), Some("Teenager"), Some("EstimatedMinor")),
        "{young}"
    );
    let teen = young["LabelResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["Scene"] == "Teenager")
        .expect("the Teenager scene");
    assert_eq!(teen["Suggestion"], "Review");
    let bands: Vec<&str> = face_scene(&young).unwrap()["Details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["SubLabel"].as_str().unwrap())
        .collect();
    assert_eq!(bands, ["Age25-34", "Age25-34"], "{young}");
    assert!(young["Reason"].as_str().unwrap().starts_with("teenager: face "), "{young}");

    let older = moderate(&server, json!({"FileContent": two_people().unwrap(), "BizType": "minors"}));
    assert_eq!(older["Suggestion"], "Pass", "{older}");
    let teen = older["LabelResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["Scene"] == "Teenager")
        .expect("the Teenager scene");
    assert_eq!(teen["Suggestion"], "Pass");
    assert_eq!(
        server.call("ModifyBizConfig", json!({"BizType": "minors", "MinorAge": 31})).unwrap_err().0,
        "InvalidParameterValue.InvalidParameter"
    );
}
