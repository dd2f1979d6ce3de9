//! Tests of `json.rs`.
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
        format!("Unsupported type: map key of type {kind} (JSON object keys must be strings) at $")
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
    assert!(
        err(&[Raw]).starts_with("Unsupported type: $serde_json::private::RawValue (serde_json's")
    );
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
    assert!(err(&Endless).starts_with("Unsupported value: nesting deeper than 128 levels at $[0]"));
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
            prop::collection::btree_map(any::<i32>(), inner.clone(), 0..4).prop_map(Node::IntMap),
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

// -- the text writer ---------------------------------------------------------

/// `to_storable_text`'s answer, which must be `to_storable`'s written out by serde_json:
/// the same text byte for byte, or the same message.
#[track_caller]
fn same_text<T: Serialize + ?Sized>(value: &T) {
    let expected = to_storable(value).map(|v| serde_json::to_string(&v).unwrap());
    assert_eq!(to_storable_text(value), expected);
}

#[test]
fn text_is_what_the_value_writes() {
    // Unicode, escapes and control characters.
    same_text(&(
        "héllo wörld ✓ 日本語 🎉",
        "\"quoted\" \\ / \n\t\r\u{0}\u{1f}\u{7f}\u{2028}",
    ));
    same_text(&('é', '\u{10ffff}', '"'));
    // Floats, including what an f32 widens to and the extremes of both widths.
    same_text(&(
        0.1f32,
        1.0f32,
        -0.0f64,
        0.0f64,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324f64,
    ));
    same_text(&(
        f32::MAX,
        f32::MIN_POSITIVE,
        1e21f64,
        1e-7f64,
        123456789.125f64,
        2.5e15f64,
    ));
    // Integers at every width's edges, and wide ones in range.
    same_text(&(i64::MIN, i64::MAX, u64::MAX, i8::MIN, u16::MAX, 0i32));
    same_text(&(
        i128::from(i64::MIN),
        i128::from(u64::MAX),
        u128::from(u64::MAX),
        -1i128,
    ));
    // Nested arrays, options, unit values, bytes.
    same_text(&vec![vec![vec![1, 2], vec![]], vec![vec![3]]]);
    same_text(&(Some(1), None::<i32>, (), Marker, Bytes(b"text")));
    // Objects: keys sorted as `Value` sorts them, whatever order they come in.
    let map = HashMap::from([("zeta", 1), ("alpha", 2), ("Mid", 3), ("", 4), ("é", 5)]);
    same_text(&(map, Point { x: 1.5, y: -2.0 }));
    same_text(&BTreeMap::from([
        (10, "ten"),
        (9, "nine"),
        (-1, "minus one"),
    ]));
    // Enum variants of every kind, nested in arrays and objects.
    same_text(&[Shape::Dot, Shape::Circle(1.0), Shape::Segment(0.5, 2.0)]);
    same_text(&vec![Shape::Rect { w: 1.0, h: 2.0 }]);
    same_text(&HashMap::from([("shapes", vec![Shape::Segment(1.0, 2.0)])]));
    // Empty containers.
    same_text(&(Vec::<i32>::new(), HashMap::<String, i32>::new(), ()));
}

#[test]
fn text_refuses_what_the_value_refuses_with_the_same_message() {
    same_text(&(1, vec![2.0, f64::NAN]));
    same_text(&(1, f32::INFINITY));
    same_text(&vec![Shape::Segment(1.0, f64::NEG_INFINITY)]);
    same_text(&(Shape::Circle(f64::NAN),));
    same_text(&("x", HashMap::from([("k", f64::NAN)])));
    same_text(&(1, i128::MAX, 2));
    same_text(&vec![u128::MAX]);
    same_text(&(Bytes(b"\xff"),));
    same_text(&vec![HashMap::from([((1, 2), "tuple key")])]);
    same_text(&nested_arrays(128, json!(null)));
    same_text(&NestedIn(126, &Shape::Segment(1.0, 2.0)));
    same_text(&NestedIn(126, &Shape::Rect { w: 1.0, h: 2.0 }));
    same_text(&NestedIn(127, &Shape::Circle(1.0)));
    let long = (0..200).fold(String::new(), |s, _| s + "[") + &"]".repeat(200);
    same_text(&long);
}

#[test]
fn text_nesting_stops_where_the_value_stops() {
    for depth in 120..=130 {
        same_text(&nested_arrays(depth, json!(1)));
        same_text(&NestedIn(depth, &1));
        same_text(&NestedIn(depth, &Vec::<i32>::new()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The text writer writes what serde_json writes for the value, and refuses what the
    /// value refuses, with the same message.
    #[test]
    fn text_same_as_the_value_written(value in node(true)) {
        let expected = to_storable(&value).map(|v| serde_json::to_string(&v).unwrap());
        prop_assert_eq!(to_storable_text(&value), expected);
    }
}
