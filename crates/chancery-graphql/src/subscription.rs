//! The subscription root: a live feed of events that resumes from a cursor with no gap and no
//! duplicate, a feed of one position's changes, and a finite replay of a timeline.

use std::sync::Arc;

use async_graphql::{Context, SimpleObject, Subscription};
use chancery_projections::{AsOf, ChronologyRequest, KnownAt, PositionLists, PositionQuery};
use chancery_store::EventFilter;
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::api::{Api, caller, reader};
use crate::cursor::Cursor;
use crate::error::{ApiError, ApiResult};
use crate::groups::{FeedTap, ResumeAfter};
use crate::in_order::InOrder;
use crate::inputs::{AsOfInput, EventFilterInput, issue_slugs, timeline_slug};
use crate::objects::Event;
use crate::scalars::{Party, Slug};
use crate::views::{PartyPosition, Standoff};

pub struct Subscription;

/// One step of a replay: an event, and where things stood once it happened.
#[derive(SimpleObject)]
#[graphql(serial)]
pub struct ReplayStep {
    /// 1, 2, 3, ... in valid-time order.
    pub step: i32,
    pub event: Event,
    /// The timeline's positions as of the event's valid time.
    pub positions: InOrder<PartyPosition>,
    pub standoffs: InOrder<Standoff>,
}

/// The API state for a subscription whose caller may read.
fn started(ctx: &Context<'_>) -> ApiResult<Arc<Api>> {
    reader(ctx).map(Arc::clone)
}

/// What a subscription to timelines the caller is not granted gives: what one to a timeline that
/// does not exist gives, nothing until it is stopped.
fn silent<T: Send + 'static>() -> BoxStream<'static, async_graphql::Result<T>> {
    stream::pending().boxed()
}

