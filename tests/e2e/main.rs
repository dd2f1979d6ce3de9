//! taskhost's end-to-end tests: every test loads the real built plugin files.

mod abi;
mod authoring;
mod bad_plugins;
mod cli;
mod conformance;
mod crash;
mod custom_backend;
mod limits;
mod loading;
mod names;
mod outside_app;
mod panics;
mod parity;
mod plugin_files;
mod worker;
