//! taskhost's end-to-end tests: every test loads the real built plugin files.

mod cli;
mod loading;
mod panics;