#[Subscription]
impl Subscription {
    /// Events matching the filter after `after` (a cursor from an event; from the start if left
    /// out): first the history, then live. Every event's `cursor` resumes a new subscription
    /// exactly after it.
    async fn events(
        &self,
        ctx: &Context<'_>,
        filter: Option<EventFilterInput>,
        after: Option<String>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Event>>> {
        let api = started(ctx)?;
        let mut filter = filter.unwrap_or_default();
        if !filter.within(&caller(ctx).timelines) {
            return Ok(silent());
        }
        let store_filter: EventFilter = filter.to_store_filter()?;
        // A subscriber that left its group goes on after the last event it was given.
        let resume = ctx.data_opt::<ResumeAfter>().copied();
        let after = match (resume, after) {
            (Some(ResumeAfter(position)), _) => position,
            (None, None) => 0,
            (None, Some(text)) => Cursor::decode_as(
                &text,
                "after",
                Cursor::log,
                "subscriptions resume from an event's cursor",
            )?,
        };
        let gauge = api.metrics.subscription_opened();
        let tap = ctx.data_opt::<FeedTap>().cloned();
        let stream = api
            .log
            .subscribe(after, store_filter)
            .filter_map(move |item| {
                let _open = &gauge;
                let out = match item {
                    Ok(record) => match filter.matches_rest_record(&record) {
                        Ok(true) => {
                            if let Some(tap) = &tap {
                                tap.record(record.position());
                            }
                            Some(Ok(Event::as_recorded(record)))
                        }
                        Ok(false) => None,
                        Err(e) => Some(Err(e.into())),
                    },
                    Err(e) => Some(Err(ApiError::from(e).into())),
                };
                async move { out }
            });
        Ok(stream.boxed())
    }

    /// A party's position on an issue of a timeline: now, then each time it changes or is
    /// reaffirmed.
    async fn position_changed(
        &self,
        ctx: &Context<'_>,
        timeline: Slug,
        party: Party,
        issue: Slug,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<PartyPosition>>> {
        let api = started(ctx)?;
        let timeline = timeline_slug(&timeline, "timeline")?;
        let issue = issue_slugs(&[issue], "issue")?.remove(0);
        if !caller(ctx).timelines.allows(timeline.as_str()) {
            return Ok(silent());
        }
        let head = api.log.head().await.map_err(ApiError::from)?.position;
        let filter = EventFilter {
            timelines: vec![timeline.clone()],
            issues: vec![issue.clone()],
            ..EventFilter::default()
        };
        let query = PositionQuery {
            timeline: Some(timeline),
            parties: vec![party.0],
            issues: vec![issue],
            as_of: AsOf::NOW,
            lists: PositionLists::default(),
        };
        let gauge = api.metrics.subscription_opened();
        struct State {
            api: Arc<Api>,
            query: PositionQuery,
            feed: chancery_store::EventStream,
            wait_for: Option<u64>,
            last: Option<(chancery_projections::Stance, u64, u32)>,
            _gauge: crate::metrics::Gauge,
        }
        let state = State {
            feed: api.log.subscribe(head, filter),
            api,
            query,
            wait_for: Some(head),
            last: None,
            _gauge: gauge,
        };
        let stream = stream::unfold(state, |mut s| async move {
            loop {
                let position = match s.wait_for.take() {
                    Some(p) => p,
                    None => match s.feed.next().await {
                        Some(Ok(record)) => record.position(),
                        Some(Err(e)) => return Some((Err(ApiError::from(e).into()), s)),
                        None => return None,
                    },
                };
                if let Err(e) = s
                    .api
                    .projections
                    .wait_for(position, s.api.limits.max_wait)
                    .await
                {
                    return Some((Err(ApiError::from(e).into()), s));
                }
                let found = match s.api.projections.positions(&s.query).await {
                    Ok(mut found) => found.pop(),
                    Err(e) => return Some((Err(ApiError::from(e).into()), s)),
                };
                if let Some(view) = found {
                    let key = (view.stance, view.event_position, view.reaffirmed);
                    if s.last != Some(key) {
                        s.last = Some(key);
                        return Some((Ok(PartyPosition(view)), s));
                    }
                }
            }
        });
        Ok(stream.boxed())
    }

    /// A timeline replayed step by step in valid-time order, as known now or at `asOf.knownAt`,
    /// with the positions and standoffs after each step. It ends after the last step.
    async fn replay(
        &self,
        ctx: &Context<'_>,
        timeline: Slug,
        as_of: Option<AsOfInput>,
        #[graphql(desc = "At most this many steps.")] first: Option<i32>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<ReplayStep>>> {
        let api = started(ctx)?;
        let timeline = timeline_slug(&timeline, "timeline")?;
        let as_of = AsOfInput::to_domain(as_of)?;
        // A timeline that does not exist replays no step; one not granted replays as it.
        if !caller(ctx).timelines.allows(timeline.as_str()) {
            return Ok(stream::empty().boxed());
        }
        let known_at = api
            .projections
            .when(&as_of)
            .map_err(ApiError::from)?
            .known_at;
        let limit = match first {
            None => usize::MAX,
            Some(n) => usize::try_from(n)
                .map_err(|_| ApiError::validation("first", format!("{n} is negative")))?,
        };
        let request = ChronologyRequest {
            timelines: vec![timeline.clone()],
            as_of: AsOf {
                valid_at: as_of.valid_at,
                known_at: Some(KnownAt::Position(known_at)),
            },
            limit: 256,
            ..ChronologyRequest::default()
        };
        struct State {
            api: Arc<Api>,
            timeline: chancery_domain::TimelineSlug,
            request: ChronologyRequest,
            known_at: u64,
            buffer: std::collections::VecDeque<chancery_projections::ChronologyEntry>,
            more: bool,
            step: i32,
            left: usize,
        }
        let state = State {
            api,
            timeline,
            request,
            known_at,
            buffer: Default::default(),
            more: true,
            step: 0,
            left: limit,
        };
        let stream = stream::unfold(state, |mut s| async move {
            if s.left == 0 {
                return None;
            }
            if s.buffer.is_empty() && s.more {
                match s.api.projections.chronology(&s.request).await {
                    Ok(page) => {
                        s.more = page.has_more;
                        s.request.after = page.entries.last().map(|e| e.slot).or(s.request.after);
                        s.buffer.extend(page.entries);
                    }
                    Err(e) => {
                        s.left = 0;
                        return Some((Err(ApiError::from(e).into()), s));
                    }
                }
            }
            let entry = s.buffer.pop_front()?;
            s.step += 1;
            s.left -= 1;
            let step = replay_step(&s.api, &s.timeline, s.known_at, s.step, entry).await;
            Some((step.map_err(Into::into), s))
        });
        Ok(stream.boxed())
    }
}

async fn replay_step(
    api: &Api,
    timeline: &chancery_domain::TimelineSlug,
    known_at: u64,
    step: i32,
    entry: chancery_projections::ChronologyEntry,
) -> ApiResult<ReplayStep> {
    let valid_at = entry.effective.occurred.as_ref().map(|o| o.start);
    let as_of = AsOf {
        valid_at,
        known_at: Some(KnownAt::Position(known_at)),
    };
    let positions = api
        .projections
        .positions(&PositionQuery {
            timeline: Some(timeline.clone()),
            parties: vec![],
            issues: vec![],
            as_of,
            lists: PositionLists::default(),
        })
        .await?;
    let standoffs = api.projections.standoffs(Some(timeline), &[], &as_of)?;
    Ok(ReplayStep {
        step,
        event: Event::from_chronology(entry),
        positions: positions.into_iter().map(PartyPosition).collect(),
        standoffs: standoffs.into_iter().map(Standoff).collect(),
    })
}
