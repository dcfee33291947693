//! How a coded event dataset (GDELT 2.0, ICEWS, POLECAT) coded an event that Chancery imported
//! from it: the dataset's own event id and its own codes, kept beside the codes Chancery's table
//! gives the event, so that a researcher can compare the two and an export can give back what
//! came in.

use serde::{Deserialize, Serialize};

/// The datasets Chancery imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Dataset {
    /// The GDELT 2.0 event files (CAMEO-coded, from news).
    Gdelt,
    /// ICEWS coded event data (CAMEO-coded).
    Icews,
    /// POLECAT (PLOVER-coded).
    Polecat,
}

impl Dataset {
    pub const ALL: [Dataset; 3] = [Dataset::Gdelt, Dataset::Icews, Dataset::Polecat];

    /// Its name in text: `GDELT`, `ICEWS`, `POLECAT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Gdelt => "GDELT",
            Dataset::Icews => "ICEWS",
            Dataset::Polecat => "POLECAT",
        }
    }

    /// Its byte in the stored form.
    pub fn tag(self) -> u8 {
        match self {
            Dataset::Gdelt => 1,
            Dataset::Icews => 2,
            Dataset::Polecat => 3,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Self> {
        Dataset::ALL.into_iter().find(|d| d.tag() == tag)
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dataset's coding of one event, as the dataset wrote it. Only the fields the dataset has are
/// set: GDELT and ICEWS code with CAMEO and a Goldstein score (ICEWS calls it intensity), GDELT
/// adds the QuadClass and the articles' average tone, POLECAT codes with a PLOVER type and mode,
/// an intensity and a quad code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatasetCoding {
    pub dataset: Dataset,
    /// The dataset's own id of the event (GDELT `GLOBALEVENTID`, ICEWS `Event ID`, POLECAT's id).
    pub event_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cameo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plover_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plover_mode: Option<String>,
    /// 1 verbal cooperation, 2 material cooperation, 3 verbal conflict, 4 material conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quad_class: Option<u8>,
    /// The Goldstein score the dataset gives (-10 to 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goldstein: Option<f64>,
    /// POLECAT's intensity (-10 to 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity: Option<f64>,
    /// GDELT's average tone of the articles (-100 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone: Option<f64>,
}

impl DatasetCoding {
    /// A coding with the dataset's id and nothing else yet.
    pub fn new(dataset: Dataset, event_id: impl Into<String>) -> Self {
        DatasetCoding {
            dataset,
            event_id: event_id.into(),
            cameo: None,
            plover_type: None,
            plover_mode: None,
            quad_class: None,
            goldstein: None,
            intensity: None,
            tone: None,
        }
    }
}
