use taskhost::task;

#[task(queue_name = "emails\0")]
fn nul_in_queue() {}

#[task(queue_name = "a,b")]
fn comma_in_queue() {}

#[task(queue_name = "*")]
fn every_queue() {}

fn main() {}
