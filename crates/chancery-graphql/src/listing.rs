//! Event lists: a page of events by log position (read from the log) or by valid time (read from
//! the chronology projection), filtered, as of a moment, with Relay cursors.

use chancery_domain::{Position, RecordedEvent};
use chancery_projections::{AsOf, ChronologyRequest};
use chancery_store::{Direction, EventFilter, ReadRequest};

use crate::api::Api;
use crate::cursor::Cursor;
use crate::enums::EventOrder;
use crate::error::{ApiError, ApiResult, Code};
use crate::inputs::EventFilterInput;
use crate::objects::Event;
use crate::views::{EventConnection, EventEdge, PageInfo};

/// Events read from the log at a time while filling a page.
const CHUNK: usize = 256;
/// Default page size when neither `first` nor `last` is given.
const DEFAULT_PAGE: usize = 50;

pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    /// The page size and direction, checked against the limit.
    fn size(&self, max: usize) -> ApiResult<(usize, bool)> {
        let (n, backward, name) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "last",
                    "give first (with after) or last (with before), not both",
                ));
            }
            (Some(n), None) => (n, false, "first"),
            (None, Some(n)) => (n, true, "last"),
            (None, None) => {
                return Ok((
                    DEFAULT_PAGE.min(max),
                    self.before.is_some() && self.after.is_none(),
                ));
            }
        };
        let n = usize::try_from(n)
            .map_err(|_| ApiError::validation(name, format!("{n} is negative")))?;
        if n > max {
            return Err(ApiError::field(
                Code::Limit,
                name,
                format!("{n} is more than the page size limit of {max}"),
            ));
        }
        Ok((n, backward))
    }

    /// The `after` and `before` cursors, of the kind `kind` picks out (the one the list's order
    /// pages by); a cursor of the other kind is refused with `mismatch`.
    fn cursors<T>(
        &self,
        kind: fn(Cursor) -> Option<T>,
        mismatch: &str,
    ) -> ApiResult<(Option<T>, Option<T>)> {
        let decode = |text: &Option<String>, field: &str| {
            text.as_deref()
                .map(|t| Cursor::decode_as(t, field, kind, mismatch))
                .transpose()
        };
        Ok((
            decode(&self.after, "after")?,
            decode(&self.before, "before")?,
        ))
    }
}

/// The events of a page as they are read (backward: newest first), and whether the reading found
/// one beyond the page.
struct Gathered {
    items: Vec<(Cursor, Event)>,
    size: usize,
    more: bool,
}

impl Gathered {
    fn new(size: usize) -> Gathered {
        Gathered {
            items: Vec::new(),
            size,
            more: false,
        }
    }

    /// Adds an event to the page; false when the page is full, so that the event is the first
    /// beyond it and reading stops.
    fn push(&mut self, cursor: Cursor, event: Event) -> bool {
        if self.items.len() == self.size {
            self.more = true;
            return false;
        }
        self.items.push((cursor, event));
        true
    }

    /// The page with Relay's page info: events beyond it in the reading direction, and a cursor
    /// given on the other side, say that there are pages on those sides.
    fn connection(
        mut self,
        backward: bool,
        after_given: bool,
        before_given: bool,
    ) -> EventConnection {
        let (has_next, has_previous) = if backward {
            self.items.reverse();
            (before_given, self.more)
        } else {
            (self.more, after_given)
        };
        let start_cursor = self.items.first().map(|(c, _)| c.encode());
        let end_cursor = self.items.last().map(|(c, _)| c.encode());
        EventConnection {
            edges: self
                .items
                .into_iter()
                .map(|(cursor, node)| EventEdge { cursor, node })
                .collect(),
            page_info: PageInfo {
                has_next_page: has_next,
                has_previous_page: has_previous,
                start_cursor,
                end_cursor,
            },
        }
    }
}

pub async fn events(
    api: &Api,
    filter: &EventFilterInput,
    order: EventOrder,
    page: &PageArgs,
    as_of: &AsOf,
) -> ApiResult<EventConnection> {
    let (size, backward) = page.size(api.limits.max_page_size)?;
    let listing = Listing {
        api,
        filter,
        page,
        size,
        backward,
        as_of,
    };
    match order {
        EventOrder::Log => listing.by_log().await,
        EventOrder::ValidTime => listing.by_valid_time().await,
    }
}

/// The question a page of events answers: which events, which page (its size and direction
/// checked), as of when.
struct Listing<'a> {
    api: &'a Api,
    filter: &'a EventFilterInput,
    page: &'a PageArgs,
    size: usize,
    backward: bool,
    as_of: &'a AsOf,
}

