//! What a GraphQL request must meet before anything parses or runs it. The GraphQL parser recurses
//! once per nested list or object value, so a small document of deeply nested brackets would
//! overflow the stack: its nesting is measured here by a flat scan first. Sizes are checked before
//! the body is read whole, and every request runs under a time budget.

use std::time::Duration;

/// Largest `/graphql` body read (query, variables and operation name together).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest query document accepted. The standard introspection query is about 2 KB.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Deepest nesting of `{`, `[` and `(` accepted in a document: selections, list and object values,
/// arguments. Far above any real query (introspection nests 13), far below what overflows a stack.
pub const MAX_NESTING: usize = 64;
/// Time one request may run before it is cancelled and answered `TIMEOUT`.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(15);

/// Why a document was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge { bytes: usize },
    TooDeep { depth: usize },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "QUERY_TOO_LARGE",
            Refusal::TooDeep { .. } => "QUERY_TOO_DEEP",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::TooLarge { bytes } => {
                format!("the query is {bytes} bytes; at most {MAX_QUERY_BYTES} are accepted")
            }
            Refusal::TooDeep { depth } => {
                format!("the query nests {depth} levels deep; at most {MAX_NESTING} are accepted")
            }
        }
    }
}

/// Checks a query document's size and nesting without parsing it.
pub fn check_document(document: &str) -> Result<(), Refusal> {
    if document.len() > MAX_QUERY_BYTES {
        return Err(Refusal::TooLarge { bytes: document.len() });
    }
    let depth = nesting_depth(document);
    if depth > MAX_NESTING {
        return Err(Refusal::TooDeep { depth });
    }
    Ok(())
}

/// The deepest nesting of brackets in a GraphQL document, outside strings and comments.
/// Unbalanced closers are ignored: the parser reports those properly.
pub fn nesting_depth(document: &str) -> usize {
    let bytes = document.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while at < bytes.len() {
        match bytes[at] {
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                at += 3;
                // A block string ends at the first `"""` not escaped as `\"""`.
                while at < bytes.len() && !bytes[at..].starts_with(b"\"\"\"") {
                    at += if bytes[at..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                at += 2;
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' && bytes[at] != b'\n' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_selections_values_and_arguments() {
        assert_eq!(nesting_depth("{ a }"), 1);
        assert_eq!(nesting_depth("{ a(x: [[1]]) { b } }"), 4);
        assert_eq!(nesting_depth("query($v: [[Int]] = [[[1]]]) { a }"), 4);
        assert_eq!(nesting_depth("{ a @skip(if: {x: {y: [1]}}) }"), 5);
    }

    #[test]
    fn ignores_brackets_in_strings_and_comments() {
        assert_eq!(nesting_depth(r#"{ a(s: "[[[[{{{{") }"#), 2);
        assert_eq!(nesting_depth("{ a(s: \"\\\"[[[\") }"), 2);
        assert_eq!(nesting_depth("{ a(s: \"\"\" [[[ \\\"\"\" {{{ \"\"\") }"), 2);
        assert_eq!(nesting_depth("# {{{{{{\n{ a }"), 1);
    }

    #[test]
    fn refuses_what_would_overflow_the_parser() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(1500), "]".repeat(1500));
        assert_eq!(check_document(&deep), Err(Refusal::TooDeep { depth: 1502 }));
        let unclosed = format!("{{ a(x: {}", "{x: ".repeat(1500));
        assert_eq!(check_document(&unclosed), Err(Refusal::TooDeep { depth: 1502 }));
        assert!(matches!(
            check_document(&"a".repeat(MAX_QUERY_BYTES + 1)),
            Err(Refusal::TooLarge { .. })
        ));
        // The introspection query GraphiQL and codegen tools send (graphql-js `getIntrospectionQuery`).
        assert_eq!(
            check_document(include_str!("../../tests/fixtures/introspection.graphql")),
            Ok(())
        );
    }
}
