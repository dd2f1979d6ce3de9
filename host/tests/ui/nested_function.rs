// Django's rule: "Task function must be defined at a module level." A task inside a function
// would share its module's path with any other nested task of the same name.
use taskhost::task;

fn enclosing() {
    #[task]
    fn twin() -> u8 {
        1
    }
}

fn main() {
    enclosing();
}
