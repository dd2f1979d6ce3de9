//! Django's utility tests that `django.tasks` relies on:
//! `utils_tests/test_json.py::JSONNormalizeTestCase` (what `normalize_json` stores or refuses)
//! and `utils_tests/test_inspect.py::IsModuleLevelFunctionTestCase` (which functions may be
//! tasks). taskhost's counterparts are [`taskhost::to_storable`], applied to arguments at
//! enqueue and to return values after a run, and the `#[task]` attribute, which accepts free
//! functions only and is checked at compile time.

use super::tasks::{noop_task_async, VALUE_ERROR_MESSAGE};
use super::{default_on, IMMEDIATE};
use serde::{Serialize, Serializer};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use taskhost::to_storable;
use taskhost::{find_task, task, Error, TaskResultStatus};

/// A byte string, serialized as bytes (`serialize_bytes`), as `serde_bytes` would.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

#[derive(Serialize)]
struct Point {
    x: i32,
    y: Option<i32>,
}

#[derive(Serialize)]
enum Shape {
    Circle { radius: u32 },
    Empty,
}

// Mirrors JSONNormalizeTestCase.test_converts_json_types: everything JSON stores as is, with
// tuples as arrays and (UTF-8) bytes as strings.
#[test]
fn storable_values_become_their_json() {
    assert_eq!(to_storable(&()), Ok(json!(null)));
    assert_eq!(to_storable(&None::<i32>), Ok(json!(null)));
    assert_eq!(to_storable(&true), Ok(json!(true)));
    assert_eq!(to_storable(&1.5f64), Ok(json!(1.5)));
    assert_eq!(to_storable(&i64::MIN), Ok(json!(i64::MIN)));
    assert_eq!(to_storable(&u64::MAX), Ok(json!(u64::MAX)));
    assert_eq!(to_storable(&u128::from(u64::MAX)), Ok(json!(u64::MAX)));
    assert_eq!(to_storable("a"), Ok(json!("a")));
    assert_eq!(to_storable(&('a', "b")), Ok(json!(["a", "b"])));
    assert_eq!(to_storable(&vec![1, 2]), Ok(json!([1, 2])));
    assert_eq!(to_storable(&[(1, 2)]), Ok(json!([[1, 2]])));
    assert_eq!(to_storable(&Bytes(b"a")), Ok(json!("a")));
    assert_eq!(
        to_storable(&BTreeMap::from([("a", 1)])),
        Ok(json!({"a": 1}))
    );
    assert_eq!(
        to_storable(&HashMap::from([(1, "one")])),
        Ok(json!({"1": "one"}))
    );
    assert_eq!(
        to_storable(&Point { x: 1, y: None }),
        Ok(json!({"x": 1, "y": null}))
    );
    assert_eq!(
        to_storable(&[Shape::Circle { radius: 2 }, Shape::Empty]),
        Ok(json!([{"Circle": {"radius": 2}}, "Empty"]))
    );
}

// Mirrors JSONNormalizeTestCase.test_bytes_decode_error.
#[test]
fn bytes_that_are_not_utf8_are_an_unsupported_value() {
    let message = to_storable(&Bytes(&[0xff, 0xfe])).unwrap_err();
    assert_eq!(message, "Unsupported value: bytes (not valid UTF-8) at $");
    let message = to_storable(&(1, Bytes(b"\xc3"))).unwrap_err();
    assert_eq!(
        message,
        "Unsupported value: bytes (not valid UTF-8) at $[1]"
    );
}

// Mirrors JSONNormalizeTestCase.test_encode_error: what JSON cannot store is refused with where
// it is. (Django's other examples, object() or a set or a Decimal, are types without
// `Serialize`, which the compiler refuses as task arguments.)
#[test]
fn values_json_cannot_store_are_refused_with_their_place() {
    let cases: Vec<(Result<serde_json::Value, String>, &str)> = vec![
        (
            to_storable(&f64::NAN),
            "Unsupported value: NaN (a non-finite float cannot be stored as JSON) at $",
        ),
        (
            to_storable(&[1.0, f64::INFINITY]),
            "Unsupported value: inf (a non-finite float cannot be stored as JSON) at $[1]",
        ),
        (
            to_storable(&Point { x: 1, y: Some(2) })
                .and_then(|_| to_storable(&BTreeMap::from([("x", f32::NEG_INFINITY)]))),
            "Unsupported value: -inf (a non-finite float cannot be stored as JSON) at $.x",
        ),
        (
            to_storable(&BTreeMap::from([((1, 2), "pair")])),
            "Unsupported type: map key of type tuple (JSON object keys must be strings) at $",
        ),
        (
            to_storable(&(u128::from(u64::MAX) + 1)),
            "Unsupported value: 18446744073709551616 (integer out of JSON's 64-bit range) at $",
        ),
    ];
    for (result, expected) in cases {
        assert_eq!(result.unwrap_err(), expected);
    }
}

/// A task whose argument cannot be stored as JSON whatever its value.
#[task]
fn takes_pairs(pairs: BTreeMap<(i32, i32), String>) -> usize {
    pairs.len()
}

// Mirrors test_encode_error through the public API: enqueue refuses such an argument.
#[test]
fn enqueue_refuses_a_map_with_non_string_keys() {
    let _s = default_on(IMMEDIATE, "");
    let pairs = BTreeMap::from([((1, 2), "pair".to_string())]);
    match takes_pairs.enqueue(pairs) {
        Err(Error::UnsupportedValue(message)) => assert_eq!(
            message,
            "Unsupported type: map key of type tuple (JSON object keys must be strings) at args[0]"
        ),
        other => panic!("expected UnsupportedValue, got {other:?}"),
    }
    assert_eq!(
        takes_pairs.enqueue(BTreeMap::new()).unwrap().return_value(),
        Ok(0)
    );
}

/// A public task at module level.
#[task]
pub fn module_level_task() -> String {
    VALUE_ERROR_MESSAGE.to_string()
}

/// A private task (no `pub`).
#[task]
fn private_task(n: i64) -> i64 {
    n + 1
}

// Mirrors IsModuleLevelFunctionTestCase.test_from_module.
#[test]
fn a_module_level_function_is_a_task() {
    let _s = default_on(IMMEDIATE, "");
    assert_eq!(
        module_level_task.module_path(),
        "e2e::parity::utils::module_level_task"
    );
    assert!(find_task(module_level_task.module_path()).is_some());
    let result = module_level_task.enqueue().unwrap();
    assert_eq!(result.return_value().unwrap(), VALUE_ERROR_MESSAGE);
}

// Mirrors IsModuleLevelFunctionTestCase.test_private_function.
#[test]
fn a_private_function_is_a_task() {
    let _s = default_on(IMMEDIATE, "");
    assert!(find_task(private_task.module_path()).is_some());
    assert_eq!(private_task.enqueue(41).unwrap().return_value(), Ok(42));
}

// Mirrors IsModuleLevelFunctionTestCase.test_coroutine.
#[test]
fn an_async_function_is_a_task() {
    let _s = default_on(IMMEDIATE, "");
    assert!(noop_task_async.is_async());
    assert!(find_task(noop_task_async.module_path()).is_some());
    let result = noop_task_async.enqueue(1, 3).unwrap();
    assert_eq!(result.status(), TaskResultStatus::Successful);
}

// Mirrors IsModuleLevelFunctionTestCase.test_lambda: Rust closures cannot carry an attribute,
// and a `#[task]` nested inside a function is refused at compile time with Django's rule
// ("Task function must be defined at a module level."), so two nested tasks of one name can
// never share a path — see host/tests/ui/nested_function.rs.
