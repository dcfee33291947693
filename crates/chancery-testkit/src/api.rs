//! What Chancery's GraphQL API promises every client, as tests check it: the codes its errors
//! carry in `extensions.code`.

/// Every code an error of the API carries. `INTERNAL` is last: it is a bug wherever a test meets
/// it, so tests that fuzz the API accept only [`CLIENT_ERROR_CODES`].
pub const ERROR_CODES: [&str; 8] = [
    "VALIDATION",
    "CONFLICT",
    "NOT_FOUND",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "LIMIT",
    "UNAVAILABLE",
    "INTERNAL",
];

/// The codes of errors that are no bug of the server: every code but `INTERNAL` (the client's
/// to mend, or, for `UNAVAILABLE`, to retry later).
pub const CLIENT_ERROR_CODES: &[&str] = match ERROR_CODES.split_last() {
    Some((_, client)) => client,
    None => &[],
};
