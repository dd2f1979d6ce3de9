use taskhost::task;

#[task]
unsafe fn dangerous() {}

fn main() {}
