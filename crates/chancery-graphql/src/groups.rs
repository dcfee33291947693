//! Subscription groups: subscribers whose answers cannot differ (the same document, operation,
//! variables and grants) share one execution, and each answer is encoded once; a member's own
//! work is the frame around the shared bytes and its connection's write.
//!
//! A member whose connection falls behind (its queue full) leaves its group and goes on alone from
//! the last answer it was given, reading from storage as any subscription does: the group never
//! waits for its slowest member, and nothing queues without bound.
//!
//! An execution that panics ends its group: every member gets the same masked `INTERNAL` error
//! (one reference, logged once), as a refused one ends it with the refusal.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::Response;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use crate::auth::Scope;
use crate::metrics::Metrics;

/// The answers a group keeps for members that join after it started, at the most (an `events`
/// group): beyond them, a subscriber with the same key starts a group of its own.
const BACKLOG: usize = 64;

/// Set by the `events` resolver to the log position of the event it yields last, so that a
/// group knows where each answer stands in the log.
#[derive(Clone, Default)]
pub(crate) struct FeedTap(Arc<AtomicU64>);

impl FeedTap {
    pub(crate) fn record(&self, position: u64) {
        self.0.store(position, Ordering::Release);
    }

    fn read(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Tells the `events` resolver to start after this log position rather than after its `after`
/// argument: a member that left its group goes on from the last event it was given.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResumeAfter(pub u64);

/// What decides a subscription's answers: subscribers with equal keys get equal answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub query: Arc<str>,
    pub operation: Option<String>,
    /// The variables as JSON text.
    pub variables: String,
    /// The caller's role and timelines: answers are never shared across them.
    pub scope: Scope,
}

/// A subscription's root field, which decides whether it is grouped and who may join late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feed {
    /// `events`: a late member needs every answer since the group started, so it joins only
    /// while the group holds them all (`BACKLOG`).
    Events,
    /// `positionChanged`: the latest answer is the current state; a late member gets it, then
    /// what follows.
    Changes,
}

impl Feed {
    /// The feed of the operation `name` (or the only one) in `document`, if it is a subscription
    /// to one root field that can be grouped.
    pub(crate) fn of(document: &ExecutableDocument, name: Option<&str>) -> Option<Feed> {
        let operation = match name {
            Some(name) => document
                .operations
                .iter()
                .find(|(n, _)| n.is_some_and(|n| n.as_str() == name))?,
            None => {
                let mut operations = document.operations.iter();
                let only = operations.next()?;
                if operations.next().is_some() {
                    return None;
                }
                only
            }
        }
        .1;
        if operation.node.ty != OperationType::Subscription {
            return None;
        }
        let SelectionSet { items } = &operation.node.selection_set.node;
        let [item] = items.as_slice() else {
            return None;
        };
        let Selection::Field(field) = &item.node else {
            return None;
        };
        if !field.node.directives.is_empty() {
            return None;
        }
        match field.node.name.node.as_str() {
            "events" => Some(Feed::Events),
            "positionChanged" => Some(Feed::Changes),
            _ => None,
        }
    }
}

/// One answer of a subscription, encoded once.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    /// The log position of the event answered (`events`; 0 for other feeds and before the first).
    pub position: u64,
    /// The `payload` of a `next` frame.
    pub payload: Arc<str>,
}

/// What an execution's response is to a subscriber.
pub(crate) enum Step {
    /// The next answer.
    Answer(String),
    /// The request was refused before it ran (it does not validate, say): these errors, then the
    /// subscription ends.
    Refused(Value),
}

impl Step {
    /// `first` says whether this is the execution's first response: only that one can be a
    /// refusal.
    pub(crate) fn of(response: &Response, first: bool) -> Step {
        let refused = first && crate::error::is_request_error(response);
        // An answer without errors is written straight out: building a `Value` first and printing
        // it would be a large part of the work of a delivery.
        if !refused && response.errors.is_empty() {
            if let Ok(text) = serde_json::to_string(response) {
                return Step::Answer(text);
            }
        }
        let mut body = serde_json::to_value(response).unwrap_or_else(
            |_| json!({ "errors": [{ "message": "the response could not be encoded" }] }),
        );
        crate::error::add_missing_codes(&mut body);
        if refused {
            Step::Refused(body.get("errors").cloned().unwrap_or(Value::Array(vec![])))
        } else {
            Step::Answer(body.to_string())
        }
    }
}

