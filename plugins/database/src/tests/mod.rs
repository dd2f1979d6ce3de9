//! The behaviour suite, run against SQLite and PostgreSQL alike (see [`harness`]), calling the
//! backend through its ABI methods with a fake host, as `plugins/dummy` does.

mod admin;
mod api;
mod bench;
mod claim;
mod errors;
mod harness;
mod host;
mod lease;
mod notify;
mod retry;
mod schema;
