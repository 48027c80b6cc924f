//! Integration tests: a real server on a real PostgreSQL, driven over HTTP.
//! Each test gets its own database and its own server on port 0.

mod auth;
mod bad_input;
mod bulkheads;
mod cache;
mod chaos;
mod cluster;
mod concurrency;
mod dependencies;
mod deploy;
mod edge;
mod embedded;
mod explain;
mod helpers;
mod members;
mod monitoring;
mod next_task;
mod observability;
mod openapi;
mod operations;
mod pagination;
mod perf_guard;
mod pg_cluster;
mod probe;
mod realtime;
mod redis_cluster;
mod replicas;
mod retention;
mod roles;
mod scale;
mod schemathesis;
mod security;
mod shedding;
mod sockets;
mod tasks;
mod web;
