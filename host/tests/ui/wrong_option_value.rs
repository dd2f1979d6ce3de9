use taskhost::task;

#[task(queue_name = 3)]
fn queue_number() {}

#[task(backend = fast)]
fn backend_path() {}

#[task(takes_context = "yes")]
fn context_string() {}

#[task(max_attempts = 0)]
fn no_attempts() {}

#[task(max_attempts = -1)]
fn negative_attempts() {}

#[task(timeout = 0)]
fn zero_timeout() {}

#[task(timeout = -2.5)]
fn negative_timeout() {}

#[task(timeout = "30s")]
fn text_timeout() {}

#[task(priority)]
fn flag_priority() {}

fn main() {}
