//! tiia's image search through the real Python `tiia` SDK: groups, pictures filed under their
//! hashes, and searches that find re-encoded, resized, cropped and mirrored copies of the
//! pictures of ../shared/data and not unrelated photos; tags and the tag filter; paging; each
//! group's `MaxQps`; every limit on both sides; metering (`SEARCH`) and the history.

use crate::analysis::{jpeg, jpeg_of_size, metered_as, shared_picture, tiia};
use crate::harness::{b64, burst, Server};
use serde_json::{json, Value};

const FILED: [&str; 4] = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"];

fn decoded(base64: &str) -> image::RgbImage {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(base64).unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

/// The pictures found for `image` in `group`, as (PicName, Score), with the call's other params.
fn found(server: &Server, group: &str, image: &image::RgbImage, more: Value) -> Vec<(String, i64)> {
    let mut params = json!({"GroupId": group, "ImageBase64": b64(&jpeg(image))});
    params.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
    let answer = tiia(server, "SearchImage", params).unwrap();
    let infos = answer["ImageInfos"].as_array().unwrap();
    assert_eq!(answer["Count"].as_u64(), Some(infos.len() as u64), "{answer}");
    infos.iter().map(|i| (i["PicName"].as_str().unwrap().to_string(), i["Score"].as_i64().unwrap())).collect()
}

fn code(result: Result<Value, (String, String)>) -> String {
    result.expect_err("refused").0
}

#[test]
fn copies_of_filed_pictures_are_found_and_unrelated_photos_are_not() {
    let pictures: Option<Vec<String>> = FILED.iter().map(|f| shared_picture(&format!("safe/skimage/{f}"))).collect();
    let (Some(pictures), Some(motorcycle)) = (pictures, shared_picture("safe/skimage/motorcycle_left.png")) else {
        crate::shared::absent("this test needs the skimage pictures");
        return;
    };
    let server = Server::start();
    let call = |action: &str, params: Value| tiia(&server, action, params);
    call("CreateGroup", json!({"GroupId": "photos", "GroupName": "Photos", "MaxCapacity": 10, "MaxQps": 50})).unwrap();
    for (name, picture) in FILED.iter().zip(&pictures) {
        let entity = if name.starts_with('c') { "cats_and_cups" } else { name.split('.').next().unwrap() };
        let tags = json!({"kind": name.split('.').next().unwrap(), "price": name.len()}).to_string();
        let filed = call(
            "CreateImage",
            json!({"GroupId": "photos", "EntityId": entity, "PicName": name, "ImageBase64": picture,
                "Tags": tags, "CustomContent": format!("about {name}")}),
        )
        .unwrap();
        assert!(filed["Object"].is_null(), "{filed}");
    }

    // The same picture, re-encoded, resized, cropped and mirrored: found, the best first.
    for (name, picture) in FILED.iter().zip(&pictures) {
        let original = decoded(picture);
        let (w, h) = original.dimensions();
        let resized = image::imageops::resize(&original, w * 3 / 4, h * 3 / 4, image::imageops::FilterType::Triangle);
        let cropped = image::imageops::crop_imm(&original, w / 20, h / 20, w * 9 / 10, h * 9 / 10).to_image();
        let mirrored = image::imageops::flip_horizontal(&original);
        for (how, copy) in
            [("re-encoded", &original), ("resized", &resized), ("cropped", &cropped), ("mirrored", &mirrored)]
        {
            let hits = found(&server, "photos", copy, json!({}));
            assert_eq!(hits.first().map(|h| h.0.as_str()), Some(*name), "{how} {name}: {hits:?}");
            assert!(hits[0].1 > 50, "{how} {name}: {hits:?}");
        }
        let exact = tiia(&server, "SearchImage", json!({"GroupId": "photos", "ImageBase64": picture})).unwrap();
        let info = &exact["ImageInfos"][0];
        assert_eq!((info["PicName"].as_str(), info["Score"].as_i64()), (Some(*name), Some(100)), "{exact}");
        assert_eq!(info["CustomContent"], format!("about {name}"));
    }
    // Unrelated photos: nothing, at the default threshold and at the lowest.
    assert!(found(&server, "photos", &decoded(&motorcycle), json!({})).is_empty());
    assert!(found(&server, "photos", &decoded(&motorcycle), json!({"MatchThreshold": 1})).is_empty());
    let camera = decoded(&shared_picture("safe/skimage/camera.png").unwrap());
    assert!(found(&server, "photos", &camera, json!({})).is_empty());

    // The threshold: a crop between the filed variants scores below 100; a threshold at its
    // score leaves it out (a score must be above the threshold).
    let coffee = decoded(&pictures[2]);
    let (w, h) = coffee.dimensions();
    let crop = image::imageops::crop_imm(&coffee, w * 3 / 100, h * 2 / 100, w * 95 / 100, h * 96 / 100).to_image();
    let score = found(&server, "photos", &crop, json!({}))[0].1;
    assert!(score < 100, "{score}");
    assert!(found(&server, "photos", &crop, json!({"MatchThreshold": score - 1})).len() == 1);
    assert!(found(&server, "photos", &crop, json!({"MatchThreshold": score})).is_empty(), "strictly above");

    // Tags: the filter keeps what it says; UpdateImage changes them; DescribeImages reads them.
    let astronaut = decoded(&pictures[0]);
    assert_eq!(found(&server, "photos", &astronaut, json!({"Filter": "kind = astronaut AND price > 5"})).len(), 1);
    assert!(found(&server, "photos", &astronaut, json!({"Filter": "price < 5 OR kind = 'cat'"})).is_empty());
    call("UpdateImage", json!({"GroupId": "photos", "EntityId": "astronaut", "Tags": r#"{"kind": "cat"}"#})).unwrap();
    assert_eq!(found(&server, "photos", &astronaut, json!({"Filter": "price < 5 OR kind = 'cat'"})).len(), 1);
    let described = call("DescribeImages", json!({"GroupId": "photos", "EntityId": "cats_and_cups"})).unwrap();
    let names: Vec<&str> =
        described["ImageInfos"].as_array().unwrap().iter().map(|i| i["PicName"].as_str().unwrap()).collect();
    assert_eq!(names, ["chelsea.png", "coffee.png"], "{described}");
    assert_eq!(described["ImageInfos"][1]["Tags"], r#"{"kind":"coffee","price":10}"#);
    let one =
        call("DescribeImages", json!({"GroupId": "photos", "EntityId": "cats_and_cups", "PicName": "coffee.png"}));
    assert_eq!(one.unwrap()["ImageInfos"].as_array().unwrap().len(), 1);

    // Paging: the one picture found is on the first page and not past it.
    let hits = found(&server, "photos", &astronaut, json!({"Limit": 1, "Offset": 0}));
    assert_eq!(hits.len(), 1);
    assert!(found(&server, "photos", &astronaut, json!({"Limit": 100, "Offset": 1})).is_empty());

    // DescribeGroups: the group with its count and times.
    let groups = call("DescribeGroups", json!({})).unwrap();
    let group = &groups["Groups"][0];
    assert_eq!(
        (group["GroupId"].as_str(), group["PicCount"].as_i64(), group["MaxQps"].as_i64(), group["GroupType"].as_i64()),
        (Some("photos"), Some(4), Some(50), Some(4)),
        "{groups}"
    );
    assert_eq!(group["CreateTime"].as_str().unwrap().len(), "2026-12-08 01:02:03".len());

    // Removed pictures are not found again: one by its name, then a whole entity.
    call("DeleteImages", json!({"GroupId": "photos", "EntityId": "cats_and_cups", "PicName": "coffee.png"})).unwrap();
    assert!(found(&server, "photos", &coffee, json!({})).is_empty());
    assert!(!found(&server, "photos", &decoded(&pictures[1]), json!({})).is_empty(), "the entity's other picture");
    call("DeleteImages", json!({"GroupId": "photos", "EntityId": "cats_and_cups"})).unwrap();
    assert!(found(&server, "photos", &decoded(&pictures[1]), json!({})).is_empty());
    let gone = call("DescribeImages", json!({"GroupId": "photos", "EntityId": "cats_and_cups"}));
    assert_eq!(code(gone), "FailedOperation.ImageNotFoundInfo");

    // Metered as SEARCH: every CreateImage and SearchImage answered; kept in the history. 4
    // filed, 5 searches of each, 3 unrelated, 3 thresholds, 3 filters, 2 pages, 3 after removals.
    let searches = 4 + 4 * 5 + 3 + 3 + 3 + 2 + 3;
    assert_eq!(metered_as(&server, "SEARCH"), searches);
    let kept = server
        .call("DescribeImsList", json!({"Filters": [{"Name": "Service", "Values": ["SEARCH"]}], "PageSize": 1}))
        .unwrap();
    assert_eq!(kept["TotalCount"].as_u64(), Some(searches), "{kept}");
}

/// Every limit of image search, refused with the cloud's code just past it and taken at it;
/// another account sees none of the groups; each group's `MaxQps` limits its searches.
#[test]
fn image_search_limits_hold_on_both_sides() {
    let server = Server::start();
    let call = |action: &str, params: Value| tiia(&server, action, params);
    let group = |id: &str, more: Value| {
        let mut params = json!({"GroupId": id, "GroupName": "g", "MaxCapacity": 2});
        params.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        call("CreateGroup", params)
    };
    let long = "g".repeat(64);
    group(&long, json!({"GroupName": "n".repeat(64), "GroupType": 4, "MaxCapacity": 100_000, "MaxQps": 1000})).unwrap();
    for (capacity, qps) in [(100_001, 10), (0, 10), (2, 1001)] {
        let refused = group("bounds", json!({"MaxCapacity": capacity, "MaxQps": qps}));
        assert_eq!(code(refused), "InvalidParameterValue.InvalidParameter", "{capacity} {qps}");
    }
    assert_eq!(code(group(&format!("{long}g"), json!({}))), "InvalidParameterValue.ImageGroupIdTooLong");
    assert_eq!(code(group("a-b", json!({}))), "InvalidParameterValue.ImageGroupIdIllegal");
    assert_eq!(code(group("n", json!({"GroupName": "n".repeat(65)}))), "InvalidParameterValue.ImageGroupNameTooLong");
    assert_eq!(code(group(&long, json!({}))), "InvalidParameterValue.ImageGroupIdAlreadyExist");
    for other in [1, 5, 6, 7, 8] {
        let refused = group("typed", json!({"GroupType": other})).unwrap_err();
        assert_eq!(refused.0, "UnsupportedOperation", "{refused:?}");
        assert!(refused.1.contains("仅支持 4"), "says which is served: {refused:?}");
    }
    // g2 has room for an entity's ten pictures; g3 takes 2 searches a second.
    for n in 1..30 {
        let more = match n {
            2 => json!({"MaxCapacity": 20}),
            3 => json!({"MaxQps": 2}),
            _ => json!({}),
        };
        group(&format!("g{n}"), more).unwrap();
    }
    assert_eq!(code(group("g30", json!({}))), "FailedOperation.GroupCountExceeded");
    let listed = |params: Value| call("DescribeGroups", params);
    assert_eq!(listed(json!({"Limit": 100})).unwrap()["Groups"].as_array().unwrap().len(), 30);
    assert_eq!(listed(json!({})).unwrap()["Groups"].as_array().unwrap().len(), 10, "10 by default");
    assert_eq!(listed(json!({"Offset": 25, "Limit": 10})).unwrap()["Groups"].as_array().unwrap().len(), 5);
    assert_eq!(listed(json!({"GroupId": "g7"})).unwrap()["Groups"][0]["GroupId"], "g7");
    for limit in [0, 101] {
        assert_eq!(code(listed(json!({"Limit": limit}))), "InvalidParameterValue.LimitExceed", "{limit}");
    }

    // Pictures: names at 64 characters and past, tags, a picture too flat to hash, capacity.
    let picture = b64(&jpeg(&crate::analysis::detailed(320, 240)));
    let add = |group: &str, entity: &str, name: &str, more: Value| {
        let mut params = json!({"GroupId": group, "EntityId": entity, "PicName": name, "ImageBase64": picture});
        params.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        call("CreateImage", params)
    };
    add("g1", &"e".repeat(64), &"p".repeat(64), json!({"CustomContent": "c".repeat(4096)})).unwrap();
    assert_eq!(code(add("g1", &"e".repeat(65), "p", json!({}))), "InvalidParameterValue.EntityIdTooLong");
    assert_eq!(code(add("g1", "", "p", json!({}))), "InvalidParameterValue.EntityIdEmpty");
    assert_eq!(code(add("g1", "e", &"p".repeat(65), json!({}))), "InvalidParameterValue.PicNameTooLong");
    assert_eq!(code(add("g1", "e", &"p".repeat(64), json!({}))), "InvalidParameterValue.PicNameAlreadyExist");
    let refused = add("g1", "e", "p", json!({"CustomContent": "c".repeat(4097)})).unwrap_err();
    assert_eq!(refused.0, "InvalidParameterValue.InvalidParameter", "{refused:?}");
    let tags = |n: usize| Value::Object((0..n).map(|i| (format!("k{i}"), json!(i))).collect()).to_string();
    assert_eq!(code(add("g1", "e", "p", json!({"Tags": tags(11)}))), "InvalidParameterValue.TagsKeysExceed");
    assert_eq!(code(add("g1", "e", "p", json!({"Tags": "[1]"}))), "InvalidParameterValue.TagsValueIllegal");
    let long_tag = json!({"k": "v".repeat(129)}).to_string();
    assert_eq!(code(add("g1", "e", "p", json!({"Tags": long_tag}))), "InvalidParameterValue.TagsValueSizeExceed");
    let flat = b64(&jpeg(&image::RgbImage::from_pixel(320, 240, image::Rgb([40, 90, 160]))));
    assert_eq!(code(add("g1", "e", "flat", json!({"ImageBase64": flat}))), "FailedOperation.ImageUnQualified");
    add("g1", "e", "p", json!({"Tags": tags(10)})).unwrap();
    assert_eq!(code(add("g1", "e", "p2", json!({}))), "FailedOperation.ImageNumExceed", "MaxCapacity 2");
    assert_eq!(code(add("nope", "e", "p2", json!({}))), "InvalidParameterValue.ImageGroupIdNotExist");
    for n in 0..10 {
        add("g2", "ten", &format!("p{n}"), json!({})).unwrap();
    }
    assert_eq!(code(add("g2", "ten", "p10", json!({}))), "FailedOperation.ImageEntityCountExceed");
    // ImageBase64: at most 5 MiB (3.75 MiB of bytes), on both sides.
    let at_bound = b64(&jpeg_of_size(5 * 1024 * 1024 / 4 * 3));
    assert_eq!(at_bound.len(), 5 * 1024 * 1024);
    add("g4", "big", "at_bound", json!({"ImageBase64": at_bound})).unwrap();
    let over = b64(&jpeg_of_size(5 * 1024 * 1024 / 4 * 3 + 1));
    assert_eq!(code(add("g4", "big", "over", json!({"ImageBase64": over}))), "LimitExceeded.TooLargeFileError");

    // SearchImage's parameters on both sides.
    let search = |more: Value| {
        let mut params = json!({"GroupId": "g2", "ImageBase64": picture});
        params.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        call("SearchImage", params)
    };
    assert_eq!(search(json!({"Limit": 100})).unwrap()["Count"], 10, "every picture of the same image");
    assert_eq!(search(json!({"Limit": 3})).unwrap()["Count"], 3);
    assert_eq!(search(json!({"Offset": 9})).unwrap()["Count"], 1);
    for bad in [json!({"Limit": 0}), json!({"Limit": 101}), json!({"Offset": -1})] {
        assert_eq!(code(search(bad.clone())), "InvalidParameterValue.LimitExceed", "{bad}");
    }
    let longest = format!("k0 = {}", "1".repeat(59));
    assert_eq!(longest.len(), 64);
    assert!(search(json!({"Filter": longest})).is_ok());
    assert_eq!(code(search(json!({"Filter": format!("{longest}1")}))), "InvalidParameterValue.FilterSizeExceed");
    assert_eq!(code(search(json!({"Filter": "k0 ~ 1"}))), "InvalidParameterValue.FilterInvalid");
    assert!(search(json!({"MatchThreshold": 100})).is_ok());
    assert_eq!(code(search(json!({"MatchThreshold": 101}))), "InvalidParameterValue.InvalidParameter");
    // ImageRect: the whole image is the picture; a part of it is another; outside is refused.
    let whole = search(json!({"ImageRect": {"X": 0, "Y": 0, "Width": 320, "Height": 240}})).unwrap();
    assert_eq!(whole["ImageInfos"][0]["Score"], 100, "{whole}");
    let corner = search(json!({"ImageRect": {"X": 0, "Y": 0, "Width": 100, "Height": 80}})).unwrap();
    assert_eq!(corner["Count"], 0, "{corner}");
    for rect in
        [json!({"X": 300, "Y": 0, "Width": 21, "Height": 240}), json!({"X": 1, "Y": 0, "Width": i64::MAX, "Height": 1})]
    {
        assert_eq!(code(search(json!({"ImageRect": rect}))), "InvalidParameterValue.InvalidParameter", "{rect}");
    }

    // Another account sees none of these groups.
    let (_, secret_id, secret_key) = server.main_account("other");
    let mut job = server.job(json!({"GroupId": "g2", "EntityId": "ten"}));
    (job["service"], job["version"], job["action"]) = (json!("tiia"), json!("2019-05-29"), json!("DescribeImages"));
    (job["secret_id"], job["secret_key"]) = (json!(secret_id), json!(secret_key));
    let refused = crate::harness::single(crate::harness::python(&job));
    assert_eq!(code(refused), "InvalidParameterValue.ImageGroupIdNotExist");
    job["action"] = json!("DescribeGroups");
    job["params"] = json!({});
    let theirs = crate::harness::single(crate::harness::python(&job)).unwrap();
    assert_eq!(theirs["Groups"], json!([]));

    // A group's MaxQps: of 5 searches at once, 2 are answered.
    let mut job = server.job(json!({"GroupId": "g3", "ImageBase64": picture}));
    (job["service"], job["version"], job["action"]) = (json!("tiia"), json!("2019-05-29"), json!("SearchImage"));
    assert_eq!(burst(&job, 5), (2, 3));
}
