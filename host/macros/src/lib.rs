//! The `#[task]` attribute of taskhost, re-exported as `taskhost::task`: it turns a free `fn` or
//! `async fn` into a task (Django's `@task` decorator).
//!
//! Use it through `taskhost`; this crate only writes code that refers to `::taskhost`. The
//! examples here are not compiled (this crate cannot depend on `taskhost`); compiled ones are in
//! `taskhost`'s own documentation.
//!
//! ```ignore
//! use taskhost::task;
//!
//! /// Sends one email.
//! #[task(queue_name = "emails", priority = 10)]
//! pub fn send_email(to: String, subject: String) -> Result<u32, MailError> {
//!     // ...
//! }
//!
//! let result = send_email.enqueue("ada@example.com".into(), "Hello".into())?;
//! ```
//!
//! # Options
//!
//! Every option may be left out, and `#[task]` and `#[task()]` mean the same. Each is checked at
//! compile time, with Django's messages where Django has one.
//!
//! | option | value | default |
//! |---|---|---|
//! | `priority` | a whole number in -100..=100 (a larger number runs first) | `0` |
//! | `queue_name` | 1 to 255 bytes without control characters, commas or leading or trailing whitespace, not `"*"` | `"default"` |
//! | `backend` | a backend alias of `tasks.toml`, non-empty | `"default"` |
//! | `takes_context` | a flag, or `= true` / `= false` | `false` |
//! | `max_attempts` | a whole number, at least 1: attempts a worker may make | the backend's |
//! | `timeout` | seconds, an integer or float literal above zero: the time limit of one run | none |
//! | `cron` | a cron expression (5 fields, or 6 with seconds first), checked at compile time: the workers of the task's backend enqueue it at each tick, in UTC, missed ticks skipped (a schedule named by the task's path in `[tasks.<alias>.periodic]` overrides it) | none |
//!
//! ```ignore
//! #[task(priority = -20, queue_name = "reports", backend = "slow")]
//! fn nightly_report() {}
//!
//! #[task(max_attempts = 5, timeout = 2.5)]
//! async fn fetch(url: String) -> Result<String, FetchError> { /* ... */ }
//! ```
//!
//! `takes_context` passes the run's `TaskContext` (the result being run and the attempt number)
//! as the first argument, which must be named `context`; it is not part of the stored arguments,
//! so `enqueue` does not take it:
//!
//! ```ignore
//! use taskhost::{task, TaskContext};
//!
//! #[task(takes_context)]
//! fn resize(context: TaskContext, image_id: u64) -> u64 {
//!     println!("attempt {}", context.attempt());
//!     image_id
//! }
//!
//! resize.enqueue(7)?;
//! ```
//!
//! A parameter written `State<T>` (`taskhost::State`) takes the application state of type `T`
//! that the application registered once at start (`AppState::new().with(value)`, handed to
//! `cli_main!(state = ..)` or `task_backends().set_state(..)`): a connection pool, a client,
//! settings. It is not a stored argument either, may stand anywhere after the context, and works
//! on `fn` and `async fn`. A worker refuses to start when a task takes a type nobody provided:
//!
//! ```ignore
//! use taskhost::{task, State};
//!
//! #[task]
//! async fn send(mailer: State<Mailer>, user_id: u64) -> Result<(), MailError> {
//!     mailer.send_welcome(user_id).await
//! }
//!
//! send.enqueue(42)?;                                  // the state is not an argument
//! send.call(State::new(Mailer::fake()), 42)?;         // but `call` takes it
//! ```
//!
//! `run_after` cannot be given here, as in Django: set it per enqueue with
//! `task.using(TaskOptions::new().run_after(when))?`.
//!
//! # What it generates
//!
//! For `fn send_email(to: String, n: u32) -> Result<u32, MyErr>`, the name `send_email` becomes
//! both a type and a `static` value of that type (with the function's docs and visibility):
//!
//! - `send_email.enqueue(to, n)` / `.aenqueue(to, n).await` →
//!   `taskhost::Result<TaskResult<u32>>`: typed arguments in, a typed result out. The arguments
//!   are stored as a JSON array.
//! - `send_email.call(to, n)` / `.acall(to, n).await` run the function now and return what it
//!   returns (every parameter as written, `context` and `State<T>` ones too; an `async fn`'s
//!   `call` blocks).
//! - `send_email.using(options)` → a re-validated copy with other options.
//! - Everything of `taskhost::Task<(String, u32), u32>` through `Deref`: `name()`,
//!   `module_path()`, `priority()`, `queue_name()`, `backend()`, `get_result(id)`…; `task()`
//!   returns that `Task` itself.
//!
//! The task registers itself under its path, `module_path!()` + `::` + the function name, so a
//! worker finds it with no hand-kept list. The function itself stays, hidden, as
//! `__taskhost_fn_send_email`.
//!
//! The return type decides what is stored: for a type whose last path segment is `Result`
//! (`Result`, `std::io::Result`, `anyhow::Result`…), `Ok(value)` is stored as the return value
//! and `Err(e)` fails the run with `e`'s type and cause chain; any other type is stored as is;
//! no return type stores `null`. A panic fails the run too.
//!
//! # What is refused at compile time
//!
//! - methods (a `self` parameter): `Task function must be defined at a module level.`
//! - generic or lifetime parameters, `impl Trait` or reference parameters: arguments are stored
//!   as JSON and decoded when the task runs, so each needs an owned, concrete type (`String`,
//!   not `&str`);
//! - `const`, `unsafe`, `extern` and variadic functions;
//! - `takes_context` without a first parameter named `context`: `Task takes context but does not
//!   have a first argument of 'context'.`; a `TaskContext` parameter without `takes_context`;
//! - a `State<T>` whose `T` borrows or is `impl Trait` (one value serves every run, so it must
//!   be owned and `'static`); a `T` that is not `Send + Sync` is reported at the type;
//! - a priority that is not a whole number in -100..=100: `priority must be a whole number
//!   between -100 and 100.`;
//! - a `queue_name` that breaks the host's queue-name rule, with the host's message:
//!   `Invalid queue name 'a,b': a queue name must be 1 to 255 bytes without control characters,
//!   commas or leading or trailing whitespace, and not '*' (it has a comma, …).`;
//! - `run_after`, unknown or repeated options, values of the wrong kind, an empty `queue_name` or
//!   `backend`, `max_attempts = 0`, a `timeout` that is not above zero.

