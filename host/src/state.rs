//! Application state: values the application registers once at start (a connection pool, an
//! HTTP client, settings) and tasks take as `State<T>` parameters.
//!
//! An [`AppState`] maps types to shared values. It belongs to the backend handler in force
//! (`task_backends().set_state(..)`, or `cli_main!(state = ..)` in `taskhost-cli`): a worker
//! takes it when it is built and refuses to start when a registered task takes a type it lacks;
//! an in-process backend (Immediate) gets it through the host callbacks its handler built it
//! with. Decision: `docs/decisions/016-application-state.md`.

use parking_lot::RwLock;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A task parameter `State<T>`: the value of type `T` the application registered in its
/// [`AppState`]. Not part of the task's stored arguments (`enqueue` does not take it); the
/// worker, or the in-process backend that runs the task, passes the registered value.
///
/// ```
/// use taskhost::{task, AppState, State};
///
/// /// What sends mail: built once, at start.
/// pub struct Mailer {
///     pub sender: String,
/// }
///
/// #[task]
/// fn welcome(mailer: State<Mailer>, user_id: u64) -> String {
///     format!("{} greets user {user_id}", mailer.sender)
/// }
///
/// fn main() -> Result<(), taskhost::Error> {
///     let state = AppState::new().with(Mailer { sender: "ops@example.com".into() });
///     taskhost::task_backends().set_state(state);
///     let result = welcome.enqueue(7)?; // on the default (Immediate) backend: runs at once
///     assert_eq!(result.return_value()?, "ops@example.com greets user 7");
///     // `call` runs the function here, with the state given by hand:
///     let mailer = State::new(Mailer { sender: "test".into() });
///     assert_eq!(welcome.call(mailer, 1), "test greets user 1");
///     Ok(())
/// }
/// ```
///
/// A task's state types must be `Send + Sync + 'static`: one value is shared by every run.
pub struct State<T: ?Sized>(pub Arc<T>);

impl<T> State<T> {
    /// A state value made by hand: for a task's `call` (in tests, say).
    pub fn new(value: T) -> Self {
        Self(Arc::new(value))
    }
}

impl<T: ?Sized> State<T> {
    /// The shared value.
    pub fn arc(&self) -> &Arc<T> {
        &self.0
    }

    /// The shared value, taken out.
    pub fn into_inner(self) -> Arc<T> {
        self.0
    }
}

impl<T: ?Sized> Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> Clone for State<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> From<Arc<T>> for State<T> {
    fn from(value: Arc<T>) -> Self {
        Self(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("State").field(&self.0).finish()
    }
}

/// The values tasks may take as [`State<T>`], one per type, registered once at start:
///
/// ```
/// use std::sync::Arc;
/// use taskhost::AppState;
///
/// trait Clock: Send + Sync {}
/// struct SystemClock;
/// impl Clock for SystemClock {}
///
/// let state = AppState::new()
///     .with(String::from("settings"))                 // tasks take State<String>
///     .with_arc::<dyn Clock>(Arc::new(SystemClock));  // tasks take State<dyn Clock>
/// assert!(state.get::<String>().is_some());
/// assert!(state.get::<u64>().is_none());
/// ```
///
/// Cloning is cheap (the values are shared). A later value of a type replaces the earlier one.
#[derive(Clone, Default)]
pub struct AppState {
    values: Arc<HashMap<TypeId, Entry>>,
}

#[derive(Clone)]
struct Entry {
    type_name: &'static str,
    /// An `Arc<T>`, so that unsized types (`dyn Trait`) can be registered too.
    value: Arc<dyn Any + Send + Sync>,
}

impl AppState {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// With `value` as the `State<T>` of every task that takes one.
    #[must_use]
    pub fn with<T: Send + Sync + 'static>(self, value: T) -> Self {
        self.with_arc(Arc::new(value))
    }

    /// With an already shared value; `T` may be unsized (`with_arc::<dyn Trait>(..)`).
    #[must_use]
    pub fn with_arc<T: ?Sized + Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        let entry = Entry {
            type_name: std::any::type_name::<T>(),
            value: Arc::new(value),
        };
        Arc::make_mut(&mut self.values).insert(TypeId::of::<T>(), entry);
        self
    }

    /// The value registered for `T`.
    pub fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<State<T>> {
        let entry = self.values.get(&TypeId::of::<T>())?;
        entry.value.downcast_ref::<Arc<T>>().cloned().map(State)
    }

    /// Whether a value of the type `type_id` is registered.
    pub fn contains(&self, type_id: TypeId) -> bool {
        self.values.contains_key(&type_id)
    }

    /// The registered types' names, sorted.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.values.values().map(|e| e.type_name).collect();
        names.sort_unstable();
        names
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.type_names()).finish()
    }
}

/// One `State<T>` parameter of a task, as `#[task]` records it: the type, named and identified
/// without needing `T` (`TypeId::of` and `type_name` are not `const`, so they are kept as
/// functions).
#[derive(Clone, Copy)]
pub struct StateType {
    /// `std::any::type_name::<T>`.
    pub type_name: fn() -> &'static str,
    /// `TypeId::of::<T>`.
    pub type_id: fn() -> TypeId,
}

impl StateType {
    /// The record of `T`.
    pub const fn of<T: ?Sized + 'static>() -> Self {
        Self {
            type_name: std::any::type_name::<T>,
            type_id: TypeId::of::<T>,
        }
    }
}

impl fmt::Debug for StateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str((self.type_name)())
    }
}

/// The state of one backend handler, shared with the host callbacks of the backends it loads
/// (so that a task the Immediate backend runs sees a state set after the backend was loaded).
pub(crate) type SharedState = Arc<RwLock<AppState>>;

#[cfg(test)]
mod tests {
    use super::*;

    trait Greet: Send + Sync {
        fn greet(&self) -> String;
    }
    struct En;
    impl Greet for En {
        fn greet(&self) -> String {
            "hello".into()
        }
    }

    #[test]
    fn values_are_found_by_type_sized_or_not_and_a_later_one_replaces_the_earlier() {
        let state = AppState::new()
            .with(1_u32)
            .with(String::from("a"))
            .with(String::from("b"))
            .with_arc::<dyn Greet>(Arc::new(En));
        assert_eq!(*state.get::<u32>().unwrap(), 1);
        assert_eq!(*state.get::<String>().unwrap(), "b");
        assert_eq!(state.get::<dyn Greet>().unwrap().greet(), "hello");
        assert!(state.get::<u64>().is_none());
        assert!(state.contains(TypeId::of::<dyn Greet>()));
        assert_eq!(
            format!("{state:?}"),
            format!(
                "{{\"alloc::string::String\", \"{}\", \"u32\"}}",
                std::any::type_name::<dyn Greet>()
            )
        );
    }

    #[test]
    fn a_clone_shares_the_values_and_adding_to_it_leaves_the_original_alone() {
        let first = AppState::new().with(String::from("shared"));
        let second = first.clone().with(2_u8);
        assert!(Arc::ptr_eq(
            first.get::<String>().unwrap().arc(),
            second.get::<String>().unwrap().arc()
        ));
        assert!(first.get::<u8>().is_none());
        assert_eq!(*second.get::<u8>().unwrap(), 2);
    }
}
