use taskhost::task;

#[task(cron = "61 * * * *")]
fn bad_minute() {}

#[task(cron = 5)]
fn not_a_string() {}

fn main() {}
