//! A cache of whole answers to read queries over HTTP, each valid for one state of the store.
//!
//! A query's answer is a function of its document, variables and operation name, the caller's
//! role and timelines, the log's head, the position the projections have applied, and the present time (an
//! `asOf` left out means "now", to the second, and a measure takes effect at its instant). The
//! cache keys answers by the first four and stamps them with the last three: an answer is
//! served only while the stamp it was computed under is still the current one, so it is
//! exactly the answer a fresh computation would give. Dashboards polling the same questions
//! then cost one computation per question per second, however many they are.
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

/// Answers kept for one stamp, at most.
const MAX_ANSWERS: usize = 256;
/// Bytes of answers kept for one stamp, at most, and the largest answer kept.
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
    /// The question a request asks, if its answer may be cached.
    pub fn of(
        scope: Scope,
        document: &str,
        operation: Option<&str>,
        variables: Option<&serde_json::Value>,
    ) -> Option<Question> {
        if document.contains("atLeast") {
            return None;
        }
        Some(Question {
            scope,
            document: document.to_owned(),
            operation: operation.map(str::to_owned),
            variables: variables.map(|v| v.to_string()).unwrap_or_default(),
        })
    }
}

#[derive(Default)]
struct Held {
    stamp: Option<Stamp>,
    answers: HashMap<Question, Bytes>,
    bytes: usize,
}

/// The answers of the current stamp.
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

    /// The answer computed under `stamp`, if there is one.
    pub fn get(&self, stamp: Stamp, question: &Question) -> Option<Bytes> {
        let held = self.held.lock().ok()?;
        if held.stamp != Some(stamp) {
            return None;
        }
        held.answers.get(question).cloned()
    }

    /// Keeps an answer computed wholly under `stamp`; answers of older stamps go.
    pub fn put(&self, stamp: Stamp, question: Question, answer: Bytes) {
        if answer.len() > MAX_ANSWER_BYTES {
            return;
        }
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        if held.stamp != Some(stamp) {
            *held = Held {
                stamp: Some(stamp),
                ..Held::default()
            };
        }
        if held.answers.len() >= MAX_ANSWERS || held.bytes + answer.len() > MAX_BYTES {
            return;
        }
        held.bytes += answer.len();
        held.answers.insert(question, answer);
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

    #[test]
    fn an_answer_serves_only_its_own_stamp_and_question() {
        let cache = AnswerCache::default();
        let q = question("{ head { position } }");
        cache.put(stamp(7, 100), q.clone(), Bytes::from_static(b"seven"));
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
        cache.put(stamp(8, 100), other.clone(), Bytes::from_static(b"parties"));
        assert_eq!(cache.get(stamp(8, 100), &q), None);
        assert_eq!(
            cache.get(stamp(8, 100), &other).as_deref(),
            Some(&b"parties"[..])
        );
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
        cache.put(s, q.clone(), Bytes::from_static(b"answer"));
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
            cache.put(
                s,
                question(&format!("{{ q{i} }}")),
                Bytes::from_static(b"x"),
            );
        }
        let held = cache.held.lock().map(|h| h.answers.len()).unwrap_or(0);
        assert_eq!(held, MAX_ANSWERS);
        let big = vec![0u8; MAX_ANSWER_BYTES + 1];
        cache.put(s, question("{ big }"), Bytes::from(big));
        assert_eq!(cache.get(s, &question("{ big }")), None);
    }
}
