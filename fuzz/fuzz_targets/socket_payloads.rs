//! Socket.IO event payloads (`join`, `leave`, `task:create`,
//! `task:update`, `task:delete`): whatever JSON a client sends, the handler
//! gets a value or a refusal with the contract's 400 / 422, as REST would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{JoinRequest, LeaveRequest, SocketCreateTask, SocketDeleteTask, SocketUpdateTask};
use serde_json::Value;
use taskmaster_server::error::Error;
use taskmaster_server::realtime::parse_payload;

fn refused_as_the_contract_says<T>(result: Result<T, Error>) {
    if let Err(error) = result {
        let status = error.status_code();
        assert!(matches!(status, 400 | 422), "a payload answered {status}: {error}");
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    refused_as_the_contract_says(parse_payload::<JoinRequest>(value.clone()));
    refused_as_the_contract_says(parse_payload::<LeaveRequest>(value.clone()));
    refused_as_the_contract_says(parse_payload::<SocketCreateTask>(value.clone()));
    refused_as_the_contract_says(parse_payload::<SocketUpdateTask>(value.clone()));
    refused_as_the_contract_says(parse_payload::<SocketDeleteTask>(value));
});
