use taskhost::task;

#[task(priority = 101)]
fn too_high() {}

#[task(priority = -101)]
fn too_low() {}

#[task(priority = 1.5)]
fn fractional() {}

#[task(priority = "high")]
fn text() {}

const PRIORITY: i32 = 5;

#[task(priority = PRIORITY)]
fn not_a_literal() {}

fn main() {
    let _ = PRIORITY;
}
