use taskhost::task;

#[task]
fn store<T: serde::Serialize>(value: T) {
    let _ = value;
}

#[task]
fn store_where<T>(value: T)
where
    T: Clone,
{
    let _ = value;
}

fn main() {}
