//! A project's dependency graph, laid out for drawing.
//!
//! Tasks are nodes; an edge goes from a dependency to the task that waits
//! for it. Layout is the layered (Sugiyama) kind, kept simple enough to
//! run on every change of a 1,000-task project in a few milliseconds:
//!
//! 1. **Layers by dependency depth**: a task without dependencies is in
//!    layer 0, any other one layer after its deepest dependency (the
//!    longest path to it), so every edge points to a later layer.
//! 2. **Order within a layer** by the barycenter heuristic: each task moves
//!    towards the mean row of its neighbours in the layers before it, then
//!    after it, a few sweeps each way. Starting from the previous layout's
//!    order keeps tasks where they were when the plan changes a little.
//! 3. **Coordinates**: a column per layer, a row per position.
//!
//! On top of it: the **critical path** (the longest chain of tasks not yet
//! done, which bounds how soon the plan can finish), **blocked** tasks
//! (not finished, waiting on a dependency that is not done: Task Master's
//! rule for what may start) and the edges that block them.

use std::collections::{BTreeMap, HashMap};

use protocol::TaskStatus;

/// A task as the graph sees it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub id: i64,
    pub status: TaskStatus,
    /// Ids of the tasks it depends on; those not among the items are
    /// ignored.
    pub dependencies: &'a [i64],
}

/// Sizes the layout works in (CSS pixels, in the app).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub node_width: f32,
    pub node_height: f32,
    pub column_gap: f32,
    pub row_gap: f32,
}

impl Default for Geometry {
    fn default() -> Self {
        Geometry {
            node_width: 200.0,
            node_height: 44.0,
            column_gap: 80.0,
            row_gap: 16.0,
        }
    }
}

impl Geometry {
    fn column_pitch(&self) -> f32 {
        self.node_width + self.column_gap
    }

    fn row_pitch(&self) -> f32 {
        self.node_height + self.row_gap
    }
}

/// A placed task.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: i64,
    pub status: TaskStatus,
    pub layer: usize,
    /// Position within its layer, from the top.
    pub row: usize,
    /// Top-left corner.
    pub x: f32,
    pub y: f32,
    /// Not finished, and waiting on a dependency that is not done.
    pub blocked: bool,
    pub on_critical_path: bool,
}

/// A dependency: `from` (the dependency) must be done before `to`. Indexes
/// into [`Graph::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// `to` is not finished and `from` is not done: this edge holds it back.
    pub blocking: bool,
    /// Both ends are consecutive steps of the critical path.
    pub critical: bool,
}

/// A rectangle of the drawing (the viewport, say).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Rect {
    fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.width
            && other.x < self.x + self.width
            && self.y < other.y + other.height
            && other.y < self.y + self.height
    }
}

/// The laid-out graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub geometry: Geometry,
    /// Layer by layer, each top to bottom.
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Where each layer starts in `nodes`, and one past the last.
    layer_starts: Vec<usize>,
    index: HashMap<i64, usize>,
    /// The ids of the critical path, first to last.
    pub critical_path: Vec<i64>,
    /// Size of the whole drawing.
    pub width: f32,
    pub height: f32,
}

/// Sweeps of the barycenter heuristic (each one down and up).
const SWEEPS: usize = 4;

/// Whether a task is out of play: done, or cancelled.
fn finished(status: TaskStatus) -> bool {
    matches!(status, TaskStatus::Done | TaskStatus::Cancelled)
}

impl Graph {
    /// Lays `items` out. `previous`, the layout before the change that
    /// prompted this one, seeds the order within layers, so tasks stay
    /// where they were as far as the new plan allows.
    pub fn layout(items: &[Item<'_>], geometry: Geometry, previous: Option<&Graph>) -> Graph {
        // Items by id, duplicates dropped (the first wins).
        let mut index: HashMap<i64, usize> = HashMap::with_capacity(items.len());
        let mut unique: Vec<&Item<'_>> = Vec::with_capacity(items.len());
        for item in items {
            if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(item.id) {
                slot.insert(unique.len());
                unique.push(item);
            }
        }
        let count = unique.len();
        // Edges as (dependency, dependent) item indexes, each once.
        let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); count];
        let mut successors: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (to, item) in unique.iter().enumerate() {
            for dependency in item.dependencies {
                if let Some(&from) = index.get(dependency) {
                    if from != to && !predecessors[to].contains(&from) {
                        predecessors[to].push(from);
                        successors[from].push(to);
                    }
                }
            }
        }

