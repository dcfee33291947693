//! Limits async-graphql does not enforce itself: aliases per operation (an alias flood makes one
//! request do the work of thousands).

use std::collections::{HashMap, HashSet};

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The aliases of a selection set, and the fragments it spreads (each once per spread).
#[derive(Default)]
struct Shape {
    aliases: usize,
    spreads: Vec<Name>,
}

fn shape_of(set: &SelectionSet, shape: &mut Shape) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                shape.aliases += usize::from(f.node.alias.is_some());
                shape_of(&f.node.selection_set.node, shape);
            }
            Selection::InlineFragment(f) => shape_of(&f.node.selection_set.node, shape),
            Selection::FragmentSpread(s) => shape.spreads.push(s.node.fragment_name.node.clone()),
        }
    }
}

/// Counts the aliased fields of every operation of a document as it would run: a fragment's
/// aliases count once per spread, so nesting fragments (fifteen aliases spreading a fragment of
/// fifteen) does not hide two hundred aliases behind thirty. This runs before validation, so it
/// must bear cycles (a spread of a fragment being counted counts nothing; validation refuses the
/// document) and long chains of fragments (no recursion over spreads).
pub fn count_aliases(document: &ExecutableDocument) -> usize {
    let shapes: HashMap<&Name, Shape> = document
        .fragments
        .iter()
        .map(|(name, fragment)| {
            let mut shape = Shape::default();
            shape_of(&fragment.node.selection_set.node, &mut shape);
            (name, shape)
        })
        .collect();
    // Each fragment's total, computed once, depth first with an explicit stack.
    let mut totals: HashMap<&Name, usize> = HashMap::new();
    let mut open: HashSet<&Name> = HashSet::new();
    let mut total_of = |root: &Name| -> usize {
        let Some((root, _)) = shapes.get_key_value(root) else {
            return 0;
        };
        let mut stack: Vec<(&Name, bool)> = vec![(*root, false)];
        while let Some((name, children_done)) = stack.pop() {
            if totals.contains_key(name) {
                continue;
            }
            let shape = &shapes[name];
            if children_done {
                let total = shape.spreads.iter().fold(shape.aliases, |sum, s| {
                    sum.saturating_add(totals.get(s).copied().unwrap_or(0))
                });
                open.remove(name);
                totals.insert(name, total);
                continue;
            }
            open.insert(name);
            stack.push((name, true));
            for spread in &shape.spreads {
                if let Some((spread, _)) = shapes.get_key_value(spread) {
                    if !totals.contains_key(spread) && !open.contains(spread) {
                        stack.push((*spread, false));
                    }
                }
            }
        }
        totals.get(root).copied().unwrap_or(0)
    };
    let mut sum = 0usize;
    for (_, operation) in document.operations.iter() {
        let mut shape = Shape::default();
        shape_of(&operation.node.selection_set.node, &mut shape);
        sum = sum.saturating_add(shape.aliases);
        for spread in &shape.spreads {
            sum = sum.saturating_add(total_of(spread));
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(query: &str) -> usize {
        count_aliases(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn aliases_count_once_per_spread_and_cycles_end() {
        assert_eq!(
            aliases("{ a: head { b: position } c: head { position } }"),
            3
        );
        let nested =
            "{ ...A } fragment A on Query { a1: head { ...B } a2: head { ...B } a3: head { ...B } }
            fragment B on Head { b1: position b2: position }";
        assert_eq!(aliases(nested), 3 + 3 * 2);
        assert_eq!(
            aliases(
                "{ ...A } fragment A on Query { x: head { position } ...B } fragment B on Query { ...A y: head { position } }"
            ),
            2
        );
        let chain: String = (0..10_000)
            .map(|i| {
                format!(
                    "fragment F{i} on Query {{ a{i}: head {{ position }} ...F{} }} ",
                    i + 1
                )
            })
            .collect();
        assert_eq!(aliases(&format!("{{ ...F0 }} {chain}")), 10_000);
    }
}
