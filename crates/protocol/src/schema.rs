//! The action definitions of each API version, read from the vendored tccli `api.json`.
//!
//! They drive request handling generically: a JSON body is checked member by member
//! (unknown, missing, wrong type), and the flattened `A.B.0=v` form used by GET and the legacy
//! signatures is rebuilt into typed JSON by following the declared types, so `DataId=123` stays
//! a string while `Interval=5` becomes a number.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One API version's definitions, as tccli ships them.
#[derive(Debug, Deserialize)]
pub struct ApiDefinition {
    pub actions: BTreeMap<String, ActionDef>,
    pub objects: BTreeMap<String, ObjectDef>,
}

#[derive(Debug, Deserialize)]
pub struct ActionDef {
    pub input: String,
    pub output: String,
}

#[derive(Debug, Deserialize)]
pub struct ObjectDef {
    pub members: Vec<MemberDef>,
}

#[derive(Debug, Deserialize)]
pub struct MemberDef {
    pub name: String,
    /// `string`, `int`, `float`, `bool`, `object` or `list`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `int`: `int64` or `uint64`; for `object`: the object name; for `list`: the element
    /// type, a primitive (`string`, `int64`...) or an object name.
    pub member: String,
    /// Input members say true or false; output members say nothing.
    #[serde(default)]
    pub required: Option<bool>,
}

/// The API versions this server speaks: ims's two and the image-analysis service's (`tiia`).
/// The versions of the two services differ, so the version alone says which a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V20201229,
    V20200713,
    /// `tiia`, image analysis.
    V20190529,
}

impl Version {
    /// ims's newest first, then tiia's.
    pub const ALL: [Version; 3] = [Version::V20201229, Version::V20200713, Version::V20190529];

    /// As `X-TC-Version` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V20201229 => "2020-12-29",
            Version::V20200713 => "2020-07-13",
            Version::V20190529 => "2019-05-29",
        }
    }

    /// The cloud service whose version it is: `ims` or `tiia`.
    pub fn service(self) -> &'static str {
        match self {
            Version::V20201229 | Version::V20200713 => "ims",
            Version::V20190529 => "tiia",
        }
    }

    pub fn parse(version: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.as_str() == version)
    }

    /// This version's definitions.
    pub fn definition(self) -> &'static ApiDefinition {
        definition(self)
    }
}

fn definition(version: Version) -> &'static ApiDefinition {
    static V20201229: OnceLock<ApiDefinition> = OnceLock::new();
    static V20200713: OnceLock<ApiDefinition> = OnceLock::new();
    static V20190529: OnceLock<ApiDefinition> = OnceLock::new();
    let (cell, text) = match version {
        Version::V20201229 => (&V20201229, include_str!("../api/ims/v20201229/api.json")),
        Version::V20200713 => (&V20200713, include_str!("../api/ims/v20200713/api.json")),
        Version::V20190529 => (&V20190529, include_str!("../api/tiia/v20190529/api.json")),
    };
    cell.get_or_init(|| {
        let mut definition: ApiDefinition = serde_json::from_str(text).expect("vendored api.json is valid");
        if version.service() != "ims" {
            return definition;
        }
        // ims's own management actions (policies...) exist in every ims version.
        let extensions: ApiDefinition =
            serde_json::from_str(include_str!("../api/ims/extensions.json")).expect("extensions.json is valid");
        definition.actions.extend(extensions.actions);
        definition.objects.extend(extensions.objects);
        definition
    })
}

/// Why a request's parameters do not fit their action's definition. Paths are dotted
/// (`User.UserId`, `FileUrlList.2`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("the parameter `{0}` is not recognised")]
    Unknown(String),
    #[error("the required parameter `{0}` is missing")]
    Missing(String),
    #[error("the parameter `{path}` must be {expected}")]
    Invalid { path: String, expected: &'static str },
}

/// A value's declared type, resolved from a member definition.
#[derive(Clone, Copy)]
enum Ty<'a> {
    String,
    Int,
    UInt,
    Float,
    Bool,
    Object(&'a str),
    List(&'a str),
}

impl Ty<'_> {
    fn expected(self) -> &'static str {
        match self {
            Ty::String => "a string",
            Ty::Int => "an integer",
            Ty::UInt => "a non-negative integer",
            Ty::Float => "a number",
            Ty::Bool => "a boolean",
            Ty::Object(_) => "an object",
            Ty::List(_) => "an array",
        }
    }
}

/// The type of a list element or a scalar named by its primitive (`int64`) or object name.
fn element_type(name: &str) -> Ty<'_> {
    match name {
        "string" => Ty::String,
        "int64" | "int" => Ty::Int,
        "uint64" => Ty::UInt,
        "float" | "double" => Ty::Float,
        "bool" => Ty::Bool,
        object => Ty::Object(object),
    }
}

