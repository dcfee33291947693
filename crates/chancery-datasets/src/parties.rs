//! The parties datasets name: the committed table of country and region codes (ISO 3166 alpha-3
//! and CAMEO's codes, `data/countries.tsv`) with their names and the other names datasets use
//! for them (ICEWS writes country names, not codes).

use std::collections::HashMap;
use std::sync::OnceLock;

use chancery_domain::payload::PartyKind;

/// `code<TAB>name<TAB>kind<TAB>aliases` (aliases separated by `|`), a header line first.
const TABLE: &str = include_str!("../data/countries.tsv");

/// A party the table knows.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownParty {
    pub code: &'static str,
    pub name: &'static str,
    pub kind: PartyKind,
}

struct Table {
    by_code: HashMap<&'static str, KnownParty>,
    /// Lower-cased names and aliases to codes.
    by_name: HashMap<String, &'static str>,
}

fn table() -> &'static Table {
    static TABLE_CELL: OnceLock<Table> = OnceLock::new();
    TABLE_CELL.get_or_init(|| {
        let mut by_code = HashMap::new();
        let mut by_name = HashMap::new();
        for line in TABLE.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let mut cols = line.split('\t');
            let (Some(code), Some(name)) = (cols.next(), cols.next()) else {
                continue;
            };
            let kind = match cols.next().unwrap_or("") {
                "ORGANIZATION" => PartyKind::Organization,
                "OTHER" => PartyKind::Other,
                _ => PartyKind::State,
            };
            let aliases = cols.next().unwrap_or("");
            by_code.insert(code, KnownParty { code, name, kind });
            for alias in std::iter::once(name)
                .chain(aliases.split('|'))
                .filter(|a| !a.is_empty())
            {
                by_name.entry(alias.to_lowercase()).or_insert(code);
            }
        }
        Table { by_code, by_name }
    })
}

/// The party of a code, if the table has it.
pub fn by_code(code: &str) -> Option<&'static KnownParty> {
    table().by_code.get(code)
}

/// The party a dataset names in words ("Russian Federation", "China"), if the table knows it.
pub fn by_name(name: &str) -> Option<&'static KnownParty> {
    let code = table().by_name.get(&name.trim().to_lowercase())?;
    by_code(code)
}

/// A name for a party the table lacks, from how a row writes it: `UNITED NATIONS` reads as
/// `United Nations`; a name already in mixed case is kept.
pub fn name_from_row(row_name: &str, code: &str) -> String {
    let name = row_name.trim();
    if name.is_empty() {
        return code.to_owned();
    }
    if name.chars().any(char::is_lowercase) {
        return name.to_owned();
    }
    name.split_whitespace()
        .map(|word| {
            let lower = word.to_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
