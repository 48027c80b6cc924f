//! Any text as a task file (`task_NNN.txt` / `.md`): refused, or parsed;
//! what parses, generated again, parses to the same task.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskmaster_files::task_file::{generate, parse};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(task) = parse(text) else {
        return;
    };
    let (_, generated) = generate(&task.to_json(), "txt");
    let again = parse(&generated).expect("a generated task file parses");
    assert_eq!(again.id, task.id);
    assert_eq!(again.title, task.title);
    assert_eq!(again.subtasks.len(), task.subtasks.len());
});
