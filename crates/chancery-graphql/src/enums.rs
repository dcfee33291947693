//! GraphQL enums mirroring the domain's and the projections' (which carry no GraphQL derives).

macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident = $domain:path { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
        pub enum $name {
            $($variant),+
        }

        impl From<$domain> for $name {
            fn from(v: $domain) -> Self {
                match v {
                    $(<$domain>::$variant => $name::$variant),+
                }
            }
        }

        impl From<$name> for $domain {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => <$domain>::$variant),+
                }
            }
        }
    };
}

mirror_enum!(
    /// What kind of event.
    Kind = chancery_domain::Kind {
        Offer, Demand, Threat, Refusal, Concession, Agreement, Measure, Statement, Accusation, Seminar, Visit, Talks,
        Retraction, Correction, PartyRegistered, ActorRegistered, IssueRegistered, TimelineRegistered,
    }
);
mirror_enum!(
    /// Whether the event happened, is planned, is only envisaged, or is denied.
    Modality = chancery_domain::Modality { Occurred, Planned, Hypothetical, Denied }
);
mirror_enum!(
    /// How precisely a valid time is known.
    Precision = chancery_domain::Precision { Year, Month, Day, Instant }
);
mirror_enum!(
    /// How a source attributes what it reports.
    Attribution = chancery_domain::Attribution { Named, Anonymous, Official }
);
mirror_enum!(
    DemandType = chancery_domain::payload::DemandType {
        PolicyChange,
        EconomicCooperation,
        EaseMeasures,
        Meeting
    }
);
mirror_enum!(
    /// The instrument of a threat or a measure.
    Instrument = chancery_domain::payload::Instrument { Tariff, Sanction, ExportControl, HaltNegotiations, Other }
);
mirror_enum!(
    RefusalOf = chancery_domain::payload::RefusalOf {
        ToDiscuss,
        ToAccept
    }
);
mirror_enum!(
    ConcessionType = chancery_domain::payload::ConcessionType {
        AccedeToDemand,
        EaseMeasure
    }
);
mirror_enum!(
    AgreementForm = chancery_domain::payload::AgreementForm {
        JointStatement,
        SignedDeal
    }
);
mirror_enum!(MeasureAction = chancery_domain::payload::MeasureAction { Impose, Ease });
mirror_enum!(
    Tone = chancery_domain::payload::Tone {
        Neutral,
        Optimistic,
        Pessimistic
    }
);
mirror_enum!(
    AccusationForm = chancery_domain::payload::AccusationForm {
        Criticize,
        Accuse,
        Complain,
        LegalAction
    }
);
mirror_enum!(
    TalksFormat = chancery_domain::payload::TalksFormat {
        Negotiation,
        Consultation,
        Phone,
        ThirdLocation
    }
);
mirror_enum!(
    PartyKind = chancery_domain::payload::PartyKind {
        State,
        Organization,
        Other
    }
);
mirror_enum!(
    /// Where a party stands on an issue.
    Stance = chancery_projections::Stance {
        Demand, Offer, ConditionalOffer, Concession, Refusal, Threat, Measure, Agreed, Statement, Withdrawn,
    }
);
mirror_enum!(
    /// Where an issue stands between the parties.
    StandoffStatus = chancery_projections::StandoffStatus { Open, Deadlocked, Escalating, Converging, Agreed }
);
mirror_enum!(
    /// GDELT's grouping of CAMEO codes.
    QuadClass = chancery_domain::codes::QuadClass { VerbalCooperation, MaterialCooperation, VerbalConflict, MaterialConflict }
);
mirror_enum!(
    /// A coded event dataset Chancery imports.
    Dataset = chancery_domain::Dataset { Gdelt, Icews, Polecat }
);
mirror_enum!(
    /// The width of a relations bucket (weeks start on Monday).
    Bucket = chancery_projections::Bucket { Day, Week, Month }
);

/// The order of an event list.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum EventOrder {
    /// By position in the log (transaction time).
    #[default]
    Log,
    /// By valid time, precision respected (a month before the days in it).
    ValidTime,
}