fn member_type(m: &MemberDef) -> Ty<'_> {
    match m.kind.as_str() {
        "string" => Ty::String,
        "int" if m.member == "uint64" => Ty::UInt,
        "int" => Ty::Int,
        "float" => Ty::Float,
        "bool" => Ty::Bool,
        "list" => Ty::List(&m.member),
        _ => Ty::Object(&m.member),
    }
}

/// A flattened form rebuilt into a tree before its types are known.
enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl ApiDefinition {
    pub fn action(&self, name: &str) -> Option<&ActionDef> {
        self.actions.get(name)
    }

    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects.get(name)
    }

    /// Checks a JSON request against the action's input definition.
    pub fn validate_input(&self, action: &ActionDef, params: &Value) -> Result<(), ParamError> {
        self.check(Ty::Object(&action.input), params, "")
    }

    fn check(&self, ty: Ty<'_>, value: &Value, path: &str) -> Result<(), ParamError> {
        let invalid = || ParamError::Invalid { path: path.to_string(), expected: ty.expected() };
        match ty {
            Ty::String if value.is_string() => Ok(()),
            Ty::Int if value.is_i64() => Ok(()),
            Ty::UInt if value.is_u64() => Ok(()),
            Ty::Float if value.is_number() => Ok(()),
            Ty::Bool if value.is_boolean() => Ok(()),
            Ty::List(element) => {
                let items = value.as_array().ok_or_else(invalid)?;
                for (i, item) in items.iter().enumerate() {
                    self.check(element_type(element), item, &join(path, &i.to_string()))?;
                }
                Ok(())
            }
            Ty::Object(name) => {
                let map = value.as_object().ok_or_else(invalid)?;
                let def = self.object(name).expect("object named in api.json exists");
                if let Some(key) = map.keys().find(|k| !def.members.iter().any(|m| &m.name == *k)) {
                    return Err(ParamError::Unknown(join(path, key)));
                }
                for m in &def.members {
                    match map.get(&m.name) {
                        None | Some(Value::Null) if m.required == Some(true) => {
                            return Err(ParamError::Missing(join(path, &m.name)))
                        }
                        None | Some(Value::Null) => {}
                        Some(v) => self.check(member_type(m), v, &join(path, &m.name))?,
                    }
                }
                Ok(())
            }
            _ => Err(invalid()),
        }
    }

    /// Rebuilds typed JSON from flattened `name=value` pairs (`User.UserId`, `FileUrlList.0`),
    /// then validates it like a JSON body.
    pub fn unflatten(&self, action: &ActionDef, pairs: &[(String, String)]) -> Result<Value, ParamError> {
        let mut root = BTreeMap::new();
        for (key, value) in pairs {
            insert(&mut root, key, value)?;
        }
        let value = self.typed(Ty::Object(&action.input), Node::Branch(root), "")?;
        self.validate_input(action, &value)?;
        Ok(value)
    }

    fn typed(&self, ty: Ty<'_>, node: Node, path: &str) -> Result<Value, ParamError> {
        let invalid = || ParamError::Invalid { path: path.to_string(), expected: ty.expected() };
        match (ty, node) {
            (Ty::String, Node::Leaf(s)) => Ok(Value::String(s)),
            (Ty::Int, Node::Leaf(s)) => s.parse::<i64>().map(Value::from).map_err(|_| invalid()),
            (Ty::UInt, Node::Leaf(s)) => s.parse::<u64>().map(Value::from).map_err(|_| invalid()),
            (Ty::Float, Node::Leaf(s)) => {
                let f = s.parse::<f64>().map_err(|_| invalid())?;
                serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(invalid)
            }
            (Ty::Bool, Node::Leaf(s)) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(invalid()),
            },
            (Ty::List(element), Node::Branch(children)) => {
                let mut items: Vec<(usize, Node)> = Vec::with_capacity(children.len());
                for (index, child) in children {
                    let i = index.parse::<usize>().map_err(|_| invalid())?;
                    items.push((i, child));
                }
                items.sort_by_key(|(i, _)| *i);
                items
                    .into_iter()
                    .map(|(i, child)| self.typed(element_type(element), child, &join(path, &i.to_string())))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            (Ty::Object(name), Node::Branch(children)) => {
                let def = self.object(name).expect("object named in api.json exists");
                let mut map = Map::new();
                for (key, child) in children {
                    let member = def
                        .members
                        .iter()
                        .find(|m| m.name == key)
                        .ok_or_else(|| ParamError::Unknown(join(path, &key)))?;
                    let value = self.typed(member_type(member), child, &join(path, &key))?;
                    map.insert(key, value);
                }
                Ok(Value::Object(map))
            }
            _ => Err(invalid()),
        }
    }
}

