//! The behaviour suite, run against SQLite and PostgreSQL alike (see [`harness`]), calling the
//! backend through its `Backend` methods on the SDK's `TestHost`.

mod admin;
mod api;
mod bench;
mod bulk;
mod claim;
mod errors;
mod harness;
mod lease;
mod notify;
mod retry;
mod schema;
mod unique;
