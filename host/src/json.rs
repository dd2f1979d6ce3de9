//! Turning task arguments and return values into JSON that can be stored
//! without loss.
//!
//! Django stores a task's arguments and return value as JSON and refuses,
//! when the task is enqueued, anything that is not JSON
//! (`TypeError("Unsupported type: <class 'datetime'>")`,
//! `ValueError("Unsupported value: ...")`). Here arguments are typed
//! `T: Serialize`, which rules out most foreign types at compile time, but
//! `serde_json::to_value` still accepts some values it cannot store:
//!
//! * non-finite floats (`NaN`, `inf`, `-inf`) silently become `null`, so the
//!   task would run with different arguments than it was given;
//! * `i128`/`u128` beyond 64 bits and non-string map keys fail with messages
//!   that say neither what was wrong in Django's terms nor where;
//! * nesting beyond what `serde_json::from_str` reads back (it stops at 128
//!   levels) is written happily and only fails when the task is loaded.
//!
//! [`to_storable`] is a `serde::Serializer` that builds the
//! [`serde_json::Value`] itself, in one pass, producing exactly what
//! `serde_json::to_value` would for everything JSON stores losslessly and
//! refusing the rest with a Django-style message that ends with the location
//! of the offending value, e.g.
//! `Unsupported value: NaN (a non-finite float cannot be stored as JSON) at $[1].x`.
//! The path starts at `$` (the value passed in) so that callers can replace
//! it with `args`, `kwargs` or `return value`.
//!
//! Two deliberate differences from `serde_json::to_value`: bytes
//! (`serialize_bytes`) become a string when they are valid UTF-8, as Django
//! decodes `bytes` to `str` (serde_json writes an array of numbers), and
//! float map keys are refused (serde_json writes them as strings, which does
//! not read back as the same key type).
//!
//! [`check_depth`] applies the only check that makes sense on a JSON tree
//! built elsewhere: its nesting depth.

use std::fmt::{self, Display};

use serde::ser::{self, Impossible, Serialize};
use serde_json::{Map, Value};

/// The deepest nesting [`to_storable`] accepts, counted in levels as
/// [`check_depth`] counts them: the value itself is level 1 and every array
/// or object (even an empty one) adds a level for its contents.
///
/// This is exactly what `serde_json::from_str` reads back with its default
/// recursion limit: at most 127 arrays or objects nested in each other.
pub const MAX_DEPTH: usize = 128;

/// Convert `value` to JSON, refusing what JSON cannot store losslessly.
///
/// For every value that JSON stores losslessly the result is exactly
/// `serde_json::to_value(value)`; bytes are the one exception: valid UTF-8
/// becomes a string, as Django decodes `bytes` to `str`. Refused, with a
/// message in Django's style:
///
/// * non-finite floats:
///   `Unsupported value: NaN (a non-finite float cannot be stored as JSON)`
///   (or `inf`, `-inf`);
/// * map keys that are not strings, integers, bools, chars or unit enum
///   variants (which become strings, as serde_json makes them):
///   `Unsupported type: map key of type tuple (JSON object keys must be strings)`;
/// * `i128`/`u128` outside the 64-bit range:
///   `Unsupported value: <n> (integer out of JSON's 64-bit range)`;
/// * bytes that are not UTF-8: `Unsupported value: bytes (not valid UTF-8)`;
/// * nesting deeper than [`MAX_DEPTH`]:
///   `Unsupported value: nesting deeper than 128 levels`.
///
/// Errors returned by the value's own `Serialize` implementation
/// (`serde::ser::Error::custom`) keep their message. Every message ends with
/// ` at ` and the path of the offending value relative to `value`, written
/// `$` for `value` itself, `[i]` for sequence and tuple elements, `.name` for
/// struct fields, enum variants and map keys that look like identifiers, and
/// `["key"]` for other map keys: `... at $[1].x`. Callers replace the leading
/// `$` with the name of what they converted (`args`, `kwargs`, ...).
pub fn to_storable<T: Serialize + ?Sized>(value: &T) -> Result<Value, String> {
    value
        .serialize(ValueSerializer { level: 1 })
        .map_err(Error::into_message)
}