/// What became of an answer handed to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    Queued,
    /// The member's queue is full: it falls behind, and leaves the group.
    Full,
    /// The member is gone (its connection closed).
    Gone,
}

/// A subscriber in a group, as its transport sees it.
pub(crate) trait Member: Send {
    /// Queues an answer without waiting.
    fn deliver(&mut self, answer: &Answer) -> Delivered;
    /// Goes on alone after `last`, the last answer it was given (`None`: none yet).
    fn detach(self: Box<Self>, last: Option<Answer>);
    /// The group's execution ended: `refused` holds the errors if it was refused or panicked.
    fn end(self: Box<Self>, refused: Option<Value>);
}

struct Seat {
    key: u64,
    member: Box<dyn Member>,
    last: Option<Answer>,
}

/// A member's place in a group, to leave it by.
pub(crate) struct Membership {
    group: Arc<Group>,
    /// `None` when the member went on alone as it joined.
    seat: Option<u64>,
}

impl Membership {
    /// Leaves the group (if the member is still in it); the last member out stops the execution.
    pub(crate) fn leave(&self, groups: &Groups) {
        let Some(seat) = self.seat else { return };
        let mut open = groups.lock_open();
        let mut state = self.group.lock();
        let before = state.seats.len();
        state.seats.retain(|s| s.key != seat);
        if state.seats.len() < before {
            groups.metrics.grouped_subscribers_changed(-1);
        }
        if state.seats.is_empty() {
            groups.retire(&mut open, &self.group, &mut state);
            if let Ok(mut execution) = self.group.execution.lock() {
                if let Some(task) = execution.take() {
                    task.abort();
                }
            }
        }
    }
}

#[derive(Default)]
struct GroupState {
    seats: Vec<Seat>,
    next_seat: u64,
    /// Every answer since the start while there are at most `BACKLOG` (`events`); `None` after.
    backlog: Option<Vec<Answer>>,
    /// The latest answer (`positionChanged`).
    latest: Option<Answer>,
    /// No one joins and nothing is delivered any more.
    ended: bool,
    /// Out of the open groups, and counted out of the metrics.
    retired: bool,
}

struct Group {
    key: GroupKey,
    feed: Feed,
    state: Mutex<GroupState>,
    execution: Mutex<Option<AbortHandle>>,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // A panic while holding the lock leaves consistent data: every change is one push or one
        // removal.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn joinable(&self, state: &GroupState) -> bool {
        !state.ended && (self.feed == Feed::Changes || state.backlog.is_some())
    }
}

/// The open groups, by key.
pub struct Groups {
    open: Mutex<HashMap<GroupKey, Arc<Group>>>,
    metrics: Arc<Metrics>,
}

impl Groups {
    pub fn new(metrics: Arc<Metrics>) -> Groups {
        Groups {
            open: Mutex::default(),
            metrics,
        }
    }

    fn lock_open(&self) -> MutexGuard<'_, HashMap<GroupKey, Arc<Group>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Members of the largest open group, for `/metrics` (the counts of groups and members are
    /// kept in `Metrics` as they change).
    pub fn largest(&self) -> usize {
        let open = self.lock_open();
        open.values()
            .map(|group| group.lock().seats.len())
            .max()
            .unwrap_or(0)
    }

    /// Puts `member` in the group of `key`, starting one with `execute` if none can take it, and
    /// gives it what it missed of the group's answers.
    pub(crate) fn join(
        self: &Arc<Self>,
        key: GroupKey,
        feed: Feed,
        member: Box<dyn Member>,
        execute: impl FnOnce(FeedTap) -> BoxStream<'static, Response>,
    ) -> Membership {
        let mut open = self.lock_open();
        if let Some(group) = open.get(&key).cloned() {
            let mut state = group.lock();
            if group.joinable(&state) {
                let missed: Vec<Answer> = match feed {
                    Feed::Events => state.backlog.clone().unwrap_or_default(),
                    Feed::Changes => state.latest.clone().into_iter().collect(),
                };
                let seat = self.seat(&mut state, member, &missed);
                drop(state);
                drop(open);
                return Membership { seat, group };
            }
        }
        let group = Arc::new(Group {
            key: key.clone(),
            feed,
            state: Mutex::new(GroupState {
                backlog: (feed == Feed::Events).then(Vec::new),
                ..GroupState::default()
            }),
            execution: Mutex::new(None),
        });
        let seat = {
            let mut state = group.lock();
            self.seat(&mut state, member, &[])
        };
        open.insert(key, Arc::clone(&group));
        self.metrics.subscription_groups_changed(1);
        let tap = FeedTap::default();
        let stream = execute(tap.clone());
        let task = tokio::spawn(run(Arc::clone(self), Arc::clone(&group), stream, tap));
        if let Ok(mut execution) = group.execution.lock() {
            *execution = Some(task.abort_handle());
        }
        drop(open);
        Membership { seat, group }
    }

