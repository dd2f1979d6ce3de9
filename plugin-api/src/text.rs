//! [`Text`]: the strings of a task result (ids, paths, queue names, errors).

use abi_stable::std_types::RString;
use abi_stable::StableAbi;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// An owned string, used like `String` (it derefs to `str`, converts from and into `String`
/// and `&str`, compares with both). Task results hold their ids, paths and names as `Text` so
/// they cross the plugin boundary without being copied: a `String` made in one library has to
/// be copied into the other's allocator; a `Text` moves.
#[repr(transparent)]
#[derive(StableAbi, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(RString);

impl Text {
    /// An empty text.
    pub const fn new() -> Self {
        Self(RString::new())
    }

    /// The text as `&str`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The text as a `String`.
    pub fn into_string(self) -> String {
        self.0.into_string()
    }

    /// As the boundary's string type (no copy).
    pub(crate) fn into_rstring(self) -> RString {
        self.0
    }

    /// From the boundary's string type (no copy).
    pub(crate) fn from_rstring(value: RString) -> Self {
        Self(value)
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl From<String> for Text {
    fn from(value: String) -> Self {
        Self(RString::from(value))
    }
}

impl From<&str> for Text {
    fn from(value: &str) -> Self {
        Self(RString::from(value))
    }
}

impl From<&String> for Text {
    fn from(value: &String) -> Self {
        Self(RString::from(value.as_str()))
    }
}

impl From<Text> for String {
    fn from(value: Text) -> Self {
        value.into_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_used_like_a_string() {
        let text = Text::from("queue");
        assert_eq!(text, "queue");
        assert_eq!("queue", text);
        assert_eq!(text, String::from("queue"));
        assert_eq!(text.len(), 5);
        assert_eq!(format!("{text}/{text:?}"), "queue/\"queue\"");
        let mut set = std::collections::HashSet::new();
        set.insert(text.clone());
        assert!(set.contains("queue"));
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"queue\"");
        let back: Text = serde_json::from_str("\"queue\"").unwrap();
        assert_eq!(String::from(back), "queue");
    }
}
