use taskhost::task;

#[task]
fn greet(name: &str) -> usize {
    name.len()
}

#[task]
fn count(names: Vec<&'static str>) -> usize {
    names.len()
}

fn main() {}
