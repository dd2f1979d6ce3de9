//! `#[task(cron = "…")]`: the expression is kept in the task's definition, and the task becomes
//! a periodic schedule of its backend alias, named by its path, unless the config has a
//! schedule of that name. (A bad expression does not compile: `tests/ui/bad_cron.rs`.)

use std::path::Path;
use taskhost::periodic::MissedTicks;
use taskhost::{override_task_backends, task, task_backends, Config};

/// Every ten seconds.
#[task(cron = "*/10 * * * * *")]
fn every_ten_seconds() {}

/// At 07:00 in code, at 08:00 in the config's schedule of the same name.
#[task(cron = "0 7 * * *")]
fn overridden() {}

/// On another alias.
#[task(cron = "0 7 * * *", backend = "other")]
fn on_another_alias() {}

/// Not periodic.
#[task]
fn plain() {}

#[test]
fn a_cron_task_is_a_schedule_of_its_alias_unless_the_config_names_it() {
    assert_eq!(every_ten_seconds.definition().cron, Some("*/10 * * * * *"));
    assert_eq!(plain.definition().cron, None);
    let toml = "[tasks.default]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n\
        [tasks.default.periodic]\n\"periodic_macro::overridden\" = \"0 8 * * *\"\n\
        [tasks.other]\nbackend = \"taskhost.backends.dummy.DummyBackend\"\n";
    let _config =
        override_task_backends(Config::from_toml_str(toml, None, Path::new("/")).unwrap());
    let schedules = task_backends().get("default").unwrap().periodic_schedules();
    let found: Vec<_> = schedules
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.task.as_str(),
                s.cron.as_str(),
                s.timezone.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "periodic_macro::every_ten_seconds",
                "periodic_macro::every_ten_seconds",
                "*/10 * * * * *",
                "UTC"
            ),
            (
                "periodic_macro::overridden",
                "periodic_macro::overridden",
                "0 8 * * *",
                "UTC"
            ),
        ]
    );
    assert!(schedules.iter().all(|s| s.missed == MissedTicks::Skip));
    let other = task_backends().get("other").unwrap().periodic_schedules();
    let names: Vec<_> = other.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["periodic_macro::on_another_alias"]);
}
