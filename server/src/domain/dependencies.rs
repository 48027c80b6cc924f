//! Dependency cycles.
//!
//! Dependencies form a directed graph inside a project (task → the tasks it
//! depends on). A change to task `t`'s dependencies closes a cycle exactly when
//! `t` is reachable from one of its new dependencies; only that part of the
//! graph matters, so the caller loads it and asks [`find_cycle`].

use std::collections::{HashMap, HashSet, VecDeque};

/// The dependency lists known so far, by task id.
pub type DependencyGraph = HashMap<i64, Vec<i64>>;

/// If giving `task` the dependencies `new_dependencies` would close a cycle,
/// returns it as a path that starts and ends with `task`
/// (`[7, 3, 5, 7]`: 7 depends on 3, 3 on 5, 5 on 7).
///
/// `graph` holds the other tasks' current lists; `task`'s own entry is ignored
/// in favour of `new_dependencies`. Missing entries count as "no dependencies",
/// so the caller must load every task reachable from `new_dependencies`
/// (see [`unexplored`]).
pub fn find_cycle(
    task: i64,
    new_dependencies: &[i64],
    graph: &DependencyGraph,
) -> Option<Vec<i64>> {
    // Breadth-first from the new dependencies, remembering how each task was
    // reached, so the reported cycle is a shortest one.
    let mut came_from: HashMap<i64, i64> = HashMap::new();
    let mut queue: VecDeque<i64> = VecDeque::new();
    for &dependency in new_dependencies {
        if dependency == task {
            return Some(vec![task, task]);
        }
        if came_from.insert(dependency, task).is_none() {
            queue.push_back(dependency);
        }
    }
    while let Some(current) = queue.pop_front() {
        for &next in graph.get(&current).map(Vec::as_slice).unwrap_or_default() {
            if next == task {
                // Walk back to the dependency we started from, then read the
                // chain forwards: task → first dependency → … → current → task.
                let mut chain = vec![current];
                let mut step = current;
                while let Some(&previous) = came_from.get(&step) {
                    if previous == task {
                        break;
                    }
                    chain.push(previous);
                    step = previous;
                }
                let mut path = Vec::with_capacity(chain.len() + 2);
                path.push(task);
                path.extend(chain.into_iter().rev());
                path.push(task);
                return Some(path);
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = came_from.entry(next) {
                entry.insert(current);
                queue.push_back(next);
            }
        }
    }
    None
}

/// Tasks reachable from `start` whose dependency lists are not in `graph` yet:
/// what the caller must load next. Empty once the reachable part is complete.
pub fn unexplored(start: &[i64], graph: &DependencyGraph) -> Vec<i64> {
    let mut seen: HashSet<i64> = HashSet::new();
    let mut missing = Vec::new();
    let mut stack: Vec<i64> = start.to_vec();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        match graph.get(&id) {
            Some(dependencies) => stack.extend(dependencies.iter().copied()),
            None => missing.push(id),
        }
    }
    missing.sort_unstable();
    missing
}

