//! Live subscriptions shared by backends: a watch on the head position and a bounded ring of the
//! most recent events. A subscriber keeps only a cursor. It takes events from the ring while it
//! keeps up and reads them from storage when it falls behind, so a slow subscriber costs no
//! memory and is never dropped; every event comes once, in position order.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use chancery_domain::{Position, RecordedEvent};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::filter::EventFilter;
use crate::log::EventStream;

/// How many events a subscriber takes at a time, from the ring or from storage.
const CHUNK: usize = 256;

/// Reads committed events from storage for subscribers that are behind the ring.
pub trait ForwardReader: Send + Sync + 'static {
    /// Matching events with positions `>= from`, in order, at most `limit`. Fewer than `limit`
    /// means the read reached the end of the log as it was when read.
    fn read_forward(
        &self,
        from: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RecordedEvent>, StoreError>>;
}

/// The head position and the most recent events, published by the backend after each commit.
pub struct LiveFeed {
    head: watch::Sender<Position>,
    recent: RwLock<VecDeque<RecordedEvent>>,
    capacity: usize,
}

impl LiveFeed {
    /// A feed whose log ends at `head`, keeping at most `capacity` recent events in memory.
    pub fn new(head: Position, capacity: usize) -> Arc<Self> {
        let (tx, _) = watch::channel(head);
        Arc::new(Self {
            head: tx,
            recent: RwLock::new(VecDeque::with_capacity(capacity)),
            capacity,
        })
    }

    pub fn head(&self) -> Position {
        *self.head.borrow()
    }

    pub fn watch_head(&self) -> watch::Receiver<Position> {
        self.head.subscribe()
    }

    /// Publishes events just committed, in position order, continuing the head. Call only once
    /// they are durable and readable from storage.
    pub fn publish(&self, events: &[RecordedEvent]) {
        let Some(last) = events.last() else { return };
        {
            let mut recent = self
                .recent
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let contiguous = recent
                .back()
                .is_none_or(|b| events[0].position() == b.position() + 1);
            if !contiguous {
                recent.clear();
            }
            for e in events.iter().rev().take(self.capacity).rev() {
                if recent.len() == self.capacity {
                    recent.pop_front();
                }
                recent.push_back(e.clone());
            }
        }
        self.head.send_replace(last.position());
    }

    /// Matching events from `from` up to `to` found in the ring, at most `limit`, and the last
    /// position scanned; `None` when `from` is older than the ring holds.
    fn take_from_ring(
        &self,
        from: Position,
        to: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> Option<(Vec<RecordedEvent>, Position)> {
        let recent = self
            .recent
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = recent.front()?.position();
        if from < first {
            return None;
        }
        let skip = usize::try_from(from - first).ok()?;
        let mut found = Vec::new();
        let mut scanned = from.saturating_sub(1);
        for e in recent.iter().skip(skip) {
            if e.position() > to || found.len() == limit {
                break;
            }
            scanned = e.position();
            if filter.matches_record(e) {
                found.push(e.clone());
            }
        }
        Some((found, scanned))
    }
}

struct Cursor<R> {
    feed: Arc<LiveFeed>,
    reader: Arc<R>,
    filter: EventFilter,
    head: watch::Receiver<Position>,
    next: Position,
    pending: VecDeque<RecordedEvent>,
    finished: bool,
}

/// A subscription: every event matching `filter` after position `after`, history then live.
///
/// The stream ends with [`StoreError::Closed`] when the log shuts down, or with the storage
/// error that stopped it; it never ends silently.
pub fn subscribe<R: ForwardReader>(
    feed: Arc<LiveFeed>,
    reader: Arc<R>,
    after: Position,
    filter: EventFilter,
) -> EventStream {
    let head = feed.watch_head();
    let cursor = Cursor {
        feed,
        reader,
        filter,
        head,
        next: after.saturating_add(1),
        pending: VecDeque::new(),
        finished: false,
    };
    stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(e) = c.pending.pop_front() {
                return Some((Ok(e), c));
            }
            if c.finished {
                return None;
            }
            let head = *c.head.borrow_and_update();
            if c.next <= head {
                if let Some((found, scanned)) =
                    c.feed.take_from_ring(c.next, head, &c.filter, CHUNK)
                {
                    c.next = scanned + 1;
                    c.pending.extend(found);
                    continue;
                }
                match c.reader.read_forward(c.next, &c.filter, CHUNK).await {
                    Ok(found) => {
                        let last = found.last().map_or(0, RecordedEvent::position);
                        // A short read reached the log's end, which is at least `head`.
                        c.next = if found.len() < CHUNK {
                            (head + 1).max(last + 1)
                        } else {
                            last + 1
                        };
                        c.pending.extend(found);
                    }
                    Err(e) => {
                        c.finished = true;
                        return Some((Err(e), c));
                    }
                }
                continue;
            }
            if c.head.changed().await.is_err() {
                c.finished = true;
                return Some((Err(StoreError::Closed), c));
            }
        }
    })
    .boxed()
}
