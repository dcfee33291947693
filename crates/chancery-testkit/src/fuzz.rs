//! Proptest pieces the fuzzing tests share: their configuration, UUID v7s and JSON values made of
//! generated bits, changes to one place of a JSON value, and damage to bytes.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;
use serde_json::Value;

/// `cases` cases (or as many as the environment variable `cases_variable` says) and at most
/// `max_shrink_iters` steps to shrink a failure.
pub fn config(cases_variable: &str, cases: u32, max_shrink_iters: u32) -> ProptestConfig {
    let cases = std::env::var(cases_variable)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_shrink_iters,
        ..ProptestConfig::default()
    }
}

/// A UUID v7 made of generated bits, so that a case replays the same.
pub fn uuid_v7(high: u64, low: u64) -> String {
    format!(
        "{:08x}-{:04x}-7{:03x}-{:x}{:03x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        8 + (low >> 62),
        (low >> 48) & 0xfff,
        low & 0xffff_ffff_ffff
    )
}

/// A JSON number: any `f64`, or as often as each of them, one of `specials` (the values at and
/// past a format's limits). Values JSON cannot hold become `null`.
pub fn number(specials: &[f64]) -> BoxedStrategy<Value> {
    let specials = specials.to_vec();
    let weight = u32::try_from(specials.len()).unwrap_or(u32::MAX);
    let special = if specials.is_empty() {
        any::<f64>().boxed()
    } else {
        prop::sample::select(specials).boxed()
    };
    prop_oneof![1 => any::<f64>(), weight => special]
        .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
        .boxed()
}

/// Any JSON value: null, booleans, integers, short strings and UUIDs, and the `leaves` a format
/// meets (its codes, dates, numbers at its limits, long strings), each as likely as the others,
/// in small arrays and objects.
pub fn json_value(leaves: Vec<BoxedStrategy<Value>>) -> impl Strategy<Value = Value> + Clone {
    let common = vec![
        Just(Value::Null).boxed(),
        any::<bool>().prop_map(Value::from).boxed(),
        any::<i64>().prop_map(Value::from).boxed(),
        ".{0,30}".prop_map(Value::from).boxed(),
        (any::<u64>(), any::<u64>())
            .prop_map(|(h, l)| Value::from(uuid_v7(h, l)))
            .boxed(),
    ];
    Union::new(common.into_iter().chain(leaves)).prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A change to one place of a JSON value.
#[derive(Debug, Clone)]
pub enum JsonChange {
    Replace(Value),
    Remove,
    /// A field the format does not know, added to an object.
    AddUnknown(String, Value),
}

/// Changes, mostly replacements by `values`, some removals, a few unknown fields.
pub fn json_change(
    values: impl Strategy<Value = Value> + Clone + 'static,
) -> impl Strategy<Value = JsonChange> {
    prop_oneof![
        6 => values.clone().prop_map(JsonChange::Replace),
        2 => Just(JsonChange::Remove),
        1 => ("[a-zA-Z]{1,10}", values).prop_map(|(k, v)| JsonChange::AddUnknown(k, v)),
    ]
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every path into `value`, the root included.
fn paths(value: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push(Step::Key(key.clone()));
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Step::Index(i));
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// Makes `change` at the place of `value` that `at` picks among all of them (the root
/// included). A change that does not fit its place (a removal at the root, a field added to a
/// string) changes nothing.
pub fn change_json(value: &mut Value, at: Index, change: &JsonChange) {
    let mut places = Vec::new();
    paths(value, &mut Vec::new(), &mut places);
    let path = &places[at.index(places.len())];
    match change {
        JsonChange::Replace(new) => {
            if let Some(place) = at_path(value, path) {
                *place = new.clone();
            }
        }
        JsonChange::Remove => {
            if let Some((last, parent)) = path.split_last() {
                match (at_path(value, parent), last) {
                    (Some(Value::Object(map)), Step::Key(k)) => {
                        map.shift_remove(k);
                    }
                    (Some(Value::Array(items)), Step::Index(i)) => {
                        items.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        JsonChange::AddUnknown(key, new) => {
            if let Some(Value::Object(map)) = at_path(value, path) {
                map.insert(key.clone(), new.clone());
            }
        }
    }
}

/// One way to damage bytes (a stored record, a line of a file).
#[derive(Debug, Clone)]
pub enum Damage {
    FlipBit { at: Index, bit: u8 },
    Replace { at: Index, byte: u8 },
    Delete { at: Index },
    Insert { at: Index, byte: u8 },
    Truncate { at: Index },
}

/// Damage, mostly flipped bits and replaced bytes.
pub fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Damage::FlipBit { at, bit }),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Damage::Replace { at, byte }),
        1 => any::<Index>().prop_map(|at| Damage::Delete { at }),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Damage::Insert { at, byte }),
        1 => any::<Index>().prop_map(|at| Damage::Truncate { at }),
    ]
}

impl Damage {
    /// Damages `bytes`; empty ones stay as they are.
    pub fn apply(&self, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        match self {
            Damage::FlipBit { at, bit } => {
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            Damage::Replace { at, byte } => {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
            Damage::Delete { at } => {
                bytes.remove(at.index(bytes.len()));
            }
            Damage::Insert { at, byte } => bytes.insert(at.index(bytes.len() + 1), *byte),
            Damage::Truncate { at } => bytes.truncate(at.index(bytes.len())),
        }
    }
}
