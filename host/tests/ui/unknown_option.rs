use taskhost::task;

#[task(queue = "emails")]
fn misspelled() {}

#[task(retry::count = 3)]
fn path_option() {}

fn main() {}
