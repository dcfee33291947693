//! A cache of whole answers to read queries over HTTP, each valid for one state of the store.
//!
//! A query's answer is a function of its document, variables and operation name, the caller's
//! role and timelines, the log's head, the position the projections have applied, and the present time (an
//! `asOf` left out means "now", to the second, and a measure takes effect at its instant). The
//! cache keys answers by the first four and stamps them with the last three: an answer is
//! served only while what it depends on of its stamp is still current, so it is exactly the
//! answer a fresh computation would give. Dashboards polling the same questions
//! then cost one computation per question per second, however many they are.
//!
//! An answer computed without reading the present (every `asOf` gave a valid time, as the
//! timeline page's slider does) holds for as long as the log and the projections do not move,
//! whatever the second: [`Holds::WhileStoreUnmoved`]. The projections count their reads of the
//! present ([`chancery_projections::present_time_reads`], process-wide); an answer computed
//! while the count stood still read none. A read by a concurrent request makes the answer count
//! as one that did, which only costs a recomputation the next second.
//!
//! Bounded in answers and bytes: when full, answers of past seconds make room, then the least
//! recently used, so that questions asked once (asked afresh, or a slider moving on) make room
//! for those asked again rather than crowding them out.
//!
//! One computation per question and stamp: a request that misses while another computes the
//! same answer waits for it ([`AnswerCache::claim`]) instead of computing it again, so that the
//! clients polling one question do not all compute it at the turn of each second.
//!
//! Left out: mutations; answers with errors; documents that say `atLeast` (a read that must wait
//! for a position must not be answered from the state before it); and answers computed while the
//! stamp moved, or while the projections were behind the log (their registry and the log's could
//! disagree for a moment).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use tokio::sync::Notify;

use crate::api::Api;
use crate::auth::Scope;

/// Answers kept for one state of the store, at most.
const MAX_ANSWERS: usize = 256;
/// Bytes of answers kept for one state of the store, at most, and the largest answer kept.
const MAX_BYTES: usize = 32 << 20;
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The state an answer was computed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    head: u64,
    applied: u64,
    second: u64,
}

impl Stamp {
    /// The log's head and the applied position: what an answer that did not read the present
    /// depends on besides its question.
    fn store(&self) -> (u64, u64) {
        (self.head, self.applied)
    }

    /// Whether an answer computed under `self`, holding as `holds` says, is still right under
    /// `now`.
    pub fn still_holds(&self, now: Stamp, holds: Holds) -> bool {
        match holds {
            Holds::ThisSecond => *self == now,
            Holds::WhileStoreUnmoved => self.store() == now.store(),
        }
    }

    /// The current stamp, or `None` when answers must not be cached now: the projections are
    /// behind the log.
    pub async fn now(api: &Api) -> Option<Stamp> {
        let head = api.log.head().await.ok()?.position;
        let applied = api.projections.applied();
        if applied != head {
            return None;
        }
        let second = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        Some(Stamp {
            head,
            applied,
            second,
        })
    }
}

/// What an answer depends on besides the stamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    scope: Scope,
    document: String,
    operation: Option<String>,
    variables: String,
}

impl Question {
    /// The question a request asks, if its answer may be cached; `variables` as their JSON.
    pub fn of(
        scope: Scope,
        document: &str,
        operation: Option<&str>,
        variables: Option<String>,
    ) -> Option<Question> {
        if document.contains("atLeast") {
            return None;
        }
        Some(Question {
            scope,
            document: document.to_owned(),
            operation: operation.map(str::to_owned),
            variables: variables.unwrap_or_default(),
        })
    }
}

/// How long a kept answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// For the second it was computed in: it read the present time.
    ThisSecond,
    /// For as long as the log's head and the applied position stay where they were.
    WhileStoreUnmoved,
}

struct Kept {
    /// The second the answer holds for, or `None` for any second.
    second: Option<u64>,
    /// When the answer was last kept or served, on [`Held::clock`].
    used: u64,
    body: Bytes,
}

/// The answers kept for one state of the store.
#[derive(Default)]
struct Held {
    /// The log's head and the applied position every kept answer was computed at.
    store: Option<(u64, u64)>,
    answers: HashMap<Question, Kept>,
    bytes: usize,
    /// Counts the answers kept and served: what [`Kept::used`] is measured on.
    clock: u64,
}

