use taskhost::task;

#[task]
extern "C" fn exported() {}

fn main() {}
