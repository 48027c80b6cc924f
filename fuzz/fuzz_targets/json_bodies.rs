//! Every JSON body the API takes, through the parser both edges use (REST
//! bodies and Socket.IO payloads) and on into the field rules: whatever the
//! bytes, the answer is a value or a 400 / 422 with a message, never a
//! panic and never a 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{
    AddMemberRequest, ChangePasswordRequest, CreateProjectRequest, LoginRequest, NewTask,
    RegisterRequest, TaskPatch,
};
use taskmaster_server::app::input::parse_json;
use taskmaster_server::domain::task as rules;
use taskmaster_server::error::Error;

fn refused_as_the_contract_says(error: Error) {
    let status = error.status_code();
    assert!(
        matches!(status, 400 | 409 | 422),
        "client input answered {status}: {error}"
    );
    assert!(!error.body().error.message.is_empty());
}

fn check<T>(result: Result<T, Error>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            refused_as_the_contract_says(error);
            None
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    if let Some(task) = check(parse_json::<NewTask>(bytes)) {
        check(rules::title(&task.title));
        for text in [&task.description, &task.details, &task.test_strategy].into_iter().flatten() {
            check(rules::long_text("details", text));
        }
        if let Some(dependencies) = &task.dependencies {
            check(rules::dependency_list(dependencies, None));
        }
    }
    if let Some(patch) = check(parse_json::<TaskPatch>(bytes)) {
        if let Some(title) = &patch.title {
            check(rules::title(title));
        }
        if let Some(dependencies) = &patch.dependencies {
            check(rules::dependency_list(dependencies, Some(1)));
        }
    }
    if let Some(request) = check(parse_json::<RegisterRequest>(bytes)) {
        check(rules::email(&request.email));
        check(rules::user_name(&request.name));
        check(rules::password(&request.password));
    }
    check(parse_json::<LoginRequest>(bytes));
    if let Some(request) = check(parse_json::<CreateProjectRequest>(bytes)) {
        check(rules::project_name(&request.name));
    }
    if let Some(request) = check(parse_json::<AddMemberRequest>(bytes)) {
        check(rules::email(&request.email));
    }
    if let Some(request) = check(parse_json::<ChangePasswordRequest>(bytes)) {
        check(rules::password(&request.new_password));
    }
});
