use taskhost::task;

#[task(queue_name = "")]
fn empty_queue() {}

#[task(backend = "")]
fn empty_backend() {}

fn main() {}
