use taskhost::{task, TaskContext};

#[task]
fn forgot_the_flag(context: TaskContext) {
    let _ = context;
}

fn main() {}