impl Held {
    fn has_room_for(&self, bytes: usize) -> bool {
        self.answers.len() < MAX_ANSWERS && self.bytes + bytes <= MAX_BYTES
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn forget(&mut self, question: &Question) {
        if let Some(forgotten) = self.answers.remove(question) {
            self.bytes -= forgotten.body.len();
        }
    }

    /// Makes room for an answer of `bytes` under `second`: the answers of past seconds go, then
    /// the least recently used ones. Questions asked once (a client asking afresh, a slider
    /// moving on) so make room for the ones asked again, instead of filling the cache.
    fn make_room(&mut self, bytes: usize, second: u64) {
        if self.has_room_for(bytes) {
            return;
        }
        let Held {
            answers,
            bytes: held_bytes,
            ..
        } = self;
        answers.retain(|_, kept| {
            let past = kept.second.is_some_and(|s| s < second);
            if past {
                *held_bytes -= kept.body.len();
            }
            !past
        });
        while !self.has_room_for(bytes) {
            let Some(oldest) = self
                .answers
                .iter()
                .min_by_key(|(_, kept)| kept.used)
                .map(|(question, _)| question.clone())
            else {
                return;
            };
            self.forget(&oldest);
        }
    }
}

/// The answers of the current state of the store.
#[derive(Default)]
pub struct AnswerCache {
    held: Mutex<Held>,
    /// Answers being computed, with the stamp they are computed under; their waiters are woken
    /// when the computation ends, kept or not.
    computing: Mutex<HashMap<Question, (Stamp, Arc<Notify>)>>,
}

/// What [`AnswerCache::claim`] gives: the answer, or the task of computing it.
pub enum Claim {
    Answer(Bytes),
    /// Compute the answer, [`AnswerCache::put`] it, then drop this: whoever waited is woken.
    Compute(Computing),
}

/// A claim on computing an answer. Dropping it, whatever happened, wakes the requests waiting
/// for the answer; those that then find none compute it themselves.
pub struct Computing {
    cache: Arc<AnswerCache>,
    question: Option<Question>,
    notify: Arc<Notify>,
}

impl Drop for Computing {
    fn drop(&mut self) {
        if let Some(question) = self.question.take() {
            if let Ok(mut computing) = self.cache.computing.lock() {
                let ours = computing
                    .get(&question)
                    .is_some_and(|(_, notify)| Arc::ptr_eq(notify, &self.notify));
                if ours {
                    computing.remove(&question);
                }
            }
        }
        self.notify.notify_waiters();
    }
}

impl AnswerCache {
    /// The answer under `stamp`, once whoever is computing it has finished; or, when nobody is,
    /// the claim to compute it. A request waits at most once: if the computation it waited for
    /// kept nothing (an error, a stamp that moved), it computes the answer itself.
    pub async fn claim(self: &Arc<Self>, stamp: Stamp, question: &Question) -> Claim {
        let notify = {
            let Ok(mut computing) = self.computing.lock() else {
                return Claim::Compute(self.unclaimed());
            };
            if let Some(answer) = self.get(stamp, question) {
                return Claim::Answer(answer);
            }
            match computing.get(question) {
                Some((at, notify)) if *at == stamp => Arc::clone(notify),
                _ => {
                    let notify = Arc::new(Notify::new());
                    computing.insert(question.clone(), (stamp, Arc::clone(&notify)));
                    return Claim::Compute(Computing {
                        cache: Arc::clone(self),
                        question: Some(question.clone()),
                        notify,
                    });
                }
            }
        };
        let notified = notify.notified();
        tokio::pin!(notified);
        // Registered before looking again, so that an end between the two is not missed.
        notified.as_mut().enable();
        let still_computing = self
            .computing
            .lock()
            .map(|c| {
                c.get(question)
                    .is_some_and(|(_, n)| Arc::ptr_eq(n, &notify))
            })
            .unwrap_or(false);
        if still_computing {
            notified.await;
        }
        match self.get(stamp, question) {
            Some(answer) => Claim::Answer(answer),
            None => Claim::Compute(self.unclaimed()),
        }
    }

    /// A computation nobody waits for.
    fn unclaimed(self: &Arc<Self>) -> Computing {
        Computing {
            cache: Arc::clone(self),
            question: None,
            notify: Arc::new(Notify::new()),
        }
    }

    /// The answer that holds under `stamp`, if there is one.
    pub fn get(&self, stamp: Stamp, question: &Question) -> Option<Bytes> {
        let mut held = self.held.lock().ok()?;
        if held.store != Some(stamp.store()) {
            return None;
        }
        let now = held.tick();
        let kept = held
            .answers
            .get_mut(question)
            .filter(|kept| kept.second.is_none_or(|s| s == stamp.second))?;
        kept.used = now;
        Some(kept.body.clone())
    }

