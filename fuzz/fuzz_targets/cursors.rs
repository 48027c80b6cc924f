//! Page cursors come back from clients: any text decodes to a page
//! position or a 400, and every cursor the server issues decodes to the
//! position it was made from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskmaster_server::app::{decode_cursor, encode_cursor};

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    match decode_cursor(&text) {
        Ok(after) => {
            assert!(after >= 0, "{text:?} decoded to {after}");
            // A cursor names one position: the server's own for it decodes the same.
            assert_eq!(decode_cursor(&encode_cursor(after)).unwrap(), after);
        }
        Err(error) => assert_eq!(error.status_code(), 400, "{text:?}: {error}"),
    }
    // Read as a number, the input is a position: its cursor round-trips.
    if let Ok(position) = text.trim().parse::<i64>() {
        if position >= 0 {
            assert_eq!(decode_cursor(&encode_cursor(position)).unwrap(), position);
        }
    }
});
