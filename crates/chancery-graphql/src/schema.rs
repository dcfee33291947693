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
    Schema::build(Query, Mutation, Subscription).extension(crate::enum_literals::EnumLiterals)
}

/// The schema serving `api`.
pub fn build(api: Arc<Api>) -> ChanSchema {
    let mut b = builder()
        .limit_depth(api.limits.max_depth)
        .limit_complexity(api.limits.max_complexity);
    if !api.introspection {
        b = b.disable_introspection().disable_suggestions();
    }
    b.data(api).finish()
}

/// The schema's SDL, as committed in `schema/chancery.graphql` and printed by `chancery schema`.
pub fn sdl() -> String {
    builder().finish().sdl()
}