/// An event as the log knew it at `known_at`: whether a retraction withdrew it, and its content
/// as corrected by then (decoded only if a correction changed it).
pub async fn as_known(api: &Api, record: RecordedEvent, known_at: Position) -> ApiResult<Event> {
    let (retracted, corrected) = api
        .projections
        .status_of(record.position(), Some(known_at))?
        .unwrap_or((false, false));
    let corrected_content = if corrected {
        api.projections
            .effective_event(record.position(), known_at)
            .await?
    } else {
        None
    };
    Ok(Event {
        record,
        corrected_content,
        retracted,
        corrected,
    })
}

/// The event as it reads at the question's time, or `None` if the question leaves it out. The
/// record is decoded only if a correction, a text search or the selection needs it.
async fn shown(
    api: &Api,
    record: RecordedEvent,
    filter: &EventFilterInput,
    as_of: &AsOf,
    known_at: Position,
) -> ApiResult<Option<Event>> {
    let event = as_known(api, record, known_at).await?;
    if event.retracted && !filter.include_retracted {
        return Ok(None);
    }
    if let Some(valid_at) = as_of.valid_at {
        let occurred = match &event.corrected_content {
            Some(c) => c.occurred.clone(),
            None => event.record.view().map_err(ApiError::unreadable)?.occurred,
        };
        if occurred.is_some_and(|o| o.start.earliest() >= valid_at.end_exclusive()) {
            return Ok(None);
        }
    }
    let rest = match &event.corrected_content {
        Some(c) => filter.matches_rest(c),
        None => filter.matches_rest_record(&event.record)?,
    };
    Ok(rest.then_some(event))
}

impl Listing<'_> {
    /// A page in log order, read from the log.
    async fn by_log(&self) -> ApiResult<EventConnection> {
        let known_at = self.api.projections.when(self.as_of)?.known_at;
        let store_filter = self.filter.to_store_filter()?;
        let (after, before) = self.page.cursors(
            Cursor::log,
            "a valid-time cursor cannot page a log-ordered list",
        )?;
        let mut gathered = Gathered::new(self.size);
        let mut from = if self.backward {
            before.map_or(known_at, |b| b.saturating_sub(1).min(known_at))
        } else {
            after.map_or(1, |a| a + 1)
        };
        'pages: loop {
            if (self.backward && from == 0) || (!self.backward && from > known_at) {
                break;
            }
            let direction = if self.backward {
                Direction::Backward
            } else {
                Direction::Forward
            };
            let batch = self
                .api
                .log
                .read(ReadRequest {
                    from,
                    direction,
                    filter: store_filter.clone(),
                    limit: CHUNK,
                })
                .await?;
            let exhausted = batch.len() < CHUNK;
            for record in batch {
                let position = record.position();
                if (!self.backward && position > known_at)
                    || after.is_some_and(|a| position <= a)
                    || before.is_some_and(|b| position >= b)
                {
                    if !self.backward && position > known_at {
                        break 'pages;
                    }
                    continue;
                }
                from = if self.backward {
                    position.saturating_sub(1)
                } else {
                    position + 1
                };
                if let Some(event) =
                    shown(self.api, record, self.filter, self.as_of, known_at).await?
                {
                    if !gathered.push(Cursor::Log(event.record.position()), event) {
                        break 'pages;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(gathered.connection(self.backward, after.is_some(), before.is_some()))
    }

    /// A page in valid-time order, read from the chronology projection.
    async fn by_valid_time(&self) -> ApiResult<EventConnection> {
        let (after, before) = self.page.cursors(
            Cursor::slot,
            "a log cursor cannot page a valid-time-ordered list",
        )?;
        let EventFilter {
            timelines,
            parties,
            issues,
            kinds,
        } = self.filter.to_store_filter()?;
        let mut request = ChronologyRequest {
            timelines,
            parties,
            issues,
            kinds,
            valid_from: self.filter.valid_from.map(|v| v.0),
            valid_to: self.filter.valid_to.map(|v| v.0),
            as_of: *self.as_of,
            after,
            before,
            backward: self.backward,
            limit: CHUNK,
            include_retracted: self.filter.include_retracted,
        };
        let mut gathered = Gathered::new(self.size);
        'pages: loop {
            let chunk = self.api.projections.chronology(&request).await?;
            // Entries come oldest first either way: continue before the oldest, or after the
            // newest.
            if self.backward {
                request.before = chunk.entries.first().map(|e| e.slot).or(request.before);
            } else {
                request.after = chunk.entries.last().map(|e| e.slot).or(request.after);
            }
            let entries = if self.backward {
                chunk.entries.into_iter().rev().collect::<Vec<_>>()
            } else {
                chunk.entries
            };
            for entry in entries {
                if !self.filter.matches_rest(&entry.effective) {
                    continue;
                }
                if !gathered.push(Cursor::ValidTime(entry.slot), Event::from_chronology(entry)) {
                    break 'pages;
                }
            }
            if !chunk.has_more {
                break;
            }
        }
        Ok(gathered.connection(self.backward, after.is_some(), before.is_some()))
    }
}
