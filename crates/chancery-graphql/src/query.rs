//! The query root: the log (head, events), the registry, and the projections, each with `asOf`
//! and `atLeast` (read your writes).

use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chancery_projections::{PositionLists, PositionQuery, RelationsBucket, RelationsQuery};

use crate::api::{Api, caller, reader};
use crate::auth::Timelines;
use crate::enums::{Bucket, EventOrder};
use crate::error::{ApiError, ApiResult};
use crate::in_order::InOrder;
use crate::inputs::{AsOfInput, EventFilterInput, event_id, issue_slugs, timeline_slug};
use crate::listing::{self, PageArgs};
use crate::objects::{Actor, Event, Issue, Party, Timeline, timeline_of_record};
use crate::scalars::{DateTime, Long, Party as PartyScalar, Slug, ValidTime};
use crate::views::{EventConnection, Head, PartyPosition, Relations, RelationsTotals, Standoff};

pub struct Query;

/// Checks read access and waits for `atLeast`; returns the API state.
async fn reading<'a>(ctx: &Context<'a>, at_least: Option<Long>) -> ApiResult<&'a Arc<Api>> {
    let api = reader(ctx)?;
    if let Some(position) = at_least {
        api.projections
            .wait_for(position.0, api.limits.max_wait)
            .await?;
    }
    Ok(api)
}

/// The timelines the caller is granted: answers never show, count or hint at any other.
fn granted(ctx: &Context<'_>) -> Timelines {
    caller(ctx).timelines
}

#[Object]
impl Query {
    /// The end of the log, and how far the projections have come.
    async fn head(&self, ctx: &Context<'_>) -> ApiResult<Head> {
        let api = reading(ctx, None).await?;
        let head = api.log.head().await?;
        Ok(Head {
            position: Long(head.position),
            hash: head.hash.to_hex(),
            recorded_at: head.recorded_at.map(DateTime),
            projected: Long(api.projections.applied()),
        })
    }

    /// One event by id.
    async fn event(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<AsOfInput>,
        at_least: Option<Long>,
    ) -> ApiResult<Option<Event>> {
        let api = reading(ctx, at_least).await?;
        let as_of = AsOfInput::to_domain(as_of)?;
        let id = event_id(&id, "id")?;
        let Some(record) = api.log.event(id).await? else {
            return Ok(None);
        };
        if !granted(ctx).allows(timeline_of_record(&record)?.as_str()) {
            return Ok(None);
        }
        let known_at = api.projections.when(&as_of)?.known_at;
        if record.position() > known_at {
            return Ok(None);
        }
        crate::listing::as_known(api, record, known_at)
            .await
            .map(Some)
    }

