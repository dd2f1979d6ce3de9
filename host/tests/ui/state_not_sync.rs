use std::rc::Rc;
use taskhost::{task, State};

#[task]
fn count(counter: State<Rc<u32>>) -> u32 {
    **counter
}

fn main() {}
