//! How long laying out a project's dependency graph takes, on this machine
//! (natively; the web app runs the same code as WebAssembly).
//!
//!   cargo run --release -p taskmaster-board --example layout_timing
//!
//! Plans of 100, 1,000 and 5,000 tasks, each depending on up to three of
//! the 50 before it (a fixed pseudo-random choice), a third of them done;
//! the median of 51 layouts each, from scratch and seeded by the previous
//! layout as the live view does.

use std::time::{Duration, Instant};

use protocol::TaskStatus;
use taskmaster_board::graph::{Geometry, Graph, Item};

fn plan(count: i64) -> Vec<(i64, TaskStatus, Vec<i64>)> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|id| {
            let dependencies = (0..next() % 4)
                .filter(|_| id > 0)
                .map(|_| id - 1 - (next() % id.min(50) as u64) as i64)
                .collect();
            let status = if next() % 3 == 0 {
                TaskStatus::Done
            } else {
                TaskStatus::Pending
            };
            (id, status, dependencies)
        })
        .collect()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    println!("| Tasks | Edges | Layers | Layout (median of 51) | Seeded by the previous layout |");
    println!("| --- | --- | --- | --- | --- |");
    for count in [100, 1_000, 5_000] {
        let plan = plan(count);
        let items: Vec<Item<'_>> = plan
            .iter()
            .map(|(id, status, dependencies)| Item {
                id: *id,
                status: *status,
                dependencies,
            })
            .collect();
        let mut fresh = Vec::new();
        let mut seeded = Vec::new();
        let mut graph = Graph::layout(&items, Geometry::default(), None);
        for _ in 0..51 {
            let started = Instant::now();
            graph = Graph::layout(&items, Geometry::default(), None);
            fresh.push(started.elapsed());
            let started = Instant::now();
            graph = Graph::layout(&items, Geometry::default(), Some(&graph));
            seeded.push(started.elapsed());
        }
        println!(
            "| {count} | {} | {} | {:.2} ms | {:.2} ms |",
            graph.edges.len(),
            graph.layer_count(),
            median(fresh).as_secs_f64() * 1e3,
            median(seeded).as_secs_f64() * 1e3
        );
    }
}
