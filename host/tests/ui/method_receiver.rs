use taskhost::task;

struct Mailer;

impl Mailer {
    #[task]
    fn send(&self, to: String) {
        let _ = to;
    }
}

fn main() {
    let _ = Mailer;
}