fn insert(root: &mut BTreeMap<String, Node>, key: &str, value: &str) -> Result<(), ParamError> {
    let invalid = || ParamError::Invalid { path: key.to_string(), expected: "given once, as a single value" };
    let mut segments = key.split('.').peekable();
    let mut level = root;
    while let Some(segment) = segments.next() {
        if segment.is_empty() {
            return Err(ParamError::Unknown(key.to_string()));
        }
        if segments.peek().is_none() {
            if level.insert(segment.to_string(), Node::Leaf(value.to_string())).is_some() {
                return Err(invalid());
            }
            return Ok(());
        }
        let next = level.entry(segment.to_string()).or_insert_with(|| Node::Branch(BTreeMap::new()));
        level = match next {
            Node::Branch(children) => children,
            Node::Leaf(_) => return Err(invalid()),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn moderation(version: Version) -> (&'static ApiDefinition, &'static ActionDef) {
        let def = version.definition();
        (def, def.action("ImageModeration").unwrap())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_version_loads_with_its_own_actions() {
        for v in Version::ALL {
            let ims = v.service() == "ims";
            assert_eq!(v.definition().action("ImageModeration").is_some(), ims, "{v:?}");
            assert_eq!(v.definition().action("CreateBizConfig").is_some(), ims, "ims's own actions: ims only");
            assert_eq!(v.definition().action("AssessQuality").is_some(), !ims, "{v:?}");
            assert_eq!(Version::parse(v.as_str()), Some(v));
        }
        assert_eq!(Version::parse("2019-01-01"), None);
        assert!(Version::V20201229.definition().action("CreateImageModerationAsyncTask").is_some());
        assert!(Version::V20200713.definition().action("CreateImageModerationAsyncTask").is_none());
    }

    #[test]
    fn json_validation() {
        let (def, action) = moderation(Version::V20201229);
        assert_eq!(def.validate_input(action, &json!({"FileUrl": "x", "User": {"Age": 3}})), Ok(()));
        assert_eq!(
            def.validate_input(action, &json!({"FileUrl": "x", "Foo": 1})),
            Err(ParamError::Unknown("Foo".into()))
        );
        assert_eq!(
            def.validate_input(action, &json!({"User": {"Nick": "a"}})),
            Err(ParamError::Unknown("User.Nick".into()))
        );
        assert!(matches!(
            def.validate_input(action, &json!({"Interval": "5"})),
            Err(ParamError::Invalid { path, .. }) if path == "Interval"
        ));
        assert!(matches!(
            def.validate_input(action, &json!({"User": {"Age": -1}})),
            Err(ParamError::Invalid { path, .. }) if path == "User.Age"
        ));
        assert!(def.validate_input(action, &json!([1])).is_err());
        // Type and BizTag do not exist in the older version.
        let (old, old_action) = moderation(Version::V20200713);
        assert_eq!(old.validate_input(old_action, &json!({"Type": "IMAGE"})), Err(ParamError::Unknown("Type".into())));
    }

    #[test]
    fn required_members() {
        let def = Version::V20201229.definition();
        let action = def.action("CreateImageModerationAsyncTask").unwrap();
        assert_eq!(
            def.validate_input(action, &json!({"FileUrl": "x"})),
            Err(ParamError::Missing("CallbackUrl".into()))
        );
        assert_eq!(
            def.validate_input(action, &json!({"CallbackUrl": null})),
            Err(ParamError::Missing("CallbackUrl".into()))
        );
        assert_eq!(def.validate_input(action, &json!({"CallbackUrl": "http://a", "FileUrlList": ["a", "b"]})), Ok(()));
    }

    #[test]
    fn flattened_form_follows_declared_types() {
        let (def, action) = moderation(Version::V20201229);
        let v = def
            .unflatten(
                action,
                &pairs(&[("DataId", "123"), ("Interval", "5"), ("User.Age", "30"), ("User.UserId", "7")]),
            )
            .unwrap();
        assert_eq!(v, json!({"DataId": "123", "Interval": 5, "User": {"Age": 30, "UserId": "7"}}));
        let async_action = def.action("CreateImageModerationAsyncTask").unwrap();
        let v = def
            .unflatten(async_action, &pairs(&[("CallbackUrl", "u"), ("FileUrlList.1", "b"), ("FileUrlList.0", "a")]))
            .unwrap();
        assert_eq!(v["FileUrlList"], json!(["a", "b"]));
    }

    #[test]
    fn flattened_form_errors() {
        let (def, action) = moderation(Version::V20201229);
        let err = |list: &[(&str, &str)]| def.unflatten(action, &pairs(list)).unwrap_err();
        assert_eq!(err(&[("Nope", "1")]), ParamError::Unknown("Nope".into()));
        assert_eq!(err(&[("User.Nope", "1")]), ParamError::Unknown("User.Nope".into()));
        assert!(matches!(err(&[("Interval", "five")]), ParamError::Invalid { .. }));
        assert!(matches!(err(&[("Interval", "")]), ParamError::Invalid { .. }));
        assert!(matches!(err(&[("DataId", "a"), ("DataId", "b")]), ParamError::Invalid { .. }));
        assert!(matches!(err(&[("User", "x"), ("User.Age", "1")]), ParamError::Invalid { .. }));
        assert!(matches!(err(&[("User", "x")]), ParamError::Invalid { .. }));
        assert!(matches!(err(&[("User..Age", "1")]), ParamError::Unknown(_)));
    }
}
