//! Output types for projections: positions, standoffs, relations, and the connection types of
//! event lists.

use async_graphql::{Context, ID, Object, SimpleObject};
use chancery_projections::Content;
use chancery_projections::{PositionView, StandoffView};

use crate::api::api;
use crate::cursor::Cursor;
use crate::enums::{Attribution, Bucket, Stance, StandoffStatus};
use crate::error::{ApiError, ApiResult};
use crate::in_order::InOrder;
use crate::objects::{Amount, Event, Issue, Party, Timeline};
use crate::scalars::{Long, ValidTime};

/// Where a party stands on an issue of a timeline.
pub struct PartyPosition(pub PositionView);

#[derive(SimpleObject)]
#[graphql(serial)]
pub struct PositionChange {
    pub stance: Stance,
    /// When, in valid time, the stance took effect.
    pub at: ValidTime,
    pub event: ID,
}

#[Object(serial)]
impl PartyPosition {
    async fn timeline(&self) -> Timeline {
        Timeline::named(&self.0.timeline)
    }
    async fn party(&self) -> Party {
        Party::named(&self.0.party)
    }
    async fn issue(&self) -> Issue {
        Issue::named(&self.0.issue)
    }
    async fn stance(&self) -> Stance {
        self.0.stance.into()
    }
    /// The newest event holding the stance, as it reads at the question's time.
    async fn event(&self, ctx: &Context<'_>) -> ApiResult<Event> {
        let record = match &self.0.event {
            Content::Recorded(record) => record.clone(),
            Content::Corrected(_) => api(ctx)?
                .projections
                .record(self.0.event_position)
                .await?
                .ok_or_else(|| {
                    ApiError::internal(format!("the event at {} is missing", self.0.event_position))
                })?,
        };
        Ok(Event::with_content(record, self.0.event.clone()))
    }
    /// The amounts of the newest event.
    async fn amounts(&self) -> Vec<Amount> {
        self.0.amounts.iter().map(Amount::from).collect()
    }
    /// Conditions of an offer, or the condition of a threat.
    async fn conditions(&self) -> &[String] {
        &self.0.conditions
    }
    async fn first_stated(&self) -> ValidTime {
        ValidTime(self.0.first_stated)
    }
    async fn last_reaffirmed(&self) -> ValidTime {
        ValidTime(self.0.last_reaffirmed)
    }
    /// How many later events restated the stance.
    async fn reaffirmed(&self) -> i32 {
        i32::try_from(self.0.reaffirmed).unwrap_or(i32::MAX)
    }
    /// The events of the current stance, oldest first (at most the newest 50).
    async fn supporting(&self) -> Vec<ID> {
        self.0
            .supporting
            .iter()
            .map(|id| ID(id.to_string()))
            .collect()
    }
    /// How the newest event's sources attribute it.
    async fn attribution(&self) -> Vec<Attribution> {
        self.0.attribution.iter().map(|a| (*a).into()).collect()
    }
    async fn confidence(&self) -> Option<f64> {
        self.0.confidence
    }
    /// Every change of stance, oldest first.
    async fn history(&self) -> Vec<PositionChange> {
        self.0
            .history
            .iter()
            .map(|c| PositionChange {
                stance: c.stance.into(),
                at: ValidTime(c.at),
                event: ID(c.event.to_string()),
            })
            .collect()
    }
}

/// One party's side of a standoff.
pub struct Side(pub chancery_projections::Side);

#[Object(serial)]
impl Side {
    async fn party(&self) -> Party {
        Party::named(&self.0.party)
    }
    async fn stance(&self) -> Stance {
        self.0.stance.into()
    }
    async fn event(&self) -> ID {
        ID(self.0.event.to_string())
    }
}

/// Where an issue of a timeline stands between the parties.
pub struct Standoff(pub StandoffView);

#[Object(serial)]
impl Standoff {
    async fn timeline(&self) -> Timeline {
        Timeline::named(&self.0.timeline)
    }
    async fn issue(&self) -> Issue {
        Issue::named(&self.0.issue)
    }
    async fn status(&self) -> StandoffStatus {
        self.0.status.into()
    }
    async fn sides(&self) -> InOrder<Side> {
        self.0.sides.iter().cloned().map(Side).collect()
    }
}

/// Totals of a span of valid time.
#[derive(SimpleObject, Default)]
#[graphql(serial)]
pub struct RelationsTotals {
    /// The first day of the bucket (absent for the overall total).
    pub start: Option<ValidTime>,
    pub events: i32,
    pub verbal_cooperation: i32,
    pub material_cooperation: i32,
    pub verbal_conflict: i32,
    pub material_conflict: i32,
    pub goldstein_sum: f64,
    pub goldstein_mean: f64,
}

impl RelationsTotals {
    pub fn from(start: Option<ValidTime>, t: &chancery_projections::BucketTotals) -> Self {
        let n = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        RelationsTotals {
            start,
            events: n(t.events),
            verbal_cooperation: n(t.by_quad_class[0]),
            material_cooperation: n(t.by_quad_class[1]),
            verbal_conflict: n(t.by_quad_class[2]),
            material_conflict: n(t.by_quad_class[3]),
            goldstein_sum: t.goldstein_sum,
            goldstein_mean: t.goldstein_mean(),
        }
    }
}

/// How relations between two parties move: acts between them, bucketed by valid time.
#[derive(SimpleObject)]
#[graphql(serial)]
pub struct Relations {
    pub a: Party,
    pub b: Party,
    pub bucket: Bucket,
    pub buckets: InOrder<RelationsTotals>,
    pub total: RelationsTotals,
}

#[derive(SimpleObject)]
#[graphql(serial)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// An event of a page, with where it is in its ordering. The cursor is written only when the
/// selection asks for it: a reader following `pageInfo { endCursor }` asks for none of them.
pub struct EventEdge {
    pub cursor: Cursor,
    pub node: Event,
}

#[Object(serial)]
impl EventEdge {
    async fn cursor(&self) -> String {
        self.cursor.encode()
    }

    async fn node(&self) -> &Event {
        &self.node
    }
}

/// A page of events (a Relay connection).
#[derive(SimpleObject)]
#[graphql(serial)]
pub struct EventConnection {
    pub edges: InOrder<EventEdge>,
    pub page_info: PageInfo,
}

impl EventConnection {
    /// A page with no events and nothing before or after it.
    pub fn empty() -> EventConnection {
        EventConnection {
            edges: InOrder(Vec::new()),
            page_info: PageInfo {
                has_next_page: false,
                has_previous_page: false,
                start_cursor: None,
                end_cursor: None,
            },
        }
    }
}

/// The end of the log.
#[derive(SimpleObject)]
#[graphql(serial)]
pub struct Head {
    /// The last position written (0 for an empty log).
    pub position: Long,
    /// The hash of the last record.
    pub hash: String,
    pub recorded_at: Option<crate::scalars::DateTime>,
    /// The last position the projections have applied.
    pub projected: Long,
}
