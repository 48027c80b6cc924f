//! A Rust client for Task Master's v1 API (the contract every client relies
//! on): REST calls whose refusals carry the contract's status, code and
//! message, and a project's live events over Socket.IO (Engine.IO v4 over
//! WebSocket). `taskmaster probe` runs the key user flow with it.
//!
//! Every call has a timeout. TLS uses rustls with ring; servers are trusted
//! by the system's roots, or by the certificates of one PEM file (a local
//! cluster's self-signed edge).

mod live;
mod rest;
mod trust;

pub use live::{JoinAck, Live, LiveError};
pub use rest::{ApiError, Client};
pub use trust::Trust;