/// "3 → 5 → 7 → 3", for error messages.
pub fn describe(path: &[i64]) -> String {
    path.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(i64, &[i64])]) -> DependencyGraph {
        edges
            .iter()
            .map(|(id, deps)| (*id, deps.to_vec()))
            .collect()
    }

    #[test]
    fn no_cycle_in_a_chain() {
        let g = graph(&[(1, &[]), (2, &[1]), (3, &[2])]);
        assert_eq!(find_cycle(4, &[3], &g), None);
        assert_eq!(find_cycle(1, &[], &g), None);
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        assert_eq!(
            find_cycle(5, &[5], &DependencyGraph::new()),
            Some(vec![5, 5])
        );
    }

    #[test]
    fn direct_cycle() {
        // 2 depends on 1; making 1 depend on 2 closes 1 → 2 → 1.
        let g = graph(&[(1, &[]), (2, &[1])]);
        assert_eq!(find_cycle(1, &[2], &g), Some(vec![1, 2, 1]));
    }

    #[test]
    fn cycle_through_several_tasks() {
        // 4 → 3 → 2 → 1; making 1 depend on 4 closes a four-task cycle.
        let g = graph(&[(1, &[]), (2, &[1]), (3, &[2]), (4, &[3])]);
        assert_eq!(find_cycle(1, &[4], &g), Some(vec![1, 4, 3, 2, 1]));
    }

    #[test]
    fn the_shortest_cycle_is_reported() {
        // 1 can reach itself via 5 → 1 or via 4 → 3 → 2 → 1.
        let g = graph(&[(2, &[1]), (3, &[2]), (4, &[3]), (5, &[1])]);
        assert_eq!(find_cycle(1, &[4, 5], &g), Some(vec![1, 5, 1]));
    }

    #[test]
    fn the_tasks_own_old_list_is_ignored() {
        // 1 used to depend on 2; replacing that with [3] creates no cycle.
        let g = graph(&[(1, &[2]), (2, &[]), (3, &[])]);
        assert_eq!(find_cycle(1, &[3], &g), None);
    }

    #[test]
    fn diamonds_are_not_cycles() {
        let g = graph(&[(1, &[]), (2, &[1]), (3, &[1]), (4, &[2, 3])]);
        assert_eq!(find_cycle(5, &[4, 2], &g), None);
    }

    #[test]
    fn unexplored_lists_what_to_load_next() {
        let mut g = DependencyGraph::new();
        assert_eq!(unexplored(&[3, 2], &g), vec![2, 3]);
        g.insert(3, vec![1]);
        g.insert(2, vec![1, 7]);
        assert_eq!(unexplored(&[3, 2], &g), vec![1, 7]);
        g.insert(1, vec![]);
        g.insert(7, vec![]);
        assert!(unexplored(&[3, 2], &g).is_empty());
    }

    #[test]
    fn describes_paths() {
        assert_eq!(describe(&[1, 4, 3, 1]), "1 → 4 → 3 → 1");
    }

    mod properties {
        use std::collections::BTreeSet;

        use proptest::prelude::*;

        use super::super::*;

        /// Up to 8 tasks (ids 1..=8), each with any list of the others, and
        /// a change: one task's new list.
        fn change() -> impl Strategy<Value = (DependencyGraph, i64, Vec<i64>)> {
            let list = || proptest::collection::btree_set(1..=8i64, 0..4);
            (
                proptest::collection::btree_map(1..=8i64, list(), 0..8),
                1..=8i64,
                list(),
            )
                .prop_map(|(graph, task, new)| {
                    let graph = graph
                        .into_iter()
                        .map(|(id, deps)| (id, deps.into_iter().collect()))
                        .collect();
                    (graph, task, new.into_iter().collect())
                })
        }

        /// The graph after the change: `task`'s list replaced.
        fn changed(graph: &DependencyGraph, task: i64, new: &[i64]) -> DependencyGraph {
            let mut graph = graph.clone();
            graph.insert(task, new.to_vec());
            graph
        }

        /// The oracle, by brute force: the length (in edges) of the shortest
        /// walk from `task` back to itself, found by stepping every walk one
        /// edge at a time — a shortest closed walk is a shortest cycle.
        fn shortest_cycle(graph: &DependencyGraph, task: i64) -> Option<usize> {
            let mut frontier: BTreeSet<i64> = BTreeSet::from([task]);
            for length in 1..=graph.len() + 1 {
                frontier = frontier
                    .iter()
                    .flat_map(|id| graph.get(id).into_iter().flatten().copied())
                    .collect();
                if frontier.contains(&task) {
                    return Some(length);
                }
            }
            None
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn a_cycle_is_found_exactly_when_there_is_one_and_is_a_shortest_one(
                (graph, task, new) in change()
            ) {
                let after = changed(&graph, task, &new);
                let found = find_cycle(task, &new, &graph);
                prop_assert_eq!(found.is_some(), shortest_cycle(&after, task).is_some());
                if let Some(path) = found {
                    prop_assert_eq!(path.first(), Some(&task));
                    prop_assert_eq!(path.last(), Some(&task));
                    for step in path.windows(2) {
                        prop_assert!(
                            after.get(&step[0]).is_some_and(|deps| deps.contains(&step[1])),
                            "{} does not depend on {} in {:?}", step[0], step[1], after
                        );
                    }
                    prop_assert_eq!(Some(path.len() - 1), shortest_cycle(&after, task));
                }
            }

            #[test]
            fn loading_what_is_unexplored_gives_the_answer_of_the_whole_graph(
                (graph, task, new) in change()
            ) {
                // As the caller does: load the lists of what is reachable
                // from the new dependencies until nothing is missing.
                let mut loaded = DependencyGraph::new();
                loop {
                    let missing = unexplored(&new, &loaded);
                    if missing.is_empty() {
                        break;
                    }
                    for id in missing {
                        loaded.insert(id, graph.get(&id).cloned().unwrap_or_default());
                    }
                }
                prop_assert_eq!(
                    find_cycle(task, &new, &loaded).is_some(),
                    find_cycle(task, &new, &graph).is_some()
                );
            }
        }
    }
}