/// Check an already-built JSON value tree for what [`to_storable`] would have
/// refused in it, which for a `Value` is only excessive nesting.
///
/// Levels are counted as for [`MAX_DEPTH`]: `value` itself is level 1 and
/// every array or object, even an empty one, needs one more level for its
/// contents; so `check_depth(v, MAX_DEPTH)` passes exactly the trees that
/// `serde_json::from_str` reads back. Cheap: it stops at `max_depth` levels
/// and allocates only to report an error, which has the format of
/// [`to_storable`]'s: `Unsupported value: nesting deeper than 128 levels at $[0].a`.
pub fn check_depth(value: &Value, max_depth: usize) -> Result<(), String> {
    /// Walks `value`, found at `level`; on error returns the path from the
    /// offending value back up to the root (innermost segment first).
    fn walk(value: &Value, level: usize, max_depth: usize) -> Result<(), Vec<Segment>> {
        match value {
            Value::Array(items) => {
                if level >= max_depth {
                    return Err(Vec::new());
                }
                for (index, item) in items.iter().enumerate() {
                    walk(item, level + 1, max_depth).map_err(|mut path| {
                        path.push(Segment::Index(index));
                        path
                    })?;
                }
                Ok(())
            }
            Value::Object(map) => {
                if level >= max_depth {
                    return Err(Vec::new());
                }
                for (key, item) in map {
                    walk(item, level + 1, max_depth).map_err(|mut path| {
                        path.push(Segment::Key(key.clone()));
                        path
                    })?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    let result = if max_depth == 0 {
        // Even a scalar occupies one level.
        Err(Vec::new())
    } else {
        walk(value, 1, max_depth)
    };
    result.map_err(|path| {
        Error {
            message: too_deep_message(max_depth),
            path,
        }
        .into_message()
    })
}

// ---------------------------------------------------------------------------
// Errors and paths
// ---------------------------------------------------------------------------

/// One step of the path from the root to an offending value.
#[derive(Debug)]
enum Segment {
    /// An element of a sequence or tuple: `[i]`.
    Index(usize),
    /// A struct field or an enum variant (the key of the object serde makes
    /// for a non-unit variant).
    Field(&'static str),
    /// A map key, already converted to a string.
    Key(String),
}

impl Segment {
    /// Appends this segment to a path being written.
    fn write_to(&self, out: &mut String) {
        use std::fmt::Write as _;
        let key = match self {
            Segment::Index(index) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "[{index}]");
                return;
            }
            Segment::Field(name) => *name,
            Segment::Key(key) => key.as_str(),
        };
        if is_identifier(key) {
            out.push('.');
            out.push_str(key);
        } else {
            out.push('[');
            // A JSON string literal: quoted and escaped, so the path stays
            // unambiguous whatever the key contains.
            out.push_str(&Value::String(key.to_owned()).to_string());
            out.push(']');
        }
    }
}

/// Whether `key` can be written `.key` in a path.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The error of the serializers below: a message, and the path to where it
/// happened, filled in innermost segment first as the error travels back up
/// through the containers (nothing is tracked while serializing succeeds).
#[derive(Debug)]
struct Error {
    message: String,
    path: Vec<Segment>,
}

impl Error {
    /// An error about the value being serialized, located there.
    fn new(message: String) -> Self {
        Error {
            message,
            path: Vec::new(),
        }
    }

    /// Records that the error happened inside `segment` of the enclosing
    /// container.
    fn within(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }

    /// The final message: `<message> at $<path>`.
    fn into_message(self) -> String {
        let mut out = self.message;
        out.push_str(" at $");
        for segment in self.path.iter().rev() {
            segment.write_to(&mut out);
        }
        out
    }
}

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error::new(msg.to_string())
    }
}

/// `Unsupported value: <what>`.
fn unsupported_value(what: impl Display) -> Error {
    Error::new(format!("Unsupported value: {what}"))
}

fn too_deep_message(max_depth: usize) -> String {
    format!("Unsupported value: nesting deeper than {max_depth} levels")
}

/// Refuses a non-finite float; the value as `serde_json` would store it
/// otherwise.
fn float_value(float: f64, stored: impl FnOnce() -> Value) -> Result<Value, Error> {
    if float.is_finite() {
        Ok(stored())
    } else {
        // Display writes "NaN", "inf" and "-inf".
        Err(unsupported_value(format_args!(
            "{float} (a non-finite float cannot be stored as JSON)"
        )))
    }
}

fn integer_out_of_range(n: impl Display) -> Error {
    unsupported_value(format_args!("{n} (integer out of JSON's 64-bit range)"))
}

/// Leaves room for `len` elements, without trusting an absurd size hint.
fn capacity(len: Option<usize>) -> usize {
    len.unwrap_or(0).min(1024)
}

// ---------------------------------------------------------------------------
// The value serializer
// ---------------------------------------------------------------------------

/// Serializes one value, found at nesting `level` (the root is level 1).
struct ValueSerializer {
    level: usize,
}

impl ValueSerializer {
    /// Opens an array or object at this level; returns the level of its
    /// contents, or refuses if that is deeper than [`MAX_DEPTH`].
    fn open(&self) -> Result<usize, Error> {
        open_at(self.level)
    }
}

/// Opens an array or object at `level`, as [`ValueSerializer::open`].
fn open_at(level: usize) -> Result<usize, Error> {
    if level >= MAX_DEPTH {
        Err(Error::new(too_deep_message(MAX_DEPTH)))
    } else {
        Ok(level + 1)
    }
}

/// `{variant: value}`, as serde_json writes non-unit enum variants.
fn single_entry(variant: &'static str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(variant.to_owned(), value);
    Value::Object(map)
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = Error;

    type SerializeSeq = SerializeVec;
    type SerializeTuple = SerializeVec;
    type SerializeTupleStruct = SerializeVec;
    type SerializeTupleVariant = SerializeTupleVariant;
    type SerializeMap = SerializeMap;
    type SerializeStruct = SerializeMap;
    type SerializeStructVariant = SerializeStructVariant;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, Error> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, Error> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, Error> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, Error> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, Error> {
        // The same preference as serde_json: unsigned when it fits.
        if let Ok(v) = u64::try_from(v) {
            Ok(Value::Number(v.into()))
        } else if let Ok(v) = i64::try_from(v) {
            Ok(Value::Number(v.into()))
        } else {
            Err(integer_out_of_range(v))
        }
    }

    fn serialize_u8(self, v: u8) -> Result<Value, Error> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, Error> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, Error> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, Error> {
        Ok(Value::Number(v.into()))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, Error> {
        u64::try_from(v)
            .map(|v| Value::Number(v.into()))
            .map_err(|_| integer_out_of_range(v))
    }

    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        float_value(v.into(), || Value::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        float_value(v, || Value::from(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::String(v.into()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::String(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        // Django decodes `bytes` as UTF-8 and stores a string.
        std::str::from_utf8(v)
            .map(|s| Value::String(s.to_owned()))
            .map_err(|_| unsupported_value("bytes (not valid UTF-8)"))
    }

    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(Value::String(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        let level = self.open()?;
        let inner = value
            .serialize(ValueSerializer { level })
            .map_err(|e| e.within(Segment::Field(variant)))?;
        Ok(single_entry(variant, inner))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeVec, Error> {
        Ok(SerializeVec {
            items: Vec::with_capacity(capacity(len)),
            level: self.open()?,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<SerializeVec, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SerializeVec, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeTupleVariant, Error> {
        // `{variant: [...]}`: the object, then the array inside it.
        let level = self.open()?;
        let level = open_at(level).map_err(|e| e.within(Segment::Field(variant)))?;
        Ok(SerializeTupleVariant {
            variant,
            items: SerializeVec {
                items: Vec::with_capacity(capacity(Some(len))),
                level,
            },
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<SerializeMap, Error> {
        Ok(SerializeMap {
            map: Map::with_capacity(capacity(len)),
            next_key: None,
            level: self.open()?,
        })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<SerializeMap, Error> {
        // serde_json's `RawValue` (feature `raw_value`) and arbitrary-precision
        // numbers (feature `arbitrary_precision`) travel as structs with
        // these private names; storing them as such would silently turn them
        // into objects.
        if name.starts_with("$serde_json::private::") {
            return Err(Error::new(format!(
                "Unsupported type: {name} (serde_json's raw or arbitrary-precision encoding)"
            )));
        }
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeStructVariant, Error> {
        // `{variant: {...}}`: the outer object, then the inner one.
        let level = self.open()?;
        let level = open_at(level).map_err(|e| e.within(Segment::Field(variant)))?;
        Ok(SerializeStructVariant {
            variant,
            fields: SerializeMap {
                map: Map::with_capacity(capacity(Some(len))),
                next_key: None,
                level,
            },
        })
    }
}

/// Builds an array (sequences, tuples, tuple structs).
struct SerializeVec {
    items: Vec<Value>,
    /// The level of the elements.
    level: usize,
}

impl SerializeVec {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let index = self.items.len();
        let item = value
            .serialize(ValueSerializer { level: self.level })
            .map_err(|e| e.within(Segment::Index(index)))?;
        self.items.push(item);
        Ok(())
    }
}

impl ser::SerializeSeq for SerializeVec {
    type Ok = Value;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Array(self.items))
    }
}

impl ser::SerializeTuple for SerializeVec {
    type Ok = Value;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Array(self.items))
    }
}

impl ser::SerializeTupleStruct for SerializeVec {
    type Ok = Value;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Array(self.items))
    }
}

/// Builds `{variant: [...]}`.
struct SerializeTupleVariant {
    variant: &'static str,
    items: SerializeVec,
}

impl ser::SerializeTupleVariant for SerializeTupleVariant {
    type Ok = Value;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.items
            .push(value)
            .map_err(|e| e.within(Segment::Field(self.variant)))
    }

    fn end(self) -> Result<Value, Error> {
        Ok(single_entry(self.variant, Value::Array(self.items.items)))
    }
}

/// Builds an object (maps and structs).
struct SerializeMap {
    map: Map<String, Value>,
    /// The key passed to `serialize_key`, waiting for its value.
    next_key: Option<String>,
    /// The level of the values.
    level: usize,
}

impl SerializeMap {
    fn insert<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> Result<(), Error> {
        match value.serialize(ValueSerializer { level: self.level }) {
            Ok(value) => {
                self.map.insert(key, value);
                Ok(())
            }
            Err(e) => Err(e.within(Segment::Key(key))),
        }
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        let value = value
            .serialize(ValueSerializer { level: self.level })
            .map_err(|e| e.within(Segment::Field(key)))?;
        self.map.insert(key.to_owned(), value);
        Ok(())
    }
}

impl ser::SerializeMap for SerializeMap {
    type Ok = Value;
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.next_key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        match self.next_key.take() {
            Some(key) => self.insert(key, value),
            None => Err(Error::new(
                "serialize_value called before serialize_key".to_owned(),
            )),
        }
    }

    fn serialize_entry<K, V>(&mut self, key: &K, value: &V) -> Result<(), Error>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        let key = key.serialize(KeySerializer)?;
        self.insert(key, value)
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.map))
    }
}

impl ser::SerializeStruct for SerializeMap {
    type Ok = Value;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.map))
    }
}

/// Builds `{variant: {...}}`.
struct SerializeStructVariant {
    variant: &'static str,
    fields: SerializeMap,
}

impl ser::SerializeStructVariant for SerializeStructVariant {
    type Ok = Value;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.fields
            .field(key, value)
            .map_err(|e| e.within(Segment::Field(self.variant)))
    }

    fn end(self) -> Result<Value, Error> {
        Ok(single_entry(self.variant, Value::Object(self.fields.map)))
    }
}