    /// Keeps an answer computed wholly under `stamp`, holding as `holds` says; answers of other
    /// states of the store go. When the cache is full, answers of past seconds make room, then
    /// the least recently used ones.
    pub fn put(&self, stamp: Stamp, question: Question, answer: Bytes, holds: Holds) {
        if answer.len() > MAX_ANSWER_BYTES {
            return;
        }
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        if held.store != Some(stamp.store()) {
            *held = Held {
                store: Some(stamp.store()),
                ..Held::default()
            };
        }
        held.forget(&question);
        held.make_room(answer.len(), stamp.second);
        held.bytes += answer.len();
        let used = held.tick();
        let second = match holds {
            Holds::ThisSecond => Some(stamp.second),
            Holds::WhileStoreUnmoved => None,
        };
        held.answers.insert(
            question,
            Kept {
                second,
                used,
                body: answer,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Caller, Role, Timelines};

    fn stamp(head: u64, second: u64) -> Stamp {
        Stamp {
            head,
            applied: head,
            second,
        }
    }

    fn asked_by(role: Role, document: &str) -> Question {
        asked_within(role, Timelines::All, document)
    }

    fn asked_within(role: Role, timelines: Timelines, document: &str) -> Question {
        let scope = Scope {
            role: Some(role),
            timelines,
        };
        Question::of(scope, document, None, None).expect("a cacheable question")
    }

    fn question(document: &str) -> Question {
        asked_by(Role::Reader, document)
    }

    /// Keeps `body` as the answer to `q` under `s`.
    fn keep(cache: &AnswerCache, s: Stamp, q: &Question, body: &'static [u8], holds: Holds) {
        cache.put(s, q.clone(), Bytes::from_static(body), holds);
    }

    #[test]
    fn an_answer_serves_only_its_own_stamp_and_question() {
        let cache = AnswerCache::default();
        let q = question("{ head { position } }");
        keep(&cache, stamp(7, 100), &q, b"seven", Holds::ThisSecond);
        assert_eq!(cache.get(stamp(7, 100), &q).as_deref(), Some(&b"seven"[..]));
        assert_eq!(cache.get(stamp(8, 100), &q), None, "the log moved");
        assert_eq!(cache.get(stamp(7, 101), &q), None, "a second passed");
        let admin = asked_by(Role::Admin, "{ head { position } }");
        assert_eq!(cache.get(stamp(7, 100), &admin), None, "another role");
        let slug = |s: &str| chancery_domain::TimelineSlug::new(s).expect("a slug");
        let only_a = asked_within(
            Role::Reader,
            Timelines::only([slug("a")]),
            "{ head { position } }",
        );
        assert_eq!(cache.get(stamp(7, 100), &only_a), None, "other timelines");
        let other = question("{ parties { code } }");
        assert_eq!(cache.get(stamp(7, 100), &other), None);
        // A newer stamp clears the older answers.
        keep(&cache, stamp(8, 100), &other, b"parties", Holds::ThisSecond);
        assert_eq!(cache.get(stamp(8, 100), &q), None);
        assert_eq!(
            cache.get(stamp(8, 100), &other).as_deref(),
            Some(&b"parties"[..])
        );
    }

    #[test]
    fn an_answer_that_did_not_read_the_present_holds_until_the_store_moves() {
        let cache = AnswerCache::default();
        let timeless = question("{ standoffs(asOf: { validAt: \"2018-06-01\" }) { status } }");
        let present = question("{ standoffs { status } }");
        keep(
            &cache,
            stamp(7, 100),
            &timeless,
            b"june",
            Holds::WhileStoreUnmoved,
        );
        keep(&cache, stamp(7, 100), &present, b"now", Holds::ThisSecond);
        assert_eq!(
            cache.get(stamp(7, 105), &timeless).as_deref(),
            Some(&b"june"[..])
        );
        assert_eq!(cache.get(stamp(7, 101), &present), None, "a second passed");
        assert_eq!(cache.get(stamp(8, 105), &timeless), None, "the log moved");
        let behind = Stamp {
            head: 7,
            applied: 6,
            second: 100,
        };
        assert_eq!(cache.get(behind, &timeless), None, "the projections moved");
        assert!(stamp(7, 100).still_holds(stamp(7, 101), Holds::WhileStoreUnmoved));
        assert!(!stamp(7, 100).still_holds(stamp(7, 101), Holds::ThisSecond));
        assert!(!stamp(7, 100).still_holds(stamp(8, 100), Holds::WhileStoreUnmoved));
    }

    #[test]
    fn answers_of_past_seconds_then_the_least_recently_used_make_room() {
        let cache = AnswerCache::default();
        let asked = |i: usize| question(&format!("{{ standoffs {{ status }} }} # {i}"));
        let timeless = |i: usize| question(&format!("{{ parties {{ code }} }} # {i}"));
        for i in 0..MAX_ANSWERS {
            keep(&cache, stamp(7, 100), &asked(i), b"a", Holds::ThisSecond);
        }
        assert!(cache.get(stamp(7, 100), &asked(0)).is_some());
        // Full, in the same second: the least recently used answer makes room.
        keep(
            &cache,
            stamp(7, 100),
            &timeless(0),
            b"b",
            Holds::WhileStoreUnmoved,
        );
        assert_eq!(
            cache.get(stamp(7, 100), &timeless(0)).as_deref(),
            Some(&b"b"[..])
        );
        assert_eq!(cache.get(stamp(7, 100), &asked(1)), None, "the oldest went");
        assert!(
            cache.get(stamp(7, 100), &asked(0)).is_some(),
            "served again: it stayed"
        );
        // A later second: every answer of the past one makes room at once.
        for i in 1..MAX_ANSWERS {
            keep(
                &cache,
                stamp(7, 101),
                &timeless(i),
                b"b",
                Holds::WhileStoreUnmoved,
            );
        }
        assert_eq!(cache.get(stamp(7, 101), &asked(2)), None);
        assert_eq!(
            cache.held.lock().expect("the lock").answers.len(),
            MAX_ANSWERS
        );
        keep(&cache, stamp(7, 102), &asked(0), b"c", Holds::ThisSecond);
        assert_eq!(
            cache.get(stamp(7, 102), &timeless(0)),
            None,
            "the least recently used of those holding for any second"
        );
        assert!(cache.get(stamp(7, 102), &timeless(1)).is_some());
        // Asking again replaces the answer kept, and counts its bytes once.
        keep(&cache, stamp(7, 102), &asked(0), b"d", Holds::ThisSecond);
        assert_eq!(
            cache.get(stamp(7, 102), &asked(0)).as_deref(),
            Some(&b"d"[..])
        );
        let held = cache.held.lock().expect("the lock");
        assert_eq!(held.answers.len(), MAX_ANSWERS);
        assert_eq!(held.bytes, MAX_ANSWERS);
    }

    /// Claims the computation of `q` (nobody else was computing it), then has a second request
    /// claim it too: the second request's task.
    async fn claimed_and_awaited(
        cache: &Arc<AnswerCache>,
        s: Stamp,
        q: &Question,
    ) -> (Computing, tokio::task::JoinHandle<Claim>) {
        let Claim::Compute(first) = cache.claim(s, q).await else {
            panic!("nobody was computing it");
        };
        let (cache, q) = (Arc::clone(cache), q.clone());
        (first, tokio::spawn(async move { cache.claim(s, &q).await }))
    }

    #[tokio::test]
    async fn a_question_being_computed_is_waited_for_not_computed_again() {
        let cache = Arc::new(AnswerCache::default());
        let q = question("{ positions { stance } }");
        let s = stamp(3, 30);
        let (first, waiting) = claimed_and_awaited(&cache, s, &q).await;
        tokio::task::yield_now().await;
        // Another stamp is another computation: it does not wait.
        assert!(matches!(
            cache.claim(stamp(4, 30), &q).await,
            Claim::Compute(_)
        ));
        assert!(!waiting.is_finished(), "the second request waits");
        keep(&cache, s, &q, b"answer", Holds::ThisSecond);
        drop(first);
        match waiting.await.expect("the waiter ends") {
            Claim::Answer(answer) => assert_eq!(&answer[..], b"answer"),
            Claim::Compute(_) => panic!("the waiter computed what was kept"),
        }
        // A computation that keeps nothing lets its waiter compute.
        let q2 = question("{ standoffs { status } }");
        let (failed, waiting) = claimed_and_awaited(&cache, s, &q2).await;
        tokio::task::yield_now().await;
        drop(failed);
        assert!(matches!(
            waiting.await.expect("the waiter ends"),
            Claim::Compute(_)
        ));
    }

    #[test]
    fn reads_that_wait_for_a_position_are_never_cached() {
        assert_eq!(
            Question::of(
                Caller::ANONYMOUS.scope(),
                "{ standoffs(atLeast: 5) { status } }",
                None,
                None
            ),
            None
        );
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = AnswerCache::default();
        let s = stamp(1, 1);
        for i in 0..(MAX_ANSWERS + 10) {
            keep(
                &cache,
                s,
                &question(&format!("{{ q{i} }}")),
                b"x",
                Holds::WhileStoreUnmoved,
            );
        }
        let held = cache.held.lock().map(|h| h.answers.len()).unwrap_or(0);
        assert_eq!(held, MAX_ANSWERS);
        let big = vec![0u8; MAX_ANSWER_BYTES + 1];
        cache.put(
            s,
            question("{ big }"),
            Bytes::from(big),
            Holds::WhileStoreUnmoved,
        );
        assert_eq!(cache.get(s, &question("{ big }")), None);
    }
}
