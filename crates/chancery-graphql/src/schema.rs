//! The schema: the roots, the limits that async-graphql enforces itself (depth, complexity), and
//! the SDL committed in `schema/chancery.graphql`.

use std::sync::Arc;

use async_graphql::{Schema, SchemaBuilder};

use crate::api::Api;
use crate::mutation::Mutation;
use crate::query::Query;
use crate::subscription::Subscription;

pub type ChanSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
}

/// The schema serving `api`, twice: as it runs a document with no enum value written as a string
/// literal, and with the extension that refuses one (`enum_literals.rs`) after async-graphql's
/// own validation. A schema with any extension resolves every field of every answer through it
/// (a type lookup and a boxed future per field), while the check needs only the document: it
/// runs once per parsed document (`enum_literals::refused`), and only a document it refuses
/// goes to the schema with the extension. Reads asked afresh at 1M events answered 1.1 to 1.4 x
/// as many requests a second without it (docs/benchmarks.md).
#[derive(Clone)]
pub struct Schemas {
    plain: ChanSchema,
    checked: ChanSchema,
}

impl Schemas {
    /// The schema to run a document on: `refused` if it writes an enum value as a string.
    pub fn for_document(&self, refused: bool) -> &ChanSchema {
        if refused { &self.checked } else { &self.plain }
    }
}

pub fn build(api: Arc<Api>) -> Schemas {
    let limited = |b: SchemaBuilder<Query, Mutation, Subscription>| {
        let mut b = b
            .limit_depth(api.limits.max_depth)
            .limit_complexity(api.limits.max_complexity);
        if !api.introspection {
            b = b.disable_introspection().disable_suggestions();
        }
        b.data(Arc::clone(&api)).finish()
    };
    Schemas {
        plain: limited(builder()),
        checked: limited(builder().extension(crate::enum_literals::EnumLiterals)),
    }
}

/// The schema's SDL, as committed in `schema/chancery.graphql` and printed by `chancery schema`.
pub fn sdl() -> String {
    builder().finish().sdl()
}
