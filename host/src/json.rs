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
//! [`to_storable_text`] writes the same JSON as text, byte for byte what
//! `serde_json` writes for [`to_storable`]'s value, without building the value
//! where it need not (what an enqueue sends the plugin is the text).
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
/// * nesting deeper than 128 levels (`serde_json`'s own reading limit):
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

/// [`to_storable`]'s JSON written as text: byte for byte what
/// `to_storable(value).map(|v| v.to_string())` gives, with the same refusals
/// and messages, but without building the tree where the text can be written
/// straight out. Arrays, strings and scalars are written as they are
/// serialized; objects (maps, structs, enum variants with fields) are still
/// built as a `Value` first and then written, because `Value` sorts their keys
/// and keeps the last of repeated keys, and the text must be the same.
pub(crate) fn to_storable_text<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let mut out = Vec::with_capacity(32);
    value
        .serialize(TextSerializer {
            out: &mut out,
            level: 1,
        })
        .map_err(Error::into_message)?;
    // Only serde_json's writers and ASCII punctuation wrote to it.
    String::from_utf8(out).map_err(|e| format!("Unsupported value: {e} at $"))
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
#[cfg(test)] // The nesting rule of `to_storable`, for values built as trees; only tests use it.
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
    check_finite(float).map(|()| stored())
}

/// Refuses a non-finite float.
fn check_finite(float: f64) -> Result<(), Error> {
    if float.is_finite() {
        Ok(())
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
// The text serializer
// ---------------------------------------------------------------------------

/// Writes one value, found at nesting `level`, as JSON text into `out`: what
/// [`ValueSerializer`] builds, written as serde_json writes it.
struct TextSerializer<'a> {
    out: &'a mut Vec<u8>,
    level: usize,
}

/// Writes `value` with serde_json's compact writer (numbers, escaped strings,
/// whole `Value`s), exactly as it writes them inside a `Value`.
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    serde_json::to_writer(out, value).map_err(|e| Error::new(e.to_string()))
}

impl<'a> TextSerializer<'a> {
    fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        write_json(self.out, value)
    }

    /// `{"variant":` of a variant written as a one-entry object.
    fn open_variant(&mut self, variant: &'static str) -> Result<(), Error> {
        self.out.push(b'{');
        write_json(self.out, variant)?;
        self.out.push(b':');
        Ok(())
    }
}

impl<'a> ser::Serializer for TextSerializer<'a> {
    type Ok = ();
    type Error = Error;

    type SerializeSeq = TextSeq<'a>;
    type SerializeTuple = TextSeq<'a>;
    type SerializeTupleStruct = TextSeq<'a>;
    type SerializeTupleVariant = TextTupleVariant<'a>;
    type SerializeMap = TextObject<'a, SerializeMap>;
    type SerializeStruct = TextObject<'a, SerializeMap>;
    type SerializeStructVariant = TextObject<'a, SerializeStructVariant>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        if let Ok(v) = u64::try_from(v) {
            self.json(&v)
        } else if let Ok(v) = i64::try_from(v) {
            self.json(&v)
        } else {
            Err(integer_out_of_range(v))
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match u64::try_from(v) {
            Ok(v) => self.json(&v),
            Err(_) => Err(integer_out_of_range(v)),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // A `Value` holds an f32 as the f64 it widens to, and is written as that.
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        check_finite(v)?;
        self.json(&v)
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.json(&v)
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.json(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        match std::str::from_utf8(v) {
            Ok(s) => self.json(s),
            Err(_) => Err(unsupported_value("bytes (not valid UTF-8)")),
        }
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.json(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let level = open_at(self.level)?;
        self.open_variant(variant)?;
        value
            .serialize(TextSerializer {
                out: &mut *self.out,
                level,
            })
            .map_err(|e| e.within(Segment::Field(variant)))?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<TextSeq<'a>, Error> {
        let level = open_at(self.level)?;
        self.out.push(b'[');
        Ok(TextSeq {
            out: self.out,
            level,
            len: 0,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<TextSeq<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<TextSeq<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<TextTupleVariant<'a>, Error> {
        let level = open_at(self.level)?;
        let level = open_at(level).map_err(|e| e.within(Segment::Field(variant)))?;
        self.open_variant(variant)?;
        self.out.push(b'[');
        Ok(TextTupleVariant {
            variant,
            items: TextSeq {
                out: self.out,
                level,
                len: 0,
            },
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        let builder = ValueSerializer { level: self.level }.serialize_map(len)?;
        Ok(TextObject {
            out: self.out,
            builder,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        let builder = ValueSerializer { level: self.level }.serialize_struct(name, len)?;
        Ok(TextObject {
            out: self.out,
            builder,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        let builder = ValueSerializer { level: self.level }
            .serialize_struct_variant(name, index, variant, len)?;
        Ok(TextObject {
            out: self.out,
            builder,
        })
    }
}

/// Writes an array (sequences, tuples, tuple structs); `[` is written.
struct TextSeq<'a> {
    out: &'a mut Vec<u8>,
    /// The level of the elements.
    level: usize,
    /// Elements written so far.
    len: usize,
}

impl TextSeq<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.len > 0 {
            self.out.push(b',');
        }
        let index = self.len;
        value
            .serialize(TextSerializer {
                out: &mut *self.out,
                level: self.level,
            })
            .map_err(|e| e.within(Segment::Index(index)))?;
        self.len += 1;
        Ok(())
    }

    fn close(self) {
        self.out.push(b']');
    }
}

impl ser::SerializeSeq for TextSeq<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTuple for TextSeq<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for TextSeq<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close();
        Ok(())
    }
}

/// Writes `{"variant":[...]}`; `{"variant":[` is written.
struct TextTupleVariant<'a> {
    variant: &'static str,
    items: TextSeq<'a>,
}

impl ser::SerializeTupleVariant for TextTupleVariant<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.items
            .push(value)
            .map_err(|e| e.within(Segment::Field(self.variant)))
    }

    fn end(self) -> Result<(), Error> {
        let out = self.items.out;
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

/// An object built as a `Value` by `builder` (one of the value serializer's
/// builders), written when it ends.
struct TextObject<'a, B> {
    out: &'a mut Vec<u8>,
    builder: B,
}

impl<B: ser::SerializeMap<Ok = Value, Error = Error>> ser::SerializeMap for TextObject<'_, B> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.builder.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.builder.serialize_value(value)
    }

    fn serialize_entry<K, V>(&mut self, key: &K, value: &V) -> Result<(), Error>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        self.builder.serialize_entry(key, value)
    }

    fn end(self) -> Result<(), Error> {
        write_json(self.out, &self.builder.end()?)
    }
}

impl<B: ser::SerializeStruct<Ok = Value, Error = Error>> ser::SerializeStruct
    for TextObject<'_, B>
{
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.builder.serialize_field(key, value)
    }

    fn end(self) -> Result<(), Error> {
        write_json(self.out, &self.builder.end()?)
    }
}

impl ser::SerializeStructVariant for TextObject<'_, SerializeStructVariant> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStructVariant::serialize_field(&mut self.builder, key, value)
    }

    fn end(self) -> Result<(), Error> {
        let value = ser::SerializeStructVariant::end(self.builder)?;
        write_json(self.out, &value)
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
#[path = "json_tests.rs"]
mod tests;
