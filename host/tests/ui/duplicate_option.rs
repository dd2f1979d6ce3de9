use taskhost::task;

#[task(priority = 1, queue_name = "a", priority = 2)]
fn twice() {}

fn main() {}
