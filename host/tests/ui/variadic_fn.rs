use taskhost::task;

#[task]
fn many(first: i32, ...) {}

fn main() {}
