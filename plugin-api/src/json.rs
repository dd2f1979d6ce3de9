//! [`Json`]: a task's free-form values (arguments, return value) as JSON text.

use abi_stable::std_types::RString;
use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// A JSON value held as its text: a task's positional arguments (an array), its keyword
/// arguments (an object) or its return value.
///
/// Backends store and hand back these values without looking inside, so they cross the plugin
/// boundary as text and nobody parses them on the way: the host writes the text once when a
/// task is enqueued and reads it once when the task runs. [`Json::parse`] reads it as any type;
/// [`Json::encode`] writes one.
///
/// The text is valid JSON when it comes from the host or from [`Json::encode`] /
/// [`Json::from_text`]. [`Json::from_stored`] takes text a backend stored earlier without
/// checking it again.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Json(RString);

impl Json {
    /// `[]`: no positional arguments.
    pub fn empty_array() -> Self {
        Self("[]".into())
    }

    /// `{}`: no keyword arguments.
    pub fn empty_object() -> Self {
        Self("{}".into())
    }

    /// `null`.
    pub fn null() -> Self {
        Self("null".into())
    }

    /// The JSON text of `value`.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Self::from_stored)
    }

    /// `text`, checked to be one JSON value.
    pub fn from_text(text: impl Into<String>) -> Result<Self, serde_json::Error> {
        let text = text.into();
        serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
        Ok(Self::from_stored(text))
    }

    /// Text this backend stored from an earlier [`Json`] (a database column, a file), taken
    /// without checking it again. Text that is not JSON makes the task fail when it runs, with
    /// an error that says so.
    pub fn from_stored(text: impl Into<String>) -> Self {
        Self(RString::from(text.into()))
    }

    /// From the boundary's string type (no copy).
    pub(crate) fn from_rstring(text: RString) -> Self {
        Self(text)
    }

    /// As the boundary's string type (no copy).
    pub(crate) fn into_rstring(self) -> RString {
        self.0
    }

    /// Read the value as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.as_str())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0.into_string()
    }

    /// Whether the text is `[]` or `{}` (ignoring whitespace): no arguments.
    pub fn is_empty_container(&self) -> bool {
        let mut bytes = self.0.bytes().filter(|b| !b.is_ascii_whitespace());
        matches!(
            (bytes.next(), bytes.next(), bytes.next()),
            (Some(b'['), Some(b']'), None) | (Some(b'{'), Some(b'}'), None)
        )
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Json {
    /// Embeds the value itself, not a string holding it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match RawValue::from_string(self.0.to_string()) {
            Ok(raw) => raw.serialize(serializer),
            Err(e) => Err(serde::ser::Error::custom(format!(
                "stored JSON text is not JSON: {e}"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    /// Takes any JSON value, keeping its text.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self::from_stored(String::from(Box::<str>::from(raw))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_embed_as_values_and_read_back() {
        let args = Json::encode(&(1, "two", [3.5])).unwrap();
        assert_eq!(args.as_str(), r#"[1,"two",[3.5]]"#);
        let outer = serde_json::json!({ "args": args });
        assert_eq!(outer.to_string(), r#"{"args":[1,"two",[3.5]]}"#);
        let back: Json = serde_json::from_str(r#" [1, {"a": null}] "#).unwrap();
        assert_eq!(back.as_str(), r#"[1, {"a": null}]"#);
        let typed: (i32, serde_json::Value) = back.parse().unwrap();
        assert_eq!(typed.0, 1);
    }

    #[test]
    fn text_is_checked_unless_stored() {
        assert!(Json::from_text("[1,").is_err());
        assert!(Json::from_text("[1] 2").is_err());
        assert_eq!(Json::from_text(" {} ").unwrap().as_str(), " {} ");
        assert!(Json::from_text(" {} ").unwrap().is_empty_container());
        assert!(!Json::from_stored("[1]").is_empty_container());
    }
}
