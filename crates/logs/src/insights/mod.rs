//! The CloudWatch Logs Insights query language (`CWLI`, what StartQuery runs): a parser
//! with source positions ([`parse_query`]; errors carry the offsets AWS's
//! MalformedQueryException reports) and an evaluator that runs a query over events pushed
//! one at a time ([`Execution`]).
//!
//! Pure: no I/O and no clock. `crate::queries` feeds it events read from the event store
//! and keeps the results.
//!
//! Served: `fields` (with `as` and expressions), `display`, `filter` (comparisons,
//! arithmetic, `and`/`or`/`not`, `like` with a `/regex/` or a substring, `=~`, `in [..]`),
//! `parse` (a glob with `*` and `as` names, or a regex with named groups), `stats` with
//! `count(*)`, `count(f)`, `count_distinct`, `sum`, `avg`, `min`, `max`, `pct(f, n)`
//! `by` expressions including `bin(period)`, `sort … asc|desc`, `limit`, `dedup`; the
//! functions `ispresent`, `isempty`, `isblank`, `strlen`, `tolower`, `toupper`, `trim`,
//! `concat`, `abs`, `ceil`, `floor`, `coalesce`; the fields `@timestamp`, `@message`,
//! `@logStream`, `@log`, `@ingestionTime`, and the fields of JSON messages (nested keys
//! joined with `.`). Anything else is a compile error naming its position.

mod ast;
mod eval;
mod parse;
#[cfg(test)]
mod tests;

pub use ast::Query;
pub use eval::{message_fields, render_time, EventRef, Execution, Flow, ResultRow};
pub use parse::{parse_query, QueryError, MAX_DEPTH, MAX_LIMIT, MAX_QUERY_CHARS};
