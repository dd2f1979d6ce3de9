use taskhost::task;

#[task]
fn many(first: i32, _: ...) {}

fn main() {}
