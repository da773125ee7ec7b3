//! patronictl's `topology_sort`: the leader, then the replicas as a tree
//! following the `replicatefrom` tag.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

/// Member indices with their tree level, leader first (patronictl's
/// `topology_sort`). Members the tree does not reach (a second leader, a
/// `replicatefrom` cycle) follow at the end instead of being dropped.
pub(super) fn order(members: &[&Map<String, Value>]) -> Vec<(usize, usize)> {
    let name = |i: usize| members[i].get("name").and_then(Value::as_str).unwrap_or("");
    let is_leader = |i: usize| {
        let role = members[i].get("role").and_then(Value::as_str).unwrap_or("");
        role.ends_with("leader")
    };
    let leader = (0..members.len()).find(|i| is_leader(*i));
    let replicas: HashSet<&str> = (0..members.len())
        .filter(|i| !is_leader(*i))
        .map(name)
        .collect();
    let mut children: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
    for i in (0..members.len()).filter(|i| !is_leader(*i)) {
        let tags = members[i].get("tags").and_then(Value::as_object);
        let from = tags.and_then(|t| crate::config::Tags::of(t).replicatefrom());
        let parent = match from {
            Some(p) if p != name(i) && replicas.contains(p) => Some(p),
            _ => leader.map(name),
        };
        children.entry(parent).or_default().push(i);
    }
    let mut out = Vec::new();
    let mut seen = vec![false; members.len()];
    let mut stack: Vec<(Option<usize>, usize)> = vec![(leader, 0)];
    while let Some((node, level)) = stack.pop() {
        if let Some(i) = node {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            out.push((i, level));
        }
        let key = node.map(name);
        for &c in children.get(&key).into_iter().flatten().rev() {
            stack.push((Some(c), level + 1));
        }
    }
    for (i, _) in seen.iter().enumerate().filter(|(_, done)| !**done) {
        out.push((i, usize::from(!is_leader(i))));
    }
    out
}
