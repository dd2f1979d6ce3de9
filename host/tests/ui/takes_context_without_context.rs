use taskhost::{task, TaskContext};

#[task(takes_context)]
fn no_parameters() {}

#[task(takes_context)]
fn wrong_name(ctx: TaskContext, n: u32) {
    let _ = (ctx, n);
}

#[task(takes_context = true)]
fn context_not_first(n: u32, context: TaskContext) {
    let _ = (n, context);
}

fn main() {}