        let (order, layer_of) = layers(&predecessors, &successors);
        let layer_count = layer_of.iter().copied().max().map_or(0, |last| last + 1);
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
        for &item in &order {
            layers[layer_of[item]].push(item);
        }
        // Start from where the previous layout had them, then by id.
        for layer in &mut layers {
            layer.sort_by_key(|&item| {
                let id = unique[item].id;
                let before = previous
                    .and_then(|graph| graph.node(id))
                    .map_or((usize::MAX, usize::MAX), |node| (node.layer, node.row));
                (before, id)
            });
        }
        order_layers(&mut layers, &predecessors, &successors);

        let critical = critical_path(&unique, &order, &predecessors);
        let on_path: Vec<bool> = {
            let mut on_path = vec![false; count];
            for &item in &critical {
                on_path[item] = true;
            }
            on_path
        };

        // Place, layer by layer.
        let mut nodes = Vec::with_capacity(count);
        let mut layer_starts = Vec::with_capacity(layer_count + 1);
        let mut position = vec![0usize; count];
        for (layer, members) in layers.iter().enumerate() {
            layer_starts.push(nodes.len());
            for (row, &item) in members.iter().enumerate() {
                position[item] = nodes.len();
                let task = unique[item];
                let blocked = !finished(task.status)
                    && predecessors[item]
                        .iter()
                        .any(|&dependency| unique[dependency].status != TaskStatus::Done);
                nodes.push(Node {
                    id: task.id,
                    status: task.status,
                    layer,
                    row,
                    x: layer as f32 * geometry.column_pitch(),
                    y: row as f32 * geometry.row_pitch(),
                    blocked,
                    on_critical_path: on_path[item],
                });
            }
        }
        layer_starts.push(nodes.len());

        let critical_step: HashMap<usize, usize> =
            critical.windows(2).map(|pair| (pair[0], pair[1])).collect();
        let mut edges = Vec::new();
        for (to, froms) in predecessors.iter().enumerate() {
            for &from in froms {
                edges.push(Edge {
                    from: position[from],
                    to: position[to],
                    blocking: !finished(unique[to].status)
                        && unique[from].status != TaskStatus::Done,
                    critical: critical_step.get(&from) == Some(&to),
                });
            }
        }
        edges.sort_by_key(|edge| (edge.from, edge.to));

