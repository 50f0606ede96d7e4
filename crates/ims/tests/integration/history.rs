//! The result history: every result is kept and can be listed, filtered and counted by its
//! account only; a correction is stored and, through a library, decides the same image next time.

use crate::harness::{b64, textured_jpeg, Server};
use serde_json::{json, Value};

fn list(server: &Server, filters: Value) -> Value {
    server.call("DescribeImsList", json!({"Filters": filters, "PageSize": 100})).unwrap()
}

#[test]
fn results_are_recorded_listed_counted_and_corrected() {
    let server = Server::start();
    server
        .call(
            "CreateBizConfig",
            json!({"BizType": "strict", "Votes": 1, "Thresholds": [
            {"Label": "Porn", "Model": "open_nsfw", "Review": 0, "Block": 0}]}),
        )
        .unwrap();
    let photo = b64(&textured_jpeg(400, 300, 1));
    let calm = b64(&textured_jpeg(400, 300, 2));
    let first = server.call("ImageModeration", json!({"FileContent": calm, "DataId": "one"})).unwrap();
    let risk = json!({"UserId": "u-42", "Nickname": "kim"});
    server
        .call(
            "ImageModeration",
            json!({"FileContent": calm, "DataId": "two", "User": risk, "Device": {"DeviceId": "d-9"}}),
        )
        .unwrap();
    let blocked =
        server.call("ImageModeration", json!({"BizType": "strict", "FileContent": photo, "DataId": "three"})).unwrap();
    assert_eq!(blocked["Suggestion"], "Block");
    // A failed call is not a result.
    server.call("ImageModeration", json!({"FileContent": "%%%"})).unwrap_err();

    let all = list(&server, json!([]));
    assert_eq!(all["TotalCount"], 3, "{all}");
    let newest = &all["ImsDetailSet"][0];
    assert_eq!(newest["ContentId"], blocked["RequestId"]);
    assert_eq!((newest["DataId"].as_str(), newest["BizType"].as_str()), (Some("three"), Some("strict")));
    assert_eq!((newest["Suggestion"].as_str(), newest["Label"].as_str()), (Some("Block"), Some("Porn")));
    assert_eq!(newest["Source"], "sync");
    let two = &list(&server, json!([{"Name": "DataId", "Values": ["two"]}]))["ImsDetailSet"][0];
    assert_eq!((two["UserId"].as_str(), two["DeviceId"].as_str()), (Some("u-42"), Some("d-9")));
    let context: Value = serde_json::from_str(two["Context"].as_str().unwrap()).unwrap();
    assert_eq!(context["User"]["Nickname"], "kim", "the risk context as sent");
    assert_eq!(newest["FileMD5"], blocked["FileMD5"]);
    let result: Value = serde_json::from_str(newest["Result"].as_str().unwrap()).unwrap();
    assert_eq!(result["Suggestion"], "Block", "the answer as given is kept");
    let thumbnail =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, newest["Thumbnail"].as_str().unwrap())
            .unwrap();
    let thumb = image::load_from_memory(&thumbnail).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (160, 120), "a thumbnail within 160 px, aspect kept");

    for (filters, expected) in [
        (json!([{"Name": "Suggestion", "Values": ["Block"]}]), 1),
        (json!([{"Name": "Suggestion", "Values": ["Pass"]}]), 2),
        (json!([{"Name": "Label", "Values": ["Porn"]}]), 1),
        (json!([{"Name": "BizType", "Values": ["strict"]}]), 1),
        (json!([{"Name": "DataId", "Values": ["two"]}]), 1),
        (json!([{"Name": "UserId", "Values": ["u-42"]}]), 1),
        (json!([{"Name": "DeviceId", "Values": ["d-9"]}]), 1),
        (json!([{"Name": "UserId", "Values": ["u-43"]}]), 0),
        (json!([{"Name": "DateRange", "Values": ["2000-01-01", "2100-01-01"]}]), 3),
        (json!([{"Name": "DateRange", "Values": ["2000-01-01", "2000-01-02"]}]), 0),
    ] {
        assert_eq!(list(&server, filters.clone())["TotalCount"], expected, "{filters}");
    }
    let page = |index: i64, size: i64| server.call("DescribeImsList", json!({"PageIndex": index, "PageSize": size}));
    assert_eq!(page(2, 1).unwrap()["ImsDetailSet"][0]["DataId"], "two");
    assert_eq!(page(2, 1).unwrap()["TotalCount"], 3);
    page(1, 100).unwrap();
    for (index, size) in [(1, 0), (1, 101), (0, 10)] {
        assert_eq!(page(index, size).unwrap_err().0, "InvalidParameterValue.InvalidParameter", "{index} {size}");
    }
    let unknown = server.call("DescribeImsList", json!({"Filters": [{"Name": "Colour", "Values": ["red"]}]}));
    assert_eq!(unknown.unwrap_err().0, "InvalidParameterValue.InvalidParameter");

    let stats = server.call("DescribeImageStat", json!({})).unwrap();
    assert_eq!(stats["Overview"], json!({"TotalCount": 3, "PassCount": 2, "SuspectCount": 0, "EvilCount": 1}));
    assert_eq!(stats["TrendCount"].as_array().unwrap().len(), 1);
    assert_eq!(stats["TrendCount"][0]["TotalCount"], 3);
    assert_eq!(stats["EvilCount"][0], json!({"EvilType": "Porn", "Count": 1}));

    // The operator says the blocked image is fine and files it in an allow library: the same
    // image passes next time under the same policy.
    let lib = server.call("CreateImageLib", json!({"LibName": "fine", "Label": "Normal", "Action": "Allow"})).unwrap();
    let corrected = server
        .call("CreateImsCorrection", json!({"ContentId": blocked["RequestId"], "Suggestion": "Pass", "Note": "abstract art", "LibId": lib["LibId"]}))
        .unwrap();
    assert!(!corrected["ImageId"].as_str().unwrap().is_empty(), "{corrected}");
    let again = server.call("ImageModeration", json!({"BizType": "strict", "FileContent": photo})).unwrap();
    assert_eq!(again["Suggestion"], "Pass", "{again}");
    assert_eq!(again["LibResults"][0]["Details"][0]["ImageId"], corrected["ImageId"]);
    let fixed = list(&server, json!([{"Name": "Corrected", "Values": ["true"]}]));
    assert_eq!(fixed["TotalCount"], 1);
    let correction = &fixed["ImsDetailSet"][0]["Correction"];
    assert_eq!((correction["Suggestion"].as_str(), correction["Label"].as_str()), (Some("Pass"), Some("Normal")));
    assert_eq!(correction["Note"], "abstract art");
    assert_eq!(
        server.call("CreateImsCorrection", json!({"ContentId": "nope", "Suggestion": "Pass"})).unwrap_err().0,
        "ResourceNotFound"
    );

    // A read-only sub-account reads its main account's results but cannot correct them;
    // another main account sees none of them.
    let main_id = server.cli_json(&["account", "list"])[0]["id"].as_i64().unwrap();
    let (_, reader_id, reader_key) = server.sub_account(main_id, "reader", "read-only");
    let mut job = server.job(json!({}));
    (job["secret_id"], job["secret_key"], job["action"]) =
        (json!(reader_id), json!(reader_key), json!("DescribeImsList"));
    assert_eq!(crate::harness::single(crate::harness::python(&job)).unwrap()["TotalCount"], 4);
    job["action"] = json!("CreateImsCorrection");
    job["params"] = json!({"ContentId": first["RequestId"], "Suggestion": "Block"});
    assert_eq!(crate::harness::single(crate::harness::python(&job)).unwrap_err().0, "UnauthorizedOperation");
    let (other, _, _) = server.main_account("other");
    let (other_id, other_key) = server.new_key(other);
    (job["secret_id"], job["secret_key"]) = (json!(other_id), json!(other_key));
    assert_eq!(crate::harness::single(crate::harness::python(&job)).unwrap_err().0, "ResourceNotFound");
    job["action"] = json!("DescribeImsList");
    job["params"] = json!({});
    assert_eq!(crate::harness::single(crate::harness::python(&job)).unwrap()["TotalCount"], 0);
}
