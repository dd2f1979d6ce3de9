//! taskhost's end-to-end tests: every test loads the real built plugin files.

mod abi;
mod cli;
mod custom_backend;
mod loading;
mod panics;
mod parity;
mod worker;
