//! The GraphQL request path before execution: any document that passes the query API's size and
//! nesting check must parse (or fail to parse) without overflowing the stack, and the check
//! itself must never panic. The check is the query API's own module, compiled in as it is.
#![no_main]

#[path = "../../../query-api/src/limits.rs"]
#[allow(dead_code)]
mod limits;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The body as the query API reads it: JSON first, then the document inside.
    if let Ok(serde_json::Value::Object(body)) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(serde_json::Value::String(query)) = body.get("query") {
            if limits::check_document(query).is_ok() {
                let _ = async_graphql_parser::parse_query(query);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if limits::check_document(text).is_ok() {
            let _ = async_graphql_parser::parse_query(text);
        }
    }
});
