use std::borrow::Cow;
use taskhost::task;

#[task]
fn greet<'a>(name: Cow<'a, str>) -> usize {
    name.len()
}

fn main() {}
