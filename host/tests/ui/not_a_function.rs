use taskhost::task;

#[task]
struct NotAFunction;

fn main() {}
