//! A list whose items are resolved one after another, for the long lists of answers (positions,
//! standoffs, pages of events).
//!
//! async-graphql resolves a `Vec` by joining one future per item (a `FuturesOrdered` past 30
//! items, each with its own task and waker), and an object's fields by polling them together.
//! Chancery's items resolve from memory or from one read the list's resolver already made, so
//! nothing is gained by interleaving them, and that machinery costs more than the fields do:
//! asked afresh at 1M events, `positions` of a timeline (800 items) took about a third less
//! server CPU with its items and their objects resolved in order (docs/benchmarks.md). The
//! schema is the same as a `Vec`'s: `[T!]!`. Unlike a `Vec`, the items do not pass through the
//! schema's extensions' `resolve` hook: Chancery's one extension (`enum_literals.rs`) checks
//! documents only.

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value, registry};

/// A list resolved item after item, in its order.
pub struct InOrder<T>(pub Vec<T>);

impl<T> FromIterator<T> for InOrder<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        InOrder(items.into_iter().collect())
    }
}

impl<T: OutputType> OutputType for InOrder<T> {
    fn type_name() -> Cow<'static, str> {
        <Vec<T> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<T> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut registry::Registry) -> String {
        <Vec<T> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let mut values = Vec::with_capacity(self.0.len());
        for (index, item) in self.0.iter().enumerate() {
            let item_ctx = ctx.with_index(index);
            let value = item
                .resolve(&item_ctx, field)
                .await
                .map_err(|error| item_ctx.set_error_path(error))?;
            values.push(value);
        }
        Ok(Value::List(values))
    }
}
