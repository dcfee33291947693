//! The rules that turn events into positions and standoffs. Each rule has a test in
//! `tests/projections/rules.rs`.
//!
//! **Positions** (per timeline, party and issue):
//! 1. An act sets a stance for each of its acting parties on each of its issues; a joint act (two
//!    parties among the actors, e.g. an agreement) sets both. Offers set `OFFER`, or
//!    `CONDITIONAL_OFFER` when they carry conditions; demands `DEMAND`; refusals `REFUSAL`;
//!    concessions `CONCESSION`; threats `THREAT`; agreements `AGREED`; statements `STATEMENT`.
//! 2. A measure imposed reads as a `THREAT` from its valid time until its effective date, then
//!    as a `MEASURE`. A measure eased reads as `WITHDRAWN` from its effective date and sets
//!    nothing before.
//! 3. Seminars, visits, talks and accusations set no stance (they count in relations).
//! 4. Only events that `OCCURRED` set a stance: `PLANNED`, `HYPOTHETICAL` and `DENIED` do not.
//! 5. The newer event by valid time supersedes (the coarser span first at the same start, then
//!    the later position). An event stating the stance already held reaffirms it: the position
//!    keeps its first-stated time, takes the new last-reaffirmed time, and counts one more
//!    reaffirmation; the newest event's amounts and conditions are shown.
//! 6. A retraction removes the retracted event's effect as if it had never been recorded, for
//!    every question asked as known at or after the retraction.
//! 7. A correction replaces the corrected fields from its own position on; before it, the event
//!    reads as first recorded.
//!
//! **Standoffs** (per timeline and issue), the first that applies:
//! `AGREED` when every party with a stance has `AGREED`; `ESCALATING` when a party threatens or
//! has a measure in force; `DEADLOCKED` when a demand meets a refusal; `CONVERGING` when two or
//! more parties offer or concede; `OPEN` otherwise.
//!
//! **Relations** count acts that `OCCURRED` and have codes, between two parties in either
//! direction (one acts, the other is a target) or jointly (both act).

use crate::facts::{Fact, Stance, StanceRule};
use chancery_domain::Modality;

impl StanceRule {
    /// The stance this rule sets as of valid time `valid_at` (Unix seconds), whatever the
    /// modality (the sweep over a position list holds only occurred facts).
    pub fn stance_at(self, valid_at: i64) -> Option<Stance> {
        match self {
            StanceRule::None => None,
            StanceRule::Fixed(s) => Some(s),
            StanceRule::Impose { effective } => Some(if valid_at >= effective {
                Stance::Measure
            } else {
                Stance::Threat
            }),
            StanceRule::Ease { effective } => (valid_at >= effective).then_some(Stance::Withdrawn),
        }
    }
}

impl Fact {
    /// The stance this fact sets as of valid time `valid_at` (Unix seconds), if any.
    pub fn stance_at(&self, valid_at: i64) -> Option<Stance> {
        if self.modality != Modality::Occurred {
            return None;
        }
        self.rule.stance_at(valid_at)
    }

    /// The latest time at which this fact's stance may change (its effective date, if later).
    pub fn settles_at(&self) -> i64 {
        match self.rule {
            StanceRule::Impose { effective } | StanceRule::Ease { effective } => {
                effective.max(self.valid)
            }
            _ => self.valid,
        }
    }

    /// Whether the fact sets stances at all (is worth indexing under positions).
    pub fn sets_stances(&self) -> bool {
        self.modality == Modality::Occurred && self.rule != StanceRule::None
    }

    /// Whether the fact counts in relations.
    pub fn counts_in_relations(&self) -> bool {
        self.modality == Modality::Occurred && self.quad.is_some()
    }
}

/// Where an issue stands between the parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StandoffStatus {
    Open,
    Deadlocked,
    Escalating,
    Converging,
    Agreed,
}

impl StandoffStatus {
    pub fn name(self) -> &'static str {
        match self {
            StandoffStatus::Open => "OPEN",
            StandoffStatus::Deadlocked => "DEADLOCKED",
            StandoffStatus::Escalating => "ESCALATING",
            StandoffStatus::Converging => "CONVERGING",
            StandoffStatus::Agreed => "AGREED",
        }
    }
}

/// The status of an issue from each party's stance.
pub fn standoff_status(stances: &[Stance]) -> StandoffStatus {
    let any = |s: &[Stance]| stances.iter().any(|x| s.contains(x));
    if !stances.is_empty() && stances.iter().all(|s| *s == Stance::Agreed) {
        StandoffStatus::Agreed
    } else if any(&[Stance::Threat, Stance::Measure]) {
        StandoffStatus::Escalating
    } else if any(&[Stance::Demand]) && any(&[Stance::Refusal]) {
        StandoffStatus::Deadlocked
    } else if stances
        .iter()
        .filter(|s| {
            matches!(
                s,
                Stance::Offer | Stance::ConditionalOffer | Stance::Concession
            )
        })
        .count()
        >= 2
    {
        StandoffStatus::Converging
    } else {
        StandoffStatus::Open
    }
}
