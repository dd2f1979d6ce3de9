use taskhost::{task, State};

#[task]
fn borrowed(greeting: State<&'static str>, name: String) -> String {
    format!("{} {name}", *greeting)
}

#[task]
fn opaque(service: State<impl Send + Sync + 'static>) {}

fn main() {}
