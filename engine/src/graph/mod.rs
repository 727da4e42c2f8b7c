//! The target graph on petgraph, and cycle finding.
//!
//! `target.rs` resolves every label the loaded packages mention into nodes
//! (rules, source files, generated files), loading dependency packages in
//! parallel waves, and checks visibility; `config.rs` resolves `select()`
//! in a configuration. [`find_cycle`] reports cycles as
//! `a -> b -> a`, for targets here and for actions in the plan (`plan/`,
//! the one action graph). Evaluating BUILD files is `load/`; running
//! analysis is `analysis/`.

pub mod config;
pub mod target;

use petgraph::graph::{DiGraph, NodeIndex};

/// A cycle in `g`, as node indices from a node back to itself, or `None`.
/// Deterministic: it starts from the smallest node (by `key`) on a cycle.
pub fn find_cycle<N, E, K: Ord>(
    g: &DiGraph<N, E>,
    key: impl Fn(NodeIndex) -> K,
) -> Option<Vec<NodeIndex>> {
    let sccs = petgraph::algo::tarjan_scc(g);
    let mut best: Option<Vec<NodeIndex>> = None;
    for scc in sccs {
        let cyclic = scc.len() > 1 || g.contains_edge(scc[0], scc[0]);
        if !cyclic {
            continue;
        }
        let start = *scc.iter().min_by_key(|n| key(**n)).unwrap_or(&scc[0]);
        if best.as_ref().is_some_and(|b| key(b[0]) <= key(start)) {
            continue;
        }
        // Walk inside the component from `start` until we return to it,
        // taking the smallest successor each time and avoiding repeats.
        let inside: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
        let mut path = vec![start];
        let mut seen = std::collections::HashSet::new();
        seen.insert(start);
        let mut cur = start;
        loop {
            let mut succ: Vec<NodeIndex> =
                g.neighbors(cur).filter(|n| inside.contains(n)).collect();
            succ.sort_by_key(|n| key(*n));
            if succ.contains(&start) {
                path.push(start);
                break;
            }
            match succ.into_iter().find(|n| !seen.contains(n)) {
                Some(n) => {
                    seen.insert(n);
                    path.push(n);
                    cur = n;
                }
                None => {
                    // Dead end inside the SCC: fall back to a BFS path back.
                    path = bfs_cycle(g, start, &inside);
                    break;
                }
            }
        }
        best = Some(path);
    }
    best
}

fn bfs_cycle<N, E>(
    g: &DiGraph<N, E>,
    start: NodeIndex,
    inside: &std::collections::HashSet<NodeIndex>,
) -> Vec<NodeIndex> {
    let mut prev = std::collections::HashMap::new();
    let mut q = std::collections::VecDeque::new();
    q.push_back(start);
    while let Some(n) = q.pop_front() {
        for m in g.neighbors(n) {
            if !inside.contains(&m) {
                continue;
            }
            if m == start {
                let mut path = vec![n];
                let mut c = n;
                while c != start {
                    c = prev[&c];
                    path.push(c);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(m) {
                e.insert(n);
                q.push_back(m);
            }
        }
    }
    vec![start, start]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles() {
        let mut g = DiGraph::<&str, ()>::new();
        let a = g.add_node("a");
        let b = g.add_node("b");
        let c = g.add_node("c");
        g.add_edge(a, b, ());
        g.add_edge(b, c, ());
        assert!(find_cycle(&g, |n| g[n]).is_none());
        g.add_edge(c, b, ());
        let cyc: Vec<&str> = find_cycle(&g, |n| g[n])
            .unwrap()
            .into_iter()
            .map(|n| g[n])
            .collect();
        assert_eq!(cyc, ["b", "c", "b"]);
        let d = g.add_node("d");
        g.add_edge(d, d, ());
        let cyc: Vec<&str> = find_cycle(&g, |n| g[n])
            .unwrap()
            .into_iter()
            .map(|n| g[n])
            .collect();
        assert_eq!(cyc, ["b", "c", "b"]);
    }
}