    /// Seats `member` after giving it `missed`; `None` if it could not take them (then it goes on
    /// alone, or is gone).
    fn seat(
        &self,
        state: &mut GroupState,
        mut member: Box<dyn Member>,
        missed: &[Answer],
    ) -> Option<u64> {
        let mut last = None;
        for answer in missed {
            match member.deliver(answer) {
                Delivered::Queued => last = Some(answer.clone()),
                Delivered::Full => {
                    self.metrics.record_detached();
                    member.detach(last);
                    return None;
                }
                Delivered::Gone => return None,
            }
        }
        let key = state.next_seat;
        state.next_seat += 1;
        state.seats.push(Seat { key, member, last });
        self.metrics.grouped_subscribers_changed(1);
        Some(key)
    }

    /// Ends a group and takes it out of the open ones (unless a newer group has its key), once.
    fn retire(
        &self,
        open: &mut HashMap<GroupKey, Arc<Group>>,
        group: &Arc<Group>,
        state: &mut GroupState,
    ) {
        state.ended = true;
        if state.retired {
            return;
        }
        state.retired = true;
        if open.get(&group.key).is_some_and(|g| Arc::ptr_eq(g, group)) {
            open.remove(&group.key);
        }
        self.metrics.subscription_groups_changed(-1);
    }

    /// Hands `answer` to every member; false once no member is left.
    fn publish(&self, group: &Arc<Group>, answer: Answer) -> bool {
        let mut state = group.lock();
        if state.ended {
            return false;
        }
        match group.feed {
            Feed::Events => {
                if let Some(backlog) = &mut state.backlog {
                    if backlog.len() < BACKLOG {
                        backlog.push(answer.clone());
                    } else {
                        state.backlog = None;
                    }
                }
            }
            Feed::Changes => state.latest = Some(answer.clone()),
        }
        let mut behind = Vec::new();
        let mut i = 0;
        while i < state.seats.len() {
            let seat = &mut state.seats[i];
            match seat.member.deliver(&answer) {
                Delivered::Queued => {
                    seat.last = Some(answer.clone());
                    i += 1;
                }
                Delivered::Full => behind.push(state.seats.swap_remove(i)),
                Delivered::Gone => {
                    state.seats.swap_remove(i);
                    self.metrics.grouped_subscribers_changed(-1);
                }
            }
        }
        let alive = !state.seats.is_empty();
        if !alive {
            // Ended under the lock a joiner takes: no one joins a group whose execution stops.
            state.ended = true;
        }
        drop(state);
        for seat in behind {
            self.metrics.grouped_subscribers_changed(-1);
            self.metrics.record_detached();
            seat.member.detach(seat.last);
        }
        alive
    }
}

/// A group's execution: each response encoded once and handed to every member. A panic of the
/// execution ends the group as a refusal does, with its masked error for every member.
async fn run(
    groups: Arc<Groups>,
    group: Arc<Group>,
    stream: BoxStream<'static, Response>,
    tap: FeedTap,
) {
    let mut stream = AssertUnwindSafe(stream).catch_unwind();
    let mut first = true;
    let mut refused = None;
    while let Some(response) = stream.next().await {
        let response = match response {
            Ok(response) => response,
            Err(panic) => {
                refused = Some(crate::panics::subscription_errors(&*panic));
                break;
            }
        };
        match Step::of(&response, first) {
            Step::Answer(payload) => {
                let answer = Answer {
                    position: tap.read(),
                    payload: payload.into(),
                };
                if !groups.publish(&group, answer) {
                    break;
                }
            }
            Step::Refused(errors) => {
                refused = Some(errors);
                break;
            }
        }
        first = false;
    }
    // This task is the execution: it ends here, and is not aborted from within.
    if let Ok(mut execution) = group.execution.lock() {
        execution.take();
    }
    let mut open = groups.lock_open();
    let mut state = group.lock();
    let seats = std::mem::take(&mut state.seats);
    groups.retire(&mut open, &group, &mut state);
    drop(state);
    drop(open);
    for seat in seats {
        groups.metrics.grouped_subscribers_changed(-1);
        seat.member.end(refused.clone());
    }
}
