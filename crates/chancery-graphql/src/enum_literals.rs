//! Enum values written as string literals in a document (`order: "VALID_TIME"` for
//! `order: VALID_TIME`) are refused with `VALIDATION` naming the argument: async-graphql takes a
//! string wherever an enum is due, since it cannot tell a literal from a variable once variables
//! are substituted. Variables are JSON, where an enum value is a string by the GraphQL spec, so
//! only literals written in the document are checked.
//!
//! The check runs on the parsed document; its refusal is reported only once async-graphql's own
//! validation passed, so a document that is wrong in other ways gets the library's errors.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet, Type,
    TypeKind, TypeSystemDefinition,
};
use async_graphql::{
    ErrorExtensionValues, Name, ServerError, ServerResult, ValidationResult, Value, Variables,
};

use crate::error::Code;

/// How deep values and selections are followed; async-graphql refuses deeper documents itself.
const MAX_DEPTH: usize = 64;

/// The schema's types as the check needs them.
#[derive(Default)]
struct Types {
    /// Per object or interface type: per field, its arguments' types and its type's name.
    fields: HashMap<String, HashMap<String, FieldType>>,
    /// Per input object: its fields' types.
    inputs: HashMap<String, HashMap<String, Type>>,
    enums: HashSet<String>,
    roots: [String; 3],
}

struct FieldType {
    arguments: HashMap<String, Type>,
    returns: String,
}

/// The name a type is made of, under its lists and non-nulls.
fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

impl Types {
    /// The types of the schema, read once from its SDL.
    fn get() -> &'static Types {
        static TYPES: OnceLock<Types> = OnceLock::new();
        TYPES.get_or_init(|| Types::of(&crate::sdl()))
    }

    fn of(sdl: &str) -> Types {
        let mut types = Types {
            roots: ["Query".into(), "Mutation".into(), "Subscription".into()],
            ..Types::default()
        };
        // The SDL is the schema's own printout: it always parses.
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return types;
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let roots = [
                        &schema.node.query,
                        &schema.node.mutation,
                        &schema.node.subscription,
                    ];
                    for (root, name) in types.roots.iter_mut().zip(roots) {
                        if let Some(name) = name {
                            *root = name.node.to_string();
                        }
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let name = ty.node.name.node.to_string();
                    let fields = match ty.node.kind {
                        TypeKind::Object(o) => o.fields,
                        TypeKind::Interface(i) => i.fields,
                        TypeKind::Enum(_) => {
                            types.enums.insert(name);
                            continue;
                        }
                        TypeKind::InputObject(input) => {
                            let fields = input
                                .fields
                                .into_iter()
                                .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                                .collect();
                            types.inputs.insert(name, fields);
                            continue;
                        }
                        TypeKind::Scalar | TypeKind::Union(_) => continue,
                    };
                    let fields = fields
                        .into_iter()
                        .map(|f| {
                            let field = FieldType {
                                arguments: f
                                    .node
                                    .arguments
                                    .into_iter()
                                    .map(|a| (a.node.name.node.to_string(), a.node.ty.node))
                                    .collect(),
                                returns: named(&f.node.ty.node).to_owned(),
                            };
                            (f.node.name.node.to_string(), field)
                        })
                        .collect();
                    types.fields.insert(name, fields);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        types
    }

    /// The first enum value written as a string in `document`: its argument path and the
    /// error refusing it.
    fn check(&self, document: &ExecutableDocument) -> Option<ServerError> {
        let mut walk = Walk {
            types: self,
            document,
            fragments_seen: HashSet::new(),
            pending: Vec::new(),
        };
        let operations: Vec<_> = match &document.operations {
            DocumentOperations::Single(op) => vec![op],
            DocumentOperations::Multiple(map) => map.values().collect(),
        };
        for operation in operations {
            let root = match operation.node.ty {
                OperationType::Query => &self.roots[0],
                OperationType::Mutation => &self.roots[1],
                OperationType::Subscription => &self.roots[2],
            };
            if let Some(error) = walk.selections(&operation.node.selection_set.node, root, 0) {
                return Some(error);
            }
        }
        // Fragments one after another rather than nested: a chain of spreads may be long.
        while let Some(name) = walk.pending.pop() {
            if let Some(fragment) = document.fragments.get(&name) {
                let on = fragment.node.type_condition.node.on.node.to_string();
                if let Some(error) = walk.selections(&fragment.node.selection_set.node, &on, 0) {
                    return Some(error);
                }
            }
        }
        None
    }
}

/// A walk through a document's selections, checking the arguments of every field.
struct Walk<'a> {
    types: &'a Types,
    document: &'a ExecutableDocument,
    fragments_seen: HashSet<Name>,
    /// Fragments spread and not yet walked.
    pending: Vec<Name>,
}

