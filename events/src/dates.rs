//! The dates the product accepts. A customer-success history lies within a human lifetime of
//! today: a date outside this range is a typo (a year 484 meeting, a 4257 renewal) and would
//! stretch every window, bucket and report built over it.

use chrono::NaiveDate;

/// The first date accepted, in commands and in queries.
pub const FIRST: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(day) => day,
    None => panic!("a valid date"),
};
/// The last date accepted, in commands and in queries.
pub const LAST: NaiveDate = match NaiveDate::from_ymd_opt(2099, 12, 31) {
    Some(day) => day,
    None => panic!("a valid date"),
};

/// [`FIRST`] ..= [`LAST`] as a regular expression on the start of a date or an instant, for the
/// JSON Schemas that describe the dates the product accepts.
pub const PATTERN: &str = "^(19[7-9][0-9]|20[0-9][0-9])-";

/// True when `day` is within [`FIRST`] ..= [`LAST`].
pub fn plausible(day: NaiveDate) -> bool {
    (FIRST..=LAST).contains(&day)
}

/// The error text for an implausible date.
pub fn implausible(field: &str) -> String {
    format!("{field} must be between {FIRST} and {LAST}")
}
