//! The action graph: actions linked through the artifacts they produce and
//! consume.
//!
//! Built from an `Analysis`; an edge goes from an action to each action
//! producing one of its inputs. Cycles are reported as
//! `//a:x#0 -> //b:y#0 -> //a:x#0`. Executing the graph is the scheduler's
//! job (`exec/`).

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use super::find_cycle;
use crate::action::ActionId;
use crate::analysis::{Analysis, AnalysisError};

/// Actions and their dependencies.
pub struct ActionGraph {
    /// Node weights are indices into `Analysis::actions`; edges go from an
    /// action to the producers of its inputs.
    pub graph: DiGraph<ActionId, ()>,
}

impl ActionGraph {
    /// Link the actions of `a`; fails on a cycle or on an input that is an
    /// output nobody produces.
    pub fn build(a: &Analysis) -> Result<ActionGraph, AnalysisError> {
        let mut graph = DiGraph::with_capacity(a.actions.len(), a.actions.len() * 2);
        let nodes: Vec<NodeIndex> = (0..a.actions.len())
            .map(|i| graph.add_node(ActionId(i)))
            .collect();
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, act) in a.actions.iter().enumerate() {
            for o in &act.outputs {
                producer.insert(o.path(), i);
            }
        }
        for (i, act) in a.actions.iter().enumerate() {
            for input in &act.inputs {
                if input.is_source() {
                    continue;
                }
                match producer.get(input.path()) {
                    Some(&p) => {
                        graph.update_edge(nodes[i], nodes[p], ());
                    }
                    None => {
                        return Err(AnalysisError::Located {
                            location: act.location.clone(),
                            message: format!(
                                "Action `{}#{}` reads `{}`, which no action produces",
                                act.owner,
                                act.index,
                                input.path()
                            ),
                        });
                    }
                }
            }
        }
        if let Some(cycle) = find_cycle(&graph, |n| graph[n]) {
            let names: Vec<String> = cycle
                .iter()
                .map(|n| {
                    let act = &a.actions[graph[*n].0];
                    format!("{}#{}", act.owner, act.index)
                })
                .collect();
            let first = &a.actions[graph[cycle[0]].0];
            return Err(AnalysisError::Located {
                location: first.location.clone(),
                message: format!("Action cycle: {}", names.join(" -> ")),
            });
        }
        Ok(ActionGraph { graph })
    }
}