        let tallest = layers.iter().map(Vec::len).max().unwrap_or(0);
        Graph {
            geometry,
            index: nodes
                .iter()
                .enumerate()
                .map(|(at, node)| (node.id, at))
                .collect(),
            critical_path: critical.iter().map(|&item| unique[item].id).collect(),
            width: if layer_count == 0 {
                0.0
            } else {
                layer_count as f32 * geometry.column_pitch() - geometry.column_gap
            },
            height: if tallest == 0 {
                0.0
            } else {
                tallest as f32 * geometry.row_pitch() - geometry.row_gap
            },
            nodes,
            edges,
            layer_starts,
        }
    }

    /// The placed task `id`.
    pub fn node(&self, id: i64) -> Option<&Node> {
        self.index.get(&id).map(|&at| &self.nodes[at])
    }

    /// How many layers there are.
    pub fn layer_count(&self) -> usize {
        self.layer_starts.len().saturating_sub(1)
    }

    /// The tasks of layer `layer`, top to bottom.
    pub fn layer(&self, layer: usize) -> &[Node] {
        match (
            self.layer_starts.get(layer),
            self.layer_starts.get(layer + 1),
        ) {
            (Some(&start), Some(&end)) => &self.nodes[start..end],
            _ => &[],
        }
    }

    /// Indexes of the nodes that `view` shows any part of: found by
    /// arithmetic on columns and rows, so the cost follows what is visible,
    /// not the size of the plan.
    pub fn visible_nodes(&self, view: Rect) -> Vec<usize> {
        let geometry = &self.geometry;
        let mut shown = Vec::new();
        if self.nodes.is_empty() || view.width <= 0.0 || view.height <= 0.0 {
            return shown;
        }
        let first_layer = ((view.x - geometry.node_width) / geometry.column_pitch())
            .floor()
            .max(0.0) as usize;
        let last_layer = ((view.x + view.width) / geometry.column_pitch()).floor();
        if last_layer < 0.0 {
            return shown;
        }
        let first_row = ((view.y - geometry.node_height) / geometry.row_pitch())
            .floor()
            .max(0.0) as usize;
        let last_row = ((view.y + view.height) / geometry.row_pitch()).floor();
        if last_row < 0.0 {
            return shown;
        }
        for layer in first_layer..=(last_layer as usize).min(self.layer_count().saturating_sub(1)) {
            let start = self.layer_starts[layer];
            let members = self.layer(layer).len();
            for row in first_row..=(last_row as usize).min(members.saturating_sub(1)) {
                let at = start + row;
                if self.bounds(at).overlaps(&view) {
                    shown.push(at);
                }
            }
        }
        shown
    }

    /// Indexes of the edges whose straight line may cross `view` (their
    /// bounding box overlaps it).
    pub fn visible_edges(&self, view: Rect) -> Vec<usize> {
        self.edges
            .iter()
            .enumerate()
            .filter(|(_, edge)| {
                let (x1, y1) = self.out_port(edge.from);
                let (x2, y2) = self.in_port(edge.to);
                let frame = Rect {
                    x: x1.min(x2),
                    y: y1.min(y2),
                    width: (x2 - x1).abs().max(1.0),
                    height: (y2 - y1).abs().max(1.0),
                };
                frame.overlaps(&view)
            })
            .map(|(at, _)| at)
            .collect()
    }

    /// Node `at`'s rectangle.
    pub fn bounds(&self, at: usize) -> Rect {
        let node = &self.nodes[at];
        Rect {
            x: node.x,
            y: node.y,
            width: self.geometry.node_width,
            height: self.geometry.node_height,
        }
    }

    /// Where edges leave node `at` (the middle of its right side).
    pub fn out_port(&self, at: usize) -> (f32, f32) {
        let node = &self.nodes[at];
        (
            node.x + self.geometry.node_width,
            node.y + self.geometry.node_height / 2.0,
        )
    }

    /// Where edges enter node `at` (the middle of its left side).
    pub fn in_port(&self, at: usize) -> (f32, f32) {
        let node = &self.nodes[at];
        (node.x, node.y + self.geometry.node_height / 2.0)
    }
}

/// Items in topological order (Kahn's algorithm, smallest index first among
/// the ready ones) and each one's layer: the longest path to it. Items on a
/// cycle (which the server refuses, but a view must not hang on) follow the
/// others, one layer after the last.
fn layers(predecessors: &[Vec<usize>], successors: &[Vec<usize>]) -> (Vec<usize>, Vec<usize>) {
    let count = predecessors.len();
    let mut waiting: Vec<usize> = predecessors.iter().map(Vec::len).collect();
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..count)
        .filter(|&item| waiting[item] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut layer = vec![0usize; count];
    let mut order = Vec::with_capacity(count);
    while let Some(std::cmp::Reverse(item)) = ready.pop() {
        order.push(item);
        for &next in &successors[item] {
            layer[next] = layer[next].max(layer[item] + 1);
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(std::cmp::Reverse(next));
            }
        }
    }
    if order.len() < count {
        let after = order.iter().map(|&item| layer[item] + 1).max().unwrap_or(0);
        for item in 0..count {
            if waiting[item] > 0 {
                layer[item] = after;
                order.push(item);
            }
        }
    }
    (order, layer)
}

/// Reorders each layer by the barycenter of its neighbours' rows: down
/// (by predecessors) then up (by successors), [`SWEEPS`] times. A task with
/// no neighbours on that side keeps its place.
fn order_layers(layers: &mut [Vec<usize>], predecessors: &[Vec<usize>], successors: &[Vec<usize>]) {
    let count = predecessors.len();
    let mut row = vec![0f32; count];
    let rank = |layers: &[Vec<usize>], row: &mut Vec<f32>| {
        for layer in layers {
            for (at, &item) in layer.iter().enumerate() {
                row[item] = at as f32;
            }
        }
    };
    rank(layers, &mut row);
    let sweep = |layer: &mut Vec<usize>, neighbours: &[Vec<usize>], row: &mut Vec<f32>| {
        let mut keyed: Vec<(f32, usize, usize)> = layer
            .iter()
            .enumerate()
            .map(|(at, &item)| {
                let around = &neighbours[item];
                let center = if around.is_empty() {
                    at as f32
                } else {
                    around.iter().map(|&other| row[other]).sum::<f32>() / around.len() as f32
                };
                (center, at, item)
            })
            .collect();
        // Ties keep the current order: stable and deterministic.
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (at, (_, _, item)) in keyed.into_iter().enumerate() {
            layer[at] = item;
            row[item] = at as f32;
        }
    };
    for _ in 0..SWEEPS {
        for layer in layers.iter_mut().skip(1) {
            sweep(layer, predecessors, &mut row);
        }
        let last = layers.len().saturating_sub(1);
        for layer in layers.iter_mut().take(last).rev() {
            sweep(layer, successors, &mut row);
        }
    }
}

