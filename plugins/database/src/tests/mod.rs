//! The behaviour suite, run against SQLite and PostgreSQL alike (see [`harness`]), calling the
//! backend through its `Backend` methods on the SDK's `TestHost`.

mod admin;
mod api;
mod bench;
mod bulk;
mod cancel;
mod claim;
mod errors;
mod harness;
mod lease;
mod limits;
mod notify;
mod periodic;
mod retry;
mod schema;
mod unique;
mod wait;