    /// Events, filtered, by log position or by valid time, a page at a time.
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        ctx: &Context<'_>,
        filter: Option<EventFilterInput>,
        #[graphql(default)] order: EventOrder,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        as_of: Option<AsOfInput>,
        at_least: Option<Long>,
    ) -> ApiResult<EventConnection> {
        let api = reading(ctx, at_least).await?;
        let as_of = AsOfInput::to_domain(as_of)?;
        let mut filter = filter.unwrap_or_default();
        if !filter.within(&granted(ctx)) {
            return Ok(EventConnection::empty());
        }
        listing::events(
            api,
            &filter,
            order,
            &PageArgs {
                first,
                after,
                last,
                before,
            },
            &as_of,
        )
        .await
    }

    /// Every timeline.
    async fn timelines(&self, ctx: &Context<'_>) -> ApiResult<Vec<Timeline>> {
        let api = reading(ctx, None).await?;
        let granted = granted(ctx);
        let mut all = Timeline::all(&api.log.registry().await?);
        all.retain(|t| granted.allows(t.slug.as_str()));
        Ok(all)
    }

    async fn timeline(&self, ctx: &Context<'_>, slug: Slug) -> ApiResult<Option<Timeline>> {
        let api = reading(ctx, None).await?;
        let registry = api.log.registry().await?;
        let slug = timeline_slug(&slug, "slug")?;
        Ok(
            (registry.timelines.contains_key(&slug) && granted(ctx).allows(slug.as_str()))
                .then(|| Timeline::from_registry(&registry, &slug)),
        )
    }

    async fn parties(&self, ctx: &Context<'_>) -> ApiResult<Vec<Party>> {
        let api = reading(ctx, None).await?;
        Ok(Party::all(&api.log.registry().await?))
    }

    /// Actors, all or of one party.
    async fn actors(&self, ctx: &Context<'_>, party: Option<PartyScalar>) -> ApiResult<Vec<Actor>> {
        let api = reading(ctx, None).await?;
        let registry = api.log.registry().await?;
        Ok(registry
            .actors
            .values()
            .filter(|a| party.as_ref().is_none_or(|p| p.0 == a.party))
            .cloned()
            .map(Actor)
            .collect())
    }

    async fn issues(&self, ctx: &Context<'_>) -> ApiResult<Vec<Issue>> {
        let api = reading(ctx, None).await?;
        Ok(Issue::all(&api.log.registry().await?))
    }

    /// Where each party stands on each issue (per timeline), as of a moment.
    async fn positions(
        &self,
        ctx: &Context<'_>,
        timeline: Option<Slug>,
        #[graphql(default)] parties: Vec<PartyScalar>,
        #[graphql(default)] issues: Vec<Slug>,
        as_of: Option<AsOfInput>,
        at_least: Option<Long>,
    ) -> ApiResult<InOrder<PartyPosition>> {
        let api = reading(ctx, at_least).await?;
        let asked = timeline
            .map(|t| timeline_slug(&t, "timeline"))
            .transpose()?;
        let mut query = PositionQuery {
            timeline: None,
            parties: parties.into_iter().map(|p| p.0).collect(),
            issues: issue_slugs(&issues, "issues")?,
            as_of: AsOfInput::to_domain(as_of)?,
            lists: PositionLists {
                supporting: ctx.look_ahead().field("supporting").exists(),
                history: ctx.look_ahead().field("history").exists(),
            },
        };
        let mut found = Vec::new();
        for timeline in granted(ctx).parts(asked) {
            query.timeline = timeline;
            found.extend(api.projections.positions(&query).await?);
        }
        Ok(found.into_iter().map(PartyPosition).collect())
    }

    /// Where each issue stands between the parties (per timeline), as of a moment.
    async fn standoffs(
        &self,
        ctx: &Context<'_>,
        timeline: Option<Slug>,
        #[graphql(default)] issues: Vec<Slug>,
        as_of: Option<AsOfInput>,
        at_least: Option<Long>,
    ) -> ApiResult<InOrder<Standoff>> {
        let api = reading(ctx, at_least).await?;
        let timeline = timeline
            .map(|t| timeline_slug(&t, "timeline"))
            .transpose()?;
        let issues = issue_slugs(&issues, "issues")?;
        let as_of = AsOfInput::to_domain(as_of)?;
        let mut found = Vec::new();
        for timeline in granted(ctx).parts(timeline) {
            found.extend(
                api.projections
                    .standoffs(timeline.as_ref(), &issues, &as_of)?,
            );
        }
        Ok(found.into_iter().map(Standoff).collect())
    }

    /// How relations between two parties move, bucketed by valid time.
    #[allow(clippy::too_many_arguments)]
    async fn relations(
        &self,
        ctx: &Context<'_>,
        a: PartyScalar,
        b: PartyScalar,
        #[graphql(default_with = "Bucket::Month")] bucket: Bucket,
        from: Option<ValidTime>,
        to: Option<ValidTime>,
        timeline: Option<Slug>,
        as_of: Option<AsOfInput>,
        at_least: Option<Long>,
    ) -> ApiResult<Relations> {
        let api = reading(ctx, at_least).await?;
        if a.0 == b.0 {
            return Err(ApiError::validation(
                "b",
                "relations are between two different parties",
            ));
        }
        let mut query = RelationsQuery {
            a: a.0.clone(),
            b: b.0.clone(),
            bucket: bucket.into(),
            from: from.map(|v| v.0),
            to: to.map(|v| v.0),
            timeline: None,
            as_of: AsOfInput::to_domain(as_of)?,
        };
        let asked = timeline
            .map(|t| timeline_slug(&t, "timeline"))
            .transpose()?;
        let mut parts = Vec::new();
        for timeline in granted(ctx).parts(asked) {
            query.timeline = timeline;
            parts.push(api.projections.relations(&query)?);
        }
        let buckets = merged_buckets(parts);
        let mut total = chancery_projections::BucketTotals::default();
        for b in &buckets {
            total.events += b.totals.events;
            total.goldstein_sum += b.totals.goldstein_sum;
            for i in 0..4 {
                total.by_quad_class[i] += b.totals.by_quad_class[i];
            }
        }
        let registry = api.log.registry().await?;
        Ok(Relations {
            a: Party::from_registry(&registry, &a.0),
            b: Party::from_registry(&registry, &b.0),
            bucket,
            buckets: buckets
                .iter()
                .map(|b| RelationsTotals::from(Some(ValidTime(b.start)), &b.totals))
                .collect(),
            total: RelationsTotals::from(None, &total),
        })
    }
}

/// Relations counted over several timelines: the buckets of each, added up by start.
fn merged_buckets(parts: Vec<Vec<RelationsBucket>>) -> Vec<RelationsBucket> {
    let mut parts = parts.into_iter();
    let Some(mut merged) = parts.next() else {
        return Vec::new();
    };
    for part in parts {
        for bucket in part {
            match merged.binary_search_by(|b| b.totals.start.cmp(&bucket.totals.start)) {
                Ok(i) => {
                    let into = &mut merged[i].totals;
                    into.events += bucket.totals.events;
                    into.goldstein_sum += bucket.totals.goldstein_sum;
                    for q in 0..4 {
                        into.by_quad_class[q] += bucket.totals.by_quad_class[q];
                    }
                }
                Err(i) => merged.insert(i, bucket),
            }
        }
    }
    merged
}