mod errors;
mod expand;
mod options;
mod signature;

use proc_macro::TokenStream;

/// Make a free `fn` or `async fn` a task (Django's `@task`).
///
/// Written `#[task]`, `#[task()]` or with options:
/// `#[task(priority = 10, queue_name = "emails", backend = "fast", takes_context,
/// max_attempts = 3, timeout = 30)]`.
///
/// - `priority = N`: whole number in -100..=100, default `0`; larger runs first.
/// - `queue_name = "name"`: the queue it is enqueued to, default `"default"`.
/// - `backend = "alias"`: the `tasks.toml` alias it is enqueued on, default `"default"`.
/// - `takes_context` (or `takes_context = true`/`false`): pass the run's `TaskContext` as the
///   first parameter, which must be `context: TaskContext`.
/// - `max_attempts = N`: at least 1; how many times a worker may try (default: the backend's).
/// - `timeout = SECONDS`: integer or float above zero; the time limit of one run.
///
/// A parameter `State<T>` is not an option: it takes the application state of type `T`, not a
/// stored argument (see the crate documentation).
///
/// ```ignore
/// use taskhost::{task, TaskContext, TaskOptions};
///
/// /// Adds two numbers.
/// #[task]
/// pub fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// #[task(priority = 10, queue_name = "emails", takes_context, max_attempts = 3, timeout = 30)]
/// pub async fn send_email(context: TaskContext, to: String) -> Result<(), MailError> {
///     // ...
/// }
///
/// let result = add.enqueue(2, 3)?;                    // TaskResult<i64>
/// assert_eq!(add.call(2, 3), 5);                      // runs it now
/// assert_eq!(add.module_path(), concat!(module_path!(), "::add"));
/// let urgent = send_email.using(TaskOptions::new().priority(50))?;
/// urgent.enqueue("ada@example.com".to_string())?;     // the context is not an argument
/// ```
///
/// The name of the function becomes a type and a `static` of that type: call the function
/// through `.call(..)` / `.acall(..)`. See the crate documentation for everything generated and
/// every compile-time error.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::task(attr.into(), item.into()).into()
}
