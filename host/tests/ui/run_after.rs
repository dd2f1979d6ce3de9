use taskhost::task;

#[task(run_after = "2030-01-01T00:00:00Z")]
fn later() {}

fn main() {}
