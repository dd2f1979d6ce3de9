use taskhost::task;

#[task]
fn iterator() -> impl Iterator<Item = u8> {
    0..3
}

#[task]
fn borrowed() -> &'static str {
    "x"
}

#[task]
fn formatted() -> std::fmt::Result {
    Ok(())
}

fn main() {}
