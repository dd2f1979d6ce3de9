//! `#[task]` refuses at compile time what Django refuses at run time (and what cannot be stored
//! as JSON): each `tests/ui/*.rs` must fail to compile with exactly its `.stderr`.

#[test]
fn task_attribute_reports_compile_time_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