impl Walk<'_> {
    /// `None` when the selections hold no enum written as a string; `Some(error)` at the first.
    fn selections(&mut self, set: &SelectionSet, on: &str, depth: usize) -> Option<ServerError> {
        if depth > MAX_DEPTH {
            return None;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let Some(known) = self
                        .types
                        .fields
                        .get(on)
                        .and_then(|fields| fields.get(field.node.name.node.as_str()))
                    else {
                        continue;
                    };
                    for (name, value) in &field.node.arguments {
                        let Some(ty) = known.arguments.get(name.node.as_str()) else {
                            continue;
                        };
                        let of = named(ty);
                        if self.types.enums.contains(of) || self.types.inputs.contains_key(of) {
                            let path = name.node.to_string();
                            // Variables hold JSON, where enum values are strings: they stand
                            // aside as nulls.
                            let literal = value.node.clone().into_const_with(|_| {
                                Ok::<_, std::convert::Infallible>(Value::Null)
                            });
                            let Ok(literal) = literal;
                            let found = self.value(&literal, ty, &path, 0);
                            if let Some((path, text)) = found {
                                return Some(refusal(path, &text, value.pos));
                            }
                        }
                    }
                    let returns = known.returns.clone();
                    if let Some(error) =
                        self.selections(&field.node.selection_set.node, &returns, depth + 1)
                    {
                        return Some(error);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if self.document.fragments.contains_key(name)
                        && self.fragments_seen.insert(name.clone())
                    {
                        self.pending.push(name.clone());
                    }
                }
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map_or_else(|| on.to_owned(), |c| c.node.on.node.to_string());
                    if let Some(error) =
                        self.selections(&inline.node.selection_set.node, &on, depth + 1)
                    {
                        return Some(error);
                    }
                }
            }
        }
        None
    }

    /// The path of the first enum value in `value` written as a string, and that string.
    fn value(
        &self,
        value: &Value,
        ty: &Type,
        path: &str,
        depth: usize,
    ) -> Option<(String, String)> {
        if depth > MAX_DEPTH {
            return None;
        }
        if let BaseType::List(item) = &ty.base {
            return match value {
                Value::List(items) => items
                    .iter()
                    .enumerate()
                    .find_map(|(i, v)| self.value(v, item, &format!("{path}[{i}]"), depth + 1)),
                // A single value stands for a list of one.
                other => self.value(other, item, path, depth + 1),
            };
        }
        let name = named(ty);
        match value {
            Value::String(text) if self.types.enums.contains(name) => {
                Some((path.to_owned(), text.clone()))
            }
            Value::Object(fields) => {
                let input = self.types.inputs.get(name)?;
                fields.iter().find_map(|(field, v)| {
                    let ty = input.get(field.as_str())?;
                    self.value(v, ty, &format!("{path}.{field}"), depth + 1)
                })
            }
            _ => None,
        }
    }
}

/// The error refusing the string `text` written where an enum value is due, at `path`.
fn refusal(path: String, text: &str, pos: async_graphql::Pos) -> ServerError {
    let bare = text.len() <= 64 && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let message = if bare {
        format!(
            "`{path}` takes an enum value, written without quotes ({text}), not a string (\"{text}\")"
        )
    } else {
        format!("`{path}` takes an enum value, written without quotes, not a string")
    };
    let mut error = ServerError::new(message, Some(pos));
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", Code::Validation.as_str());
    extensions.set("field", path);
    error.extensions = Some(extensions);
    error
}

/// Whether `document` writes an enum value as a string literal: the requests that run it go to
/// the schema with [`EnumLiterals`], which refuses it once async-graphql's own validation passed.
pub(crate) fn refused(document: &ExecutableDocument) -> bool {
    Types::get().check(document).is_some()
}

/// The extension that makes the check on every request it sees, over HTTP and WebSocket alike
/// (see `schema::Schemas` for which requests those are).
pub(crate) struct EnumLiterals;

impl ExtensionFactory for EnumLiterals {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(EnumLiteralCheck::default())
    }
}

/// One request's check: found while parsing, reported after validation.
#[derive(Default)]
struct EnumLiteralCheck {
    refused: Mutex<Option<ServerError>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for EnumLiteralCheck {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Some(error) = Types::get().check(&document) {
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let validated = next.run(ctx).await?;
        match self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(error) => Err(vec![error]),
            None => Ok(validated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str) -> Option<(String, String)> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        Types::get().check(&document).map(|e| {
            let field = e
                .extensions
                .as_ref()
                .and_then(|x| x.get("field"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            (field, e.message)
        })
    }

    #[test]
    fn enum_values_written_as_strings_are_found_where_they_are() {
        let (field, message) =
            refused(r#"{ events(order: "VALID_TIME", first: 1) { edges { cursor } } }"#).unwrap();
        assert_eq!(field, "\"order\"");
        assert!(message.contains("VALID_TIME"), "{message}");
        let nested =
            r#"query { a: events(filter: { kinds: [OFFER, "DEMAND"] }) { edges { cursor } } }"#;
        assert_eq!(refused(nested).unwrap().0, "\"filter.kinds[1]\"");
        let in_fragment =
            r#"{ ...F } fragment F on Query { events(order: "VALID_TIME") { edges { cursor } } }"#;
        assert_eq!(refused(in_fragment).unwrap().0, "\"order\"");
        // Bare enum values, variables, and strings where strings are due are all fine.
        assert_eq!(
            refused(
                r#"{ events(order: VALID_TIME, filter: { kinds: [OFFER] }) { edges { cursor } } }"#
            ),
            None
        );
        assert_eq!(
            refused(r#"query($o: EventOrder) { events(order: $o) { edges { cursor } } }"#),
            None
        );
        assert_eq!(
            refused(r#"{ timeline(slug: "us-china-trade") { slug } }"#),
            None
        );
    }
}