// ---------------------------------------------------------------------------
// The map key serializer
// ---------------------------------------------------------------------------

/// Turns a map key into a string the way serde_json does (strings as they
/// are; integers, bools and chars written out; unit variants by name;
/// newtype structs by their content) and refuses every other kind of key.
struct KeySerializer;

/// Refuses a map key of the given kind.
fn bad_key(kind: impl Display) -> Error {
    Error::new(format!(
        "Unsupported type: map key of type {kind} (JSON object keys must be strings)"
    ))
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;

    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_bool(self, v: bool) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_i8(self, v: i8) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_i16(self, v: i16) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_i32(self, v: i32) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_i64(self, v: i64) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_i128(self, v: i128) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_u8(self, v: u8) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_u16(self, v: u16) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_u32(self, v: u32) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_u64(self, v: u64) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_u128(self, v: u128) -> Result<String, Error> {
        Ok(v.to_string())
    }

    fn serialize_f32(self, _v: f32) -> Result<String, Error> {
        Err(bad_key("f32"))
    }

    fn serialize_f64(self, _v: f64) -> Result<String, Error> {
        Err(bad_key("f64"))
    }

    fn serialize_char(self, v: char) -> Result<String, Error> {
        Ok(v.into())
    }

    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_owned())
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Error> {
        Err(bad_key("bytes"))
    }

    fn serialize_none(self) -> Result<String, Error> {
        Err(bad_key("Option"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Err(bad_key("Option"))
    }

    fn serialize_unit(self) -> Result<String, Error> {
        Err(bad_key("()"))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<String, Error> {
        Err(bad_key(format_args!("unit struct {name}")))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_owned())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(bad_key(format_args!("enum variant {name}::{variant}")))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(bad_key("sequence"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(bad_key("tuple"))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(bad_key(format_args!("struct {name}")))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(bad_key(format_args!("enum variant {name}::{variant}")))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(bad_key("map"))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(bad_key(format_args!("struct {name}")))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(bad_key(format_args!("enum variant {name}::{variant}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::json;

    const NON_FINITE: &str = "(a non-finite float cannot be stored as JSON)";

    fn err<T: Serialize + ?Sized>(value: &T) -> String {
        to_storable(value).expect_err("should be refused")
    }

    fn nan_msg(what: &str, path: &str) -> String {
        format!("Unsupported value: {what} {NON_FINITE} at {path}")
    }

    #[derive(Serialize)]
    struct Point {
        x: f32,
        y: f64,
    }

    #[derive(Serialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Segment(f64, f64),
        Rect { w: f64, h: f32 },
    }

    // -- non-finite floats ---------------------------------------------------

    #[test]
    fn non_finite_floats_at_the_root() {
        assert_eq!(err(&f64::NAN), nan_msg("NaN", "$"));
        assert_eq!(err(&f64::INFINITY), nan_msg("inf", "$"));
        assert_eq!(err(&f64::NEG_INFINITY), nan_msg("-inf", "$"));
        assert_eq!(err(&f32::NAN), nan_msg("NaN", "$"));
        assert_eq!(err(&f32::INFINITY), nan_msg("inf", "$"));
        assert_eq!(err(&f32::NEG_INFINITY), nan_msg("-inf", "$"));
        assert_eq!(err(&-f64::NAN), nan_msg("NaN", "$"));
        assert_eq!(err(&Some(f64::NAN)), nan_msg("NaN", "$"));
    }

    #[test]
    fn non_finite_floats_in_containers() {
        assert_eq!(err(&vec![1.0, f64::INFINITY]), nan_msg("inf", "$[1]"));
        assert_eq!(err(&(1, f32::NEG_INFINITY)), nan_msg("-inf", "$[1]"));
        let args = (
            "a",
            Point {
                x: f32::NAN,
                y: 0.0,
            },
        );
        assert_eq!(err(&args), nan_msg("NaN", "$[1].x"));
        let args = (
            "a",
            vec![
                Point { x: 1.0, y: 2.0 },
                Point {
                    x: 1.0,
                    y: f64::INFINITY,
                },
            ],
        );
        assert_eq!(err(&args), nan_msg("inf", "$[1][1].y"));
        let nested = vec![vec![vec![Some(vec![0.5, f32::NAN])]]];
        assert_eq!(err(&nested), nan_msg("NaN", "$[0][0][0][1]"));
    }

    #[test]
    fn non_finite_floats_in_maps() {
        let mut map = BTreeMap::new();
        map.insert("ok", 1.0);
        map.insert("bad", f64::NAN);
        assert_eq!(err(&map), nan_msg("NaN", "$.bad"));

        // Keys that are not identifiers are quoted.
        let map = HashMap::from([("a b\"c", f64::NEG_INFINITY)]);
        assert_eq!(err(&map), nan_msg("-inf", r#"$["a b\"c"]"#));
        let map = HashMap::from([(7, f32::INFINITY)]);
        assert_eq!(err(&map), nan_msg("inf", r#"$["7"]"#));
        let map = HashMap::from([("", f32::INFINITY)]);
        assert_eq!(err(&map), nan_msg("inf", r#"$[""]"#));

        let kwargs = HashMap::from([(
            "shape",
            vec![Point {
                x: 0.0,
                y: f64::NAN,
            }],
        )]);
        assert_eq!(err(&kwargs), nan_msg("NaN", "$.shape[0].y"));
    }

    #[test]
    fn non_finite_floats_in_enum_variants() {
        assert_eq!(err(&Shape::Circle(f64::NAN)), nan_msg("NaN", "$.Circle"));
        assert_eq!(
            err(&Shape::Segment(1.0, f64::INFINITY)),
            nan_msg("inf", "$.Segment[1]")
        );
        assert_eq!(
            err(&[
                Shape::Dot,
                Shape::Rect {
                    w: 1.0,
                    h: f32::NAN
                }
            ]),
            nan_msg("NaN", "$[1].Rect.h")
        );

        #[derive(Serialize)]
        #[serde(tag = "type")]
        enum Tagged {
            A { value: f64 },
        }
        assert_eq!(
            err(&Tagged::A { value: f64::NAN }),
            nan_msg("NaN", "$.value")
        );

        #[derive(Serialize)]
        struct Outer {
            #[serde(flatten)]
            inner: Point,
        }
        assert_eq!(
            err(&Outer {
                inner: Point {
                    x: 0.0,
                    y: f64::NAN
                }
            }),
            nan_msg("NaN", "$.y")
        );
    }

    #[test]
    fn finite_floats_are_stored_as_serde_json_stores_them() {
        let value = (0.1f32, -0.0f64, f64::MAX, f32::MIN_POSITIVE, 1e-300);
        assert_eq!(
            to_storable(&value).unwrap(),
            serde_json::to_value(value).unwrap()
        );
    }

    // -- map keys --------------------------------------------------------------

    #[test]
    fn tuple_keys_are_refused() {
        let map = HashMap::from([((1, 2), "a")]);
        assert_eq!(
            err(&map),
            "Unsupported type: map key of type tuple (JSON object keys must be strings) at $"
        );
        let args = (1, vec![map]);
        assert_eq!(
            err(&args),
            "Unsupported type: map key of type tuple (JSON object keys must be strings) at $[1][0]"
        );
    }

    #[test]
    fn other_non_string_keys_are_refused() {
        fn key_err<K: Serialize + Ord>(key: K) -> String {
            err(&BTreeMap::from([(key, 0)]))
        }
        fn msg(kind: &str) -> String {
            format!(
                "Unsupported type: map key of type {kind} (JSON object keys must be strings) at $"
            )
        }

        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        struct Key {
            a: i32,
        }
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        struct Unit;
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        enum E {
            New(i32),
            Tup(i32, i32),
            Rec { a: i32 },
        }

        assert_eq!(key_err(Key { a: 1 }), msg("struct Key"));
        assert_eq!(key_err(vec![1]), msg("sequence"));
        assert_eq!(key_err(()), msg("()"));
        assert_eq!(key_err(Unit), msg("unit struct Unit"));
        assert_eq!(key_err(Some("a")), msg("Option"));
        assert_eq!(key_err(E::New(1)), msg("enum variant E::New"));
        assert_eq!(key_err(E::Tup(1, 2)), msg("enum variant E::Tup"));
        assert_eq!(key_err(E::Rec { a: 1 }), msg("enum variant E::Rec"));
        assert_eq!(key_err(BTreeMap::from([(1, 2)])), msg("map"));

        // Floats are refused as keys, even though serde_json writes them.
        struct FloatKey(f64);
        impl Serialize for FloatKey {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_f64(self.0)
            }
        }
        let with_float_key = FloatMap(vec![(FloatKey(1.5), 1)]);
        assert_eq!(err(&with_float_key), msg("f64"));
    }

    /// A map whose keys need not be `Hash`/`Ord`.
    struct FloatMap<K>(Vec<(K, i32)>);

    impl<K: Serialize> Serialize for FloatMap<K> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    #[test]
    fn scalar_keys_become_strings_as_in_serde_json() {
        fn same<T: Serialize>(value: T) {
            let expected = serde_json::to_value(&value).unwrap();
            assert_eq!(to_storable(&value).unwrap(), expected);
        }

        let ints = HashMap::from([(1, "a"), (-20, "b")]);
        assert_eq!(to_storable(&ints).unwrap(), json!({"1": "a", "-20": "b"}));
        same(ints);
        same(BTreeMap::from([(true, 1), (false, 2)]));
        same(BTreeMap::from([('x', 1)]));
        same(BTreeMap::from([(u64::MAX, 1)]));
        same(BTreeMap::from([(i128::MIN, 1)]));
        same(BTreeMap::from([(u128::MAX, 1)]));
        same(BTreeMap::from([(i8::MIN, 1)]));

        #[derive(Serialize, PartialEq, Eq, Hash)]
        enum Color {
            Red,
        }
        #[derive(Serialize, PartialEq, Eq, Hash)]
        struct Id(u32);
        same(HashMap::from([(Color::Red, 1)]));
        same(HashMap::from([(Id(3), 1)]));
    }

    // -- integers and bytes ------------------------------------------------------

    #[test]
    fn wide_integers_out_of_range_are_refused() {
        assert_eq!(
            err(&u128::MAX),
            format!(
                "Unsupported value: {} (integer out of JSON's 64-bit range) at $",
                u128::MAX
            )
        );
        let too_big = u128::from(u64::MAX) + 1;
        assert_eq!(
            err(&[too_big]),
            "Unsupported value: 18446744073709551616 (integer out of JSON's 64-bit range) at $[0]"
        );
        let too_small = i128::from(i64::MIN) - 1;
        assert_eq!(
            err(&("x", too_small)),
            "Unsupported value: -9223372036854775809 (integer out of JSON's 64-bit range) at $[1]"
        );
    }

    #[test]
    fn wide_integers_in_range_are_stored_as_serde_json_stores_them() {
        let value = (
            i128::from(i64::MIN),
            i128::from(u64::MAX),
            u128::from(u64::MAX),
            -1i128,
            0u128,
        );
        assert_eq!(
            to_storable(&value).unwrap(),
            serde_json::to_value(value).unwrap()
        );
        assert_eq!(to_storable(&i128::from(u64::MAX)).unwrap(), json!(u64::MAX));
    }

    /// Serializes with `serialize_bytes`, as `serde_bytes` does.
    struct Bytes<'a>(&'a [u8]);

    impl Serialize for Bytes<'_> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[test]
    fn utf8_bytes_become_strings() {
        assert_eq!(to_storable(&Bytes(b"hello")).unwrap(), json!("hello"));
        assert_eq!(
            to_storable(&Bytes("héllo".as_bytes())).unwrap(),
            json!("héllo")
        );
        assert_eq!(to_storable(&Bytes(b"")).unwrap(), json!(""));
        // A Vec<u8> is a sequence, not bytes: numbers, as in serde_json.
        assert_eq!(to_storable(&b"hi".to_vec()).unwrap(), json!([104, 105]));
    }

    #[test]
    fn invalid_utf8_bytes_are_refused() {
        assert_eq!(
            err(&Bytes(&[0xff, 0xfe])),
            "Unsupported value: bytes (not valid UTF-8) at $"
        );
        let kwargs = BTreeMap::from([("data", vec![Bytes(b"ok"), Bytes(&[b'a', 0xc3])])]);
        assert_eq!(
            err(&kwargs),
            "Unsupported value: bytes (not valid UTF-8) at $.data[1]"
        );
    }

    // -- custom errors -----------------------------------------------------------

    struct Failing;

    impl Serialize for Failing {
        fn serialize<S: ser::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
            Err(ser::Error::custom("cannot serialize a Failing"))
        }
    }

    #[test]
    fn custom_errors_keep_their_message() {
        assert_eq!(err(&Failing), "cannot serialize a Failing at $");
        let args = (1, BTreeMap::from([("f", Failing)]));
        assert_eq!(err(&args), "cannot serialize a Failing at $[1].f");
        // Also as a map key.
        let map = FloatMap(vec![(Failing, 1)]);
        assert_eq!(err(&map), "cannot serialize a Failing at $");
    }

    #[test]
    fn serde_json_private_encodings_are_refused() {
        struct Raw;
        impl Serialize for Raw {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct as _;
                let mut st = s.serialize_struct("$serde_json::private::RawValue", 1)?;
                st.serialize_field("$serde_json::private::RawValue", "1")?;
                st.end()
            }
        }
        assert!(err(&[Raw])
            .starts_with("Unsupported type: $serde_json::private::RawValue (serde_json's"));
        assert!(err(&[Raw]).ends_with(" at $[0]"));
    }

    // -- nesting -----------------------------------------------------------------

    /// `depth` arrays nested in each other, the innermost holding `inner`.
    fn nested_arrays(depth: usize, inner: Value) -> Value {
        (0..depth).fold(inner, |v, _| Value::Array(vec![v]))
    }

    fn path_of_zeros(n: usize) -> String {
        format!("${}", "[0]".repeat(n))
    }

    #[test]
    fn nesting_is_limited_to_what_serde_json_reads_back() {
        for depth in 120..=130 {
            let value = nested_arrays(depth, json!(1));
            let text = value.to_string();
            let readable = serde_json::from_str::<Value>(&text).is_ok();
            assert_eq!(to_storable(&value).is_ok(), readable, "depth {depth}");
            assert_eq!(
                check_depth(&value, MAX_DEPTH).is_ok(),
                readable,
                "depth {depth}"
            );

            // Empty arrays count as much as full ones.
            let empty = nested_arrays(depth - 1, json!([]));
            let readable = serde_json::from_str::<Value>(&empty.to_string()).is_ok();
            assert_eq!(to_storable(&empty).is_ok(), readable, "depth {depth}");
            assert_eq!(
                check_depth(&empty, MAX_DEPTH).is_ok(),
                readable,
                "depth {depth}"
            );
        }
        assert!(to_storable(&nested_arrays(127, json!(1))).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_with_its_location() {
        let value = nested_arrays(128, json!(null));
        let expected = format!(
            "Unsupported value: nesting deeper than 128 levels at {}",
            path_of_zeros(127)
        );
        assert_eq!(err(&value), expected);
        assert_eq!(check_depth(&value, MAX_DEPTH).unwrap_err(), expected);

        // Objects and enum variants count too.
        #[derive(Serialize)]
        enum List {
            Nil,
            Cons(Box<List>),
        }
        let list = |n: usize| (0..n).fold(List::Nil, |l, _| List::Cons(Box::new(l)));
        assert!(to_storable(&list(127)).is_ok());
        let e = err(&list(128));
        assert!(e.starts_with("Unsupported value: nesting deeper than 128 levels at $.Cons.Cons"));
        assert_eq!(e.matches(".Cons").count(), 127);
    }

    #[test]
    fn variants_count_the_levels_they_write() {
        // `{"V": [..]}` is two levels: at 126 arrays deep the object fits but
        // the array inside it does not.
        #[derive(Serialize)]
        enum E {
            T(i32, i32),
            S { a: i32 },
        }
        for depth in [125usize, 126] {
            let nested_t = NestedIn(depth, &E::T(1, 2));
            let nested_s = NestedIn(depth, &E::S { a: 1 });
            let expected_t = serde_json::to_value(&nested_t).unwrap();
            let readable = serde_json::from_str::<Value>(&expected_t.to_string()).is_ok();
            assert_eq!(to_storable(&nested_t).is_ok(), readable, "depth {depth}");
            assert_eq!(to_storable(&nested_s).is_ok(), readable, "depth {depth}");
            if !readable {
                let at = format!(" at {}.T", path_of_zeros(depth));
                assert!(err(&nested_t).ends_with(&at), "{}", err(&nested_t));
                let at = format!(" at {}.S", path_of_zeros(depth));
                assert!(err(&nested_s).ends_with(&at), "{}", err(&nested_s));
            }
        }
    }

    /// `.1` inside `.0` one-element arrays.
    struct NestedIn<'a, T>(usize, &'a T);

    impl<T: Serialize> Serialize for NestedIn<'_, T> {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq as _;
            if self.0 == 0 {
                return self.1.serialize(s);
            }
            let mut seq = s.serialize_seq(Some(1))?;
            seq.serialize_element(&NestedIn(self.0 - 1, self.1))?;
            seq.end()
        }
    }

    #[test]
    fn endless_nesting_stops_at_the_limit() {
        // Would recurse forever (and overflow the stack) without the limit.
        struct Endless;
        impl Serialize for Endless {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq as _;
                let mut seq = s.serialize_seq(Some(1))?;
                seq.serialize_element(&Endless)?;
                seq.end()
            }
        }
        assert!(
            err(&Endless).starts_with("Unsupported value: nesting deeper than 128 levels at $[0]")
        );
    }

    #[test]
    fn check_depth_counts_levels() {
        assert!(check_depth(&json!(1), 1).is_ok());
        assert!(check_depth(&json!([]), 1).is_err());
        assert!(check_depth(&json!([]), 2).is_ok());
        assert!(check_depth(&json!([[1]]), 3).is_ok());
        assert_eq!(
            check_depth(&json!(1), 0).unwrap_err(),
            "Unsupported value: nesting deeper than 0 levels at $"
        );
        let value = json!({"a": [1, {"b c": {}}]});
        assert_eq!(
            check_depth(&value, 3).unwrap_err(),
            "Unsupported value: nesting deeper than 3 levels at $.a[1]"
        );
        assert_eq!(
            check_depth(&value, 4).unwrap_err(),
            r#"Unsupported value: nesting deeper than 4 levels at $.a[1]["b c"]"#
        );
        assert!(check_depth(&value, 5).is_ok());
    }

    // -- equivalence with serde_json::to_value -------------------------------------

    #[derive(Serialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
    enum KeyKind {
        Alpha,
        Beta,
    }

    #[derive(Serialize, Debug, Clone)]
    struct Wrapper(Box<Node>);

    #[derive(Serialize, Debug, Clone)]
    struct Pair(i16, String);

    #[derive(Serialize, Debug, Clone)]
    struct Marker;

    #[derive(Serialize, Debug, Clone)]
    #[serde(tag = "kind")]
    enum Tagged {
        Plain,
        Full { n: i32, f: f64 },
    }

    #[derive(Serialize, Debug, Clone)]
    struct Flattened {
        id: u8,
        #[serde(flatten)]
        rest: BTreeMap<String, Node>,
    }

    /// A value tree covering the shapes serde can produce.
    #[derive(Serialize, Debug, Clone)]
    enum Node {
        Unit,
        Bool(bool),
        Int(i64),
        UInt(u64),
        Small(i8, u16, u32),
        Wide(i128, u128),
        F64(f64),
        F32(f32),
        Text(String),
        Char(char),
        Marker(Marker),
        Nothing(()),
        Opt(Option<Box<Node>>),
        List(Vec<Node>),
        Map(HashMap<String, Node>),
        IntMap(BTreeMap<i32, Node>),
        EnumMap(BTreeMap<KeyKind, Node>),
        Tuple((Box<Node>, Box<Node>)),
        Record {
            name: String,
            value: Box<Node>,
            flag: Option<bool>,
        },
        Wrapped(Wrapper),
        Pair(Pair),
        Tagged(Tagged),
        Flattened(Flattened),
        #[serde(untagged)]
        Untagged(Vec<Node>),
    }

    impl Node {
        fn has_non_finite(&self) -> bool {
            match self {
                Node::F64(f) => !f.is_finite(),
                Node::F32(f) => !f.is_finite(),
                Node::Tagged(Tagged::Full { f, .. }) => !f.is_finite(),
                Node::Opt(o) => o.as_ref().is_some_and(|n| n.has_non_finite()),
                Node::List(l) | Node::Untagged(l) => l.iter().any(Node::has_non_finite),
                Node::Map(m) => m.values().any(Node::has_non_finite),
                Node::IntMap(m) => m.values().any(Node::has_non_finite),
                Node::EnumMap(m) => m.values().any(Node::has_non_finite),
                Node::Flattened(f) => f.rest.values().any(Node::has_non_finite),
                Node::Tuple((a, b)) => a.has_non_finite() || b.has_non_finite(),
                Node::Record { value, .. } => value.has_non_finite(),
                Node::Wrapped(Wrapper(n)) => n.has_non_finite(),
                _ => false,
            }
        }
    }

    /// Node trees; with `non_finite`, some floats are NaN or infinite.
    fn node(non_finite: bool) -> impl Strategy<Value = Node> {
        use proptest::num::{f32 as pf32, f64 as pf64};
        let floats =
            (pf64::POSITIVE | pf64::NEGATIVE | pf64::NORMAL | pf64::SUBNORMAL | pf64::ZERO).boxed();
        let floats32 =
            (pf32::POSITIVE | pf32::NEGATIVE | pf32::NORMAL | pf32::SUBNORMAL | pf32::ZERO).boxed();
        let (floats, floats32) = if non_finite {
            let specials = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
            let specials32 = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
            (
                prop_oneof![1 => floats, 1 => prop::sample::select(specials)].boxed(),
                prop_oneof![1 => floats32, 1 => prop::sample::select(specials32)].boxed(),
            )
        } else {
            (floats, floats32)
        };
        let leaf = prop_oneof![
            Just(Node::Unit),
            Just(Node::Marker(Marker)),
            Just(Node::Nothing(())),
            any::<bool>().prop_map(Node::Bool),
            any::<i64>().prop_map(Node::Int),
            any::<u64>().prop_map(Node::UInt),
            (any::<i8>(), any::<u16>(), any::<u32>()).prop_map(|(a, b, c)| Node::Small(a, b, c)),
            (any::<i64>(), any::<u64>()).prop_map(|(a, b)| Node::Wide(a.into(), b.into())),
            floats.clone().prop_map(Node::F64),
            floats32.prop_map(Node::F32),
            ".{0,8}".prop_map(Node::Text),
            any::<char>().prop_map(Node::Char),
            (any::<i16>(), "[a-z ]{0,4}").prop_map(|(a, b)| Node::Pair(Pair(a, b))),
            Just(Node::Tagged(Tagged::Plain)),
            (any::<i32>(), floats).prop_map(|(n, f)| Node::Tagged(Tagged::Full { n, f })),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            let boxed = inner.clone().prop_map(Box::new);
            prop_oneof![
                prop::option::of(boxed.clone()).prop_map(Node::Opt),
                prop::collection::vec(inner.clone(), 0..5).prop_map(Node::List),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Node::Untagged),
                prop::collection::hash_map(".{0,6}", inner.clone(), 0..5).prop_map(Node::Map),
                prop::collection::btree_map(any::<i32>(), inner.clone(), 0..4)
                    .prop_map(Node::IntMap),
                prop::collection::btree_map(
                    prop_oneof![Just(KeyKind::Alpha), Just(KeyKind::Beta)],
                    inner.clone(),
                    0..3
                )
                .prop_map(Node::EnumMap),
                (boxed.clone(), boxed.clone()).prop_map(Node::Tuple),
                (".{0,6}", boxed.clone(), prop::option::of(any::<bool>()))
                    .prop_map(|(name, value, flag)| Node::Record { name, value, flag }),
                boxed.prop_map(|b| Node::Wrapped(Wrapper(b))),
                (
                    any::<u8>(),
                    prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                )
                    .prop_map(|(id, rest)| Node::Flattened(Flattened { id, rest })),
            ]
        })
    }

    /// Follows a `$...` path from an error message into `value`.
    fn follow<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
        let mut rest = path.strip_prefix('$')?;
        let mut here = value;
        while !rest.is_empty() {
            if rest.starts_with("[\"") {
                // A quoted key: read the JSON string literal.
                let literal = &rest[1..];
                let mut stream = serde_json::Deserializer::from_str(literal).into_iter::<String>();
                let key = stream.next()?.ok()?;
                let used = stream.byte_offset();
                here = here.get(key.as_str())?;
                rest = literal[used..].strip_prefix(']')?;
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']')?;
                here = here.get(after[..end].parse::<usize>().ok()?)?;
                rest = &after[end + 1..];
            } else if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                here = here.get(&after[..end])?;
                rest = &after[end..];
            } else {
                return None;
            }
        }
        Some(here)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// For everything JSON stores losslessly, the result is exactly
        /// serde_json's.
        #[test]
        fn same_as_serde_json(value in node(false)) {
            let expected = serde_json::to_value(&value).unwrap();
            prop_assert_eq!(to_storable(&value), Ok(expected.clone()));
            prop_assert!(check_depth(&expected, MAX_DEPTH).is_ok());
        }

        /// Non-finite floats are refused, and the path in the message leads
        /// to where serde_json would have silently written `null`.
        #[test]
        fn non_finite_floats_are_found(value in node(true)) {
            let expected = serde_json::to_value(&value).unwrap();
            match to_storable(&value) {
                Ok(stored) => {
                    prop_assert!(!value.has_non_finite());
                    prop_assert_eq!(stored, expected);
                }
                Err(message) => {
                    prop_assert!(value.has_non_finite(), "{}", message);
                    let (what, path) = message.split_once(" at ").unwrap();
                    prop_assert!(
                        what.starts_with("Unsupported value: ") && what.ends_with(NON_FINITE),
                        "{}", message
                    );
                    prop_assert_eq!(follow(&expected, path), Some(&Value::Null), "{}", message);
                }
            }
        }
    }
}