/// The longest chain of unfinished tasks, each depending on the one before,
/// as item indexes; among chains as long, the one with the smallest ids
/// first. Empty when everything is finished.
fn critical_path(items: &[&Item<'_>], order: &[usize], predecessors: &[Vec<usize>]) -> Vec<usize> {
    let count = items.len();
    // Longest chain ending at each item, and the item before it.
    let mut length = vec![0usize; count];
    let mut previous: Vec<Option<usize>> = vec![None; count];
    let mut seen = vec![false; count];
    for &item in order {
        seen[item] = true;
        if finished(items[item].status) {
            continue;
        }
        length[item] = 1;
        let mut best: BTreeMap<(std::cmp::Reverse<usize>, i64), usize> = BTreeMap::new();
        for &dependency in &predecessors[item] {
            // On a cycle a predecessor may come later: not a chain.
            if seen[dependency] && length[dependency] > 0 {
                best.insert(
                    (std::cmp::Reverse(length[dependency]), items[dependency].id),
                    dependency,
                );
            }
        }
        if let Some((&(std::cmp::Reverse(longest), _), &dependency)) = best.iter().next() {
            length[item] = longest + 1;
            previous[item] = Some(dependency);
        }
    }
    let Some(end) = (0..count)
        .filter(|&item| length[item] > 0)
        .max_by(|&a, &b| {
            length[a]
                .cmp(&length[b])
                .then(items[b].id.cmp(&items[a].id))
        })
    else {
        return Vec::new();
    };
    let mut path = vec![end];
    while let Some(before) = previous[*path.last().unwrap_or(&end)] {
        path.push(before);
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(id: i64, status: TaskStatus, dependencies: &[i64]) -> Item<'_> {
        Item {
            id,
            status,
            dependencies,
        }
    }

    fn pending(id: i64, dependencies: &[i64]) -> Item<'_> {
        item(id, TaskStatus::Pending, dependencies)
    }

    /// Crossings between edges joining adjacent layers.
    fn crossings(graph: &Graph) -> usize {
        let short: Vec<&Edge> = graph
            .edges
            .iter()
            .filter(|edge| graph.nodes[edge.to].layer == graph.nodes[edge.from].layer + 1)
            .collect();
        let mut count = 0;
        for (at, a) in short.iter().enumerate() {
            for b in &short[at + 1..] {
                let (a1, a2) = (graph.nodes[a.from].row, graph.nodes[a.to].row);
                let (b1, b2) = (graph.nodes[b.from].row, graph.nodes[b.to].row);
                let same_layer = graph.nodes[a.from].layer == graph.nodes[b.from].layer;
                if same_layer && ((a1 < b1 && a2 > b2) || (a1 > b1 && a2 < b2)) {
                    count += 1;
                }
            }
        }
        count
    }

    #[test]
    fn layers_follow_the_longest_chain_of_dependencies() {
        let items = [
            pending(1, &[]),
            pending(2, &[1]),
            pending(3, &[1, 2]),
            pending(4, &[]),
            pending(5, &[4, 3]),
            pending(6, &[99]),
        ];
        let graph = Graph::layout(&items, Geometry::default(), None);
        let layer = |id| graph.node(id).unwrap().layer;
        assert_eq!(
            [1, 2, 3, 4, 5, 6].map(layer),
            [0, 1, 2, 0, 3, 0],
            "a dependency outside the graph is ignored"
        );
        assert_eq!(graph.layer_count(), 4);
        assert_eq!(graph.edges.len(), 5);
        let geometry = Geometry::default();
        let five = graph.node(5).unwrap();
        assert_eq!(five.x, 3.0 * (geometry.node_width + geometry.column_gap));
        assert_eq!(graph.width, 4.0 * 280.0 - 80.0);
    }

    #[test]
    fn the_order_within_layers_removes_avoidable_crossings() {
        // In id order, 3 → 6 and 4 → 5 cross; so do 1 → 4 and 2 → 3.
        let items = [
            pending(1, &[]),
            pending(2, &[]),
            pending(3, &[2]),
            pending(4, &[1]),
            pending(5, &[4]),
            pending(6, &[3]),
        ];
        let graph = Graph::layout(&items, Geometry::default(), None);
        assert_eq!(crossings(&graph), 0, "{:?}", graph.nodes);
    }

    #[test]
    fn the_critical_path_is_the_longest_chain_of_unfinished_work() {
        let items = [
            item(1, TaskStatus::Done, &[]),
            pending(2, &[1]),
            pending(3, &[2]),
            item(4, TaskStatus::InProgress, &[3]),
            pending(5, &[1]),
            pending(6, &[5]),
            item(7, TaskStatus::Cancelled, &[4]),
        ];
        let graph = Graph::layout(&items, Geometry::default(), None);
        assert_eq!(
            graph.critical_path,
            [2, 3, 4],
            "done and cancelled are out of it"
        );
        assert!(graph.node(3).unwrap().on_critical_path);
        assert!(!graph.node(6).unwrap().on_critical_path);
        let critical: Vec<(i64, i64)> = graph
            .edges
            .iter()
            .filter(|edge| edge.critical)
            .map(|edge| (graph.nodes[edge.from].id, graph.nodes[edge.to].id))
            .collect();
        assert_eq!(critical, [(2, 3), (3, 4)]);
    }

    #[test]
    fn a_task_waiting_on_work_not_done_is_blocked() {
        let items = [
            item(1, TaskStatus::Done, &[]),
            item(2, TaskStatus::InProgress, &[]),
            pending(3, &[1]),
            pending(4, &[1, 2]),
            item(5, TaskStatus::Cancelled, &[2]),
            item(6, TaskStatus::Done, &[2]),
            pending(7, &[5]),
        ];
        let graph = Graph::layout(&items, Geometry::default(), None);
        let blocked: Vec<i64> = graph
            .nodes
            .iter()
            .filter(|node| node.blocked)
            .map(|node| node.id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            blocked,
            [4, 7],
            "finished tasks are never blocked; a cancelled dependency is not done"
        );
        let blocking: Vec<(i64, i64)> = graph
            .edges
            .iter()
            .filter(|edge| edge.blocking)
            .map(|edge| (graph.nodes[edge.from].id, graph.nodes[edge.to].id))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(blocking, [(2, 4), (5, 7)]);
    }

    #[test]
    fn a_cycle_does_not_hang_the_view() {
        let items = [
            pending(1, &[3]),
            pending(2, &[1]),
            pending(3, &[2]),
            pending(4, &[]),
        ];
        let graph = Graph::layout(&items, Geometry::default(), None);
        assert_eq!(graph.nodes.len(), 4);
        assert_eq!(graph.node(4).unwrap().layer, 0);
        assert!(graph.node(1).unwrap().layer >= 1);
    }

    #[test]
    fn a_small_change_keeps_the_others_in_order() {
        let dependencies: Vec<Vec<i64>> = (0..40)
            .map(|n| if n < 10 { vec![] } else { vec![n % 10] })
            .collect();
        let items: Vec<Item<'_>> = (0..40)
            .map(|n| pending(n as i64, &dependencies[n]))
            .collect();
        let before = Graph::layout(&items, Geometry::default(), None);
        // A task done and a task added: the others keep their order (the new
        // one slots in).
        let mut changed = items.clone();
        changed[25].status = TaskStatus::Done;
        changed.push(pending(40, &[3]));
        let after = Graph::layout(&changed, Geometry::default(), Some(&before));
        assert_eq!(after.node(40).unwrap().layer, 1);
        for layer in 0..before.layer_count() {
            let ids = |graph: &Graph| -> Vec<i64> {
                graph
                    .layer(layer)
                    .iter()
                    .map(|node| node.id)
                    .filter(|id| *id != 40)
                    .collect()
            };
            assert_eq!(ids(&after), ids(&before), "layer {layer} keeps its order");
        }
    }

    #[test]
    fn only_what_the_view_shows_is_drawn() {
        // 1,000 tasks: 10 chains of 100.
        let dependencies: Vec<Vec<i64>> = (0..1000)
            .map(|n: i64| if n % 100 == 0 { vec![] } else { vec![n - 1] })
            .collect();
        let items: Vec<Item<'_>> = (0..1000)
            .map(|n| pending(n as i64, &dependencies[n]))
            .collect();
        let graph = Graph::layout(&items, Geometry::default(), None);
        assert_eq!(graph.layer_count(), 100);
        let view = Rect {
            x: 1000.0,
            y: 100.0,
            width: 1280.0,
            height: 300.0,
        };
        let shown = graph.visible_nodes(view);
        // Columns 3–8 (x 840–2480 cover it) and rows 1–6 of 10.
        assert!(!shown.is_empty() && shown.len() <= 6 * 6, "{}", shown.len());
        let brute: Vec<usize> = (0..graph.nodes.len())
            .filter(|&at| graph.bounds(at).overlaps(&view))
            .collect();
        let mut sorted = shown.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, brute, "the same as checking every node");
        let edges = graph.visible_edges(view);
        assert!(edges.len() < 100, "{}", edges.len());
        assert!(graph
            .visible_nodes(Rect {
                x: -500.0,
                y: -500.0,
                width: 100.0,
                height: 100.0
            })
            .is_empty());
    }

    fn arbitrary_plan() -> impl Strategy<Value = Vec<(i64, u8, Vec<i64>)>> {
        (1usize..60).prop_flat_map(|count| {
            proptest::collection::vec(
                (0u8..7, proptest::collection::vec(0..count as i64, 0..4)),
                count,
            )
            .prop_map(|tasks| {
                tasks
                    .into_iter()
                    .enumerate()
                    .map(|(id, (status, dependencies))| {
                        // Dependencies on earlier tasks only: a plan the
                        // server would accept (no cycles).
                        let id = id as i64;
                        let earlier = dependencies.into_iter().filter(|d| *d < id).collect();
                        (id, status, earlier)
                    })
                    .collect()
            })
        })
    }

    fn status(code: u8) -> TaskStatus {
        [
            TaskStatus::Pending,
            TaskStatus::InProgress,
            TaskStatus::Review,
            TaskStatus::Done,
            TaskStatus::Deferred,
            TaskStatus::Cancelled,
            TaskStatus::Blocked,
        ][code as usize % 7]
    }

    proptest! {
        #[test]
        fn every_edge_points_to_a_later_layer_and_layers_are_as_shallow_as_they_can_be(
            plan in arbitrary_plan()
        ) {
            let items: Vec<Item<'_>> = plan.iter().map(|(id, code, deps)| item(*id, status(*code), deps)).collect();
            let graph = Graph::layout(&items, Geometry::default(), None);
            prop_assert_eq!(graph.nodes.len(), items.len());
            for edge in &graph.edges {
                prop_assert!(graph.nodes[edge.from].layer < graph.nodes[edge.to].layer);
            }
            for node in &graph.nodes {
                let deepest = graph.edges.iter().filter(|edge| graph.nodes[edge.to].id == node.id)
                    .map(|edge| graph.nodes[edge.from].layer + 1).max().unwrap_or(0);
                prop_assert_eq!(node.layer, deepest);
            }
            // Rows within a layer are 0..n, each once.
            for layer in 0..graph.layer_count() {
                let rows: Vec<usize> = graph.layer(layer).iter().map(|node| node.row).collect();
                prop_assert_eq!(rows, (0..graph.layer(layer).len()).collect::<Vec<_>>());
            }
        }

        #[test]
        fn the_critical_path_is_a_chain_and_none_is_longer(plan in arbitrary_plan()) {
            let items: Vec<Item<'_>> = plan.iter().map(|(id, code, deps)| item(*id, status(*code), deps)).collect();
            let graph = Graph::layout(&items, Geometry::default(), None);
            let path = &graph.critical_path;
            for pair in path.windows(2) {
                let later = items.iter().find(|item| item.id == pair[1]).unwrap();
                prop_assert!(later.dependencies.contains(&pair[0]));
            }
            for id in path {
                prop_assert!(!finished(graph.node(*id).unwrap().status));
            }
            // Brute force: the longest chain of unfinished tasks ending at each.
            let mut longest: HashMap<i64, usize> = HashMap::new();
            for item in &items {
                let length = if finished(item.status) { 0 } else {
                    1 + item.dependencies.iter().filter_map(|d| longest.get(d)).copied()
                        .filter(|length| *length > 0).max().unwrap_or(0)
                };
                longest.insert(item.id, length);
            }
            prop_assert_eq!(path.len(), longest.values().copied().max().unwrap_or(0));
        }
    }
}
