//! The OpenAPI document of the REST API, generated from the routers themselves (each route is
//! served and described by one call, `routes::Documented`, its body's schema read from its
//! handler's body extractor) into `schemas/openapi.json`, with a drift test. The end-to-end tests
//! walk the same descriptions, so every documented endpoint is exercised.

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::routes::Described;
use crate::domain::permissions::Operation;

/// A request body: its schema's name and how to generate the schema.
pub type Body = (&'static str, fn(&mut SchemaGenerator) -> schemars::Schema);

/// One endpoint: method, path (with `{id}` for the stream and `{item}` for an item in it), the
/// operation it performs, its body and what it answers.
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub operation: Operation,
    pub body: Option<Body>,
    pub status: u16,
    /// The field of the answer naming what was created.
    pub created: Option<&'static str>,
}

impl Endpoint {
    /// Roles that may call the endpoint at all: a partner may log notes through the activity
    /// endpoints (the command itself then checks the kind).
    pub fn roles(&self) -> Vec<events::metadata::Role> {
        let mut roles = self.operation.allowed().to_vec();
        if self.operation == Operation::LogActivity {
            roles.extend(
                Operation::LogNote
                    .allowed()
                    .iter()
                    .filter(|role| !roles.contains(role))
                    .collect::<Vec<_>>(),
            );
        }
        roles
    }
}

/// The JSON schema of a request body of type `T`.
pub fn json_schema<T: JsonSchema>() -> Body {
    (
        std::any::type_name::<T>().rsplit("::").next().unwrap_or("Body"),
        |generator| generator.subschema_for::<T>(),
    )
}

/// A command endpoint; its body is filled in from the handler that serves it.
pub const fn endpoint(method: &'static str, path: &'static str, operation: Operation, status: u16) -> Endpoint {
    Endpoint {
        method,
        path,
        operation,
        body: None,
        status,
        created: None,
    }
}

impl Endpoint {
    /// The endpoint answers the id of what it created under `field`.
    pub const fn creating(mut self, field: &'static str) -> Endpoint {
        self.created = Some(field);
        self
    }
}

/// Every command endpoint the service serves.
pub fn endpoints() -> Vec<Endpoint> {
    super::described()
        .into_iter()
        .filter_map(|described| match described {
            Described::Command(endpoint) => Some(endpoint),
            Described::Other(_) => None,
        })
        .collect()
}

/// An endpoint beyond the commands (settings, imports, webhooks, Slack, operations), described
/// by hand beside its route; `served_routes_are_documented` fails when a route is served that
/// neither table names.
pub struct Other {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it; empty: no bearer token (operations, Slack's signed requests).
    pub roles: &'static [&'static str],
    /// The request's media type and, for JSON, its schema.
    pub request: Option<(&'static str, Option<Body>)>,
    pub status: u16,
    /// The answer's media type.
    pub answers: &'static str,
}

pub const MANAGING: &[&str] = &["admin", "manager", "csm"];
pub const ADMINS: &[&str] = &["admin"];
pub const EVERYONE: &[&str] = &["admin", "manager", "csm", "partner", "readonly", "auditor"];
/// Everyone who has notification preferences: partners are notified of nothing.
pub const NOTIFIED: &[&str] = &["admin", "manager", "csm", "readonly", "auditor"];
pub const JSON: &str = "application/json";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

impl Other {
    /// An endpoint answering JSON, taking no body unless its handler reads one.
    pub const fn new(
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        roles: &'static [&'static str],
        status: u16,
    ) -> Other {
        Other {
            method,
            path,
            summary,
            roles,
            request: None,
            status,
            answers: JSON,
        }
    }

    /// The endpoint reads a body of this media type itself (a file, a form).
    pub const fn taking(mut self, media: &'static str) -> Other {
        self.request = Some((media, None));
        self
    }

    /// The endpoint reads a body of this media type itself, shaped as `T` describes (a form).
    pub fn taking_shaped<T: JsonSchema>(mut self, media: &'static str) -> Other {
        self.request = Some((media, Some(json_schema::<T>())));
        self
    }

    /// The endpoint answers this media type.
    pub const fn answering(mut self, media: &'static str) -> Other {
        self.answers = media;
        self
    }
}

/// The operational routes every service serves (`events::service::ops`).
pub fn operations() -> Vec<Described> {
    events::service::ops::ROUTES
        .iter()
        .map(|&(path, summary, answers)| {
            Described::Other(Other::new("GET", path, summary, &[], 200).answering(answers))
        })
        .collect()
}

/// The answers every route may give besides its own.
fn common_responses(responses: &mut Map<String, Value>) {
    for (status, description) in [
        ("405", "the route does not take that method"),
        ("408", "the request was not received in time"),
        (
            "429",
            "too many requests for this token; `Retry-After` says when to retry",
        ),
    ] {
        responses.insert(status.into(), error_response(description));
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// Text no JSON Schema of a body may leave unsaid: a date or an instant is accepted within
/// `events::dates::FIRST ..= LAST` (a pattern beside its format), and no text or key holds U+0000
/// (PostgreSQL cannot store it; every body is checked for it before anything else).
fn stated_text_rules(schema: &mut schemars::Schema) {
    const NO_NUL: &str = "^[^\\u0000]*$";
    let format = schema.get("format").and_then(Value::as_str).map(str::to_owned);
    if matches!(format.as_deref(), Some("date" | "date-time")) {
        schema.insert("pattern".into(), json!(events::dates::PATTERN));
        return;
    }
    let is = |kind: &str, schema: &schemars::Schema| match schema.get("type") {
        Some(Value::String(name)) => name == kind,
        Some(Value::Array(names)) => names.iter().any(|name| name == kind),
        _ => false,
    };
    if is("string", schema) && format.is_none() && schema.get("enum").is_none() && schema.get("const").is_none() {
        match schema.get("pattern").cloned() {
            None => {
                schema.insert("pattern".into(), json!(NO_NUL));
            }
            Some(Value::String(pattern)) if refuses_nul(&pattern) => {}
            Some(pattern) => {
                schema.insert("pattern".into(), json!(NO_NUL));
                schema.insert("allOf".into(), json!([{ "pattern": pattern }]));
            }
        }
    }
    if is("object", schema) && schema.get("propertyNames").is_none() {
        schema.insert("propertyNames".into(), json!({ "pattern": NO_NUL }));
    }
}

/// Whether a pattern already refuses U+0000: it says so, or it is anchored and made only of
/// positive classes (a key, an id).
fn refuses_nul(pattern: &str) -> bool {
    pattern.contains("\\u0000")
        || pattern.starts_with('^')
            && pattern.ends_with('$')
            && !["[^", ".", "\\S", "\\W", "\\D"]
                .iter()
                .any(|wide| pattern.contains(wide))
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .with_transform(schemars::transform::RecursiveTransform(
            stated_text_rules as fn(&mut schemars::Schema),
        ))
        .into_generator();
    let mut paths = Map::new();
    let described = super::described();
    let commands = described.iter().filter_map(|described| match described {
        Described::Command(endpoint) => Some(endpoint),
        Described::Other(_) => None,
    });
    for endpoint in commands {
        let roles: Vec<&str> = endpoint.roles().iter().map(|role| role.as_str()).collect();
        let mut parameters = Vec::new();
        for (name, description) in [("id", "the stream's id"), ("item", "the item's id within the stream")] {
            if endpoint.path.contains(&format!("{{{name}}}")) {
                parameters.push(json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}}));
            }
        }
        parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": false,
            "description": "repeats of a request with the same key answer the first answer and append nothing",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200,
                       "pattern": "^[\\x21-\\x7E]([\\x20-\\x7E]*[\\x21-\\x7E])?$"}}));
        let mut operation = json!({
            "summary": endpoint.operation.describe(),
            "description": format!("Roles: {}.", roles.join(", ")),
            "x-roles": roles,
            "parameters": parameters,
            "security": [{"bearer": []}],
            "responses": {
                endpoint.status.to_string(): {"description": "accepted; the events are appended",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
                "400": error_response("the body is not JSON"),
                "401": error_response("no valid bearer token"),
                "403": error_response("the role or partner organisation may not do this"),
                "404": error_response("an id in the path names nothing"),
                "409": error_response("the stream kept changing, or the Idempotency-Key is in use"),
                "413": error_response("the body is over 2 MiB"),
                "415": error_response("the body is not application/json"),
                "422": error_response("a field breaks a rule, or the command contradicts the stream's state"),
                "503": error_response("the event store is unavailable"),
            }
        });
        if let Some((_, schema)) = endpoint.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema(&mut generator)}}});
        }
        common_responses(operation["responses"].as_object_mut().expect("responses"));
        paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object")
            .insert(endpoint.method.to_lowercase(), operation);
    }
    let others = described.iter().filter_map(|described| match described {
        Described::Other(other) => Some(other),
        Described::Command(_) => None,
    });
    for other in others {
        let mut parameters = Vec::new();
        for (name, description, schema) in [
            ("id", "the id it names", json!({"type": "string"})),
            (
                "user",
                "the user's id",
                json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*$"}),
            ),
        ] {
            if other.path.contains(&format!("{{{name}}}")) {
                parameters.push(
                    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema}),
                );
            }
        }
        let mut responses = Map::new();
        responses.insert(
            other.status.to_string(),
            json!({"description": "done", "content": {other.answers: {}}}),
        );
        if !other.roles.is_empty() {
            responses.insert("401".into(), error_response("no valid bearer token"));
            responses.insert("403".into(), error_response("the role may not do this"));
        }
        if other.path.contains('{') {
            responses.insert("404".into(), error_response("an id in the path names nothing"));
        }
        if let Some((media, _)) = other.request {
            responses.insert("413".into(), error_response("the body is too large"));
            responses.insert("415".into(), error_response(&format!("the body is not {media}")));
            responses.insert("422".into(), error_response("a field breaks a rule"));
        }
        common_responses(&mut responses);
        let mut operation = json!({"summary": other.summary, "parameters": parameters, "responses": responses});
        if other.roles.is_empty() {
            operation["security"] = json!([]);
        } else {
            operation["description"] = json!(format!("Roles: {}.", other.roles.join(", ")));
            operation["x-roles"] = json!(other.roles);
            operation["security"] = json!([{"bearer": []}]);
        }
        if let Some((media, body)) = &other.request {
            let schema = body.map_or(json!({}), |(_, schema)| schema(&mut generator).into());
            operation["requestBody"] = json!({"required": true, "content": {*media: {"schema": schema}}});
        }
        paths
            .entry(other.path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object")
            .insert(other.method.to_lowercase(), operation);
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Accepted".into(),
        json!({"type": "object", "required": ["stream_type", "stream_id", "sequence", "event_ids"], "properties": {
            "stream_type": {"type": "string"}, "stream_id": {"type": "string"},
            "sequence": {"type": "integer", "description": "the stream's sequence after the command"},
            "event_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}}},
            "additionalProperties": true, "description": "plus the id of what the command created, when it created something"}),
    );
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error", "message", "fields"], "properties": {
            "error": {"type": "string", "description": "machine-readable code"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}, "description": "offending field -> reason"}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "cstrack command API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Commands of the cstrack event store. Every accepted command appends events; a refused one appends nothing."},
        "servers": [{"url": "http://127.0.0.1:8081"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_openapi_matches_the_code() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/openapi.json");
        let mut text = serde_json::to_string_pretty(&super::document()).unwrap();
        text.push('\n');
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).expect("schemas/openapi.json is missing");
        assert_eq!(
            checked_in, text,
            "the OpenAPI document drifted: run UPDATE_SCHEMAS=1 cargo test -p command-service"
        );
    }

    /// The document is generated from the routers built with `routes::Documented`, which serve
    /// and describe each route in one call; a route declared any other way (`.route(`,
    /// `.route_service(`, `.nest(`) would be served undescribed, so none is. The operational
    /// routes are served from `ops::ROUTES`, which the document reads.
    #[test]
    fn every_route_is_served_through_a_described_router() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut sources = vec![root.join("src")];
        let mut checked = 0;
        while let Some(path) = sources.pop() {
            if path.is_dir() {
                sources.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
                continue;
            }
            if path.extension().is_none_or(|extension| extension != "rs") || path.ends_with("http/routes.rs")
                // This module: the generator and these tests, which name the declarations.
                || path.ends_with("http/openapi.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            checked += 1;
            for declaration in [".route(", ".route_service(", ".nest(", ".nest_service("] {
                assert!(
                    !text.contains(declaration),
                    "{} declares a route with `{declaration}`: serve it through routes::Documented so that it is documented",
                    path.display()
                );
            }
        }
        assert!(checked > 20, "the sources were read: {checked}");
        let ops = std::fs::read_to_string(root.join("../events/src/service/ops.rs")).unwrap();
        assert_eq!(
            ops.matches(".route(").count(),
            events::service::ops::ROUTES.len(),
            "ops.rs serves exactly its ROUTES"
        );
        let document = super::document();
        for (path, _, _) in events::service::ops::ROUTES {
            assert!(document["paths"][path]["get"].is_object(), "{path} is documented");
        }
    }

    /// Every described body is the body its handler reads: the schema names agree with the
    /// request types (a sample that would differ if the handler's extractor changed).
    #[test]
    fn bodies_are_read_from_the_handlers() {
        let document = super::document();
        let body = |method: &str, path: &str| {
            document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .map(str::to_owned)
        };
        assert_eq!(
            body("post", "/api/v1/csms").as_deref(),
            Some("#/components/schemas/RegisterCsm")
        );
        assert_eq!(
            body("put", "/api/v1/imports/{id}/mapping").as_deref(),
            Some("#/components/schemas/Remap")
        );
        assert_eq!(
            body("put", "/api/v1/notification-preferences/{user}").as_deref(),
            Some("#/components/schemas/UserPreferences")
        );
        assert_eq!(body("post", "/api/v1/imports/{id}/commit"), None);
        assert!(
            document["paths"]["/api/v1/imports"]["post"]["requestBody"]["content"]["multipart/form-data"].is_object()
        );
    }

    #[test]
    fn every_operation_has_an_endpoint() {
        let endpoints = super::endpoints();
        for operation in crate::domain::permissions::Operation::ALL {
            // Retractions are issued only by an import's undo; imports have their own routes.
            use crate::domain::permissions::Operation as O;
            let covered = endpoints.iter().any(|endpoint| endpoint.operation == operation)
                || matches!(
                    operation,
                    O::LogNote | O::RetractCustomer | O::RetractHealthScore | O::Import
                );
            assert!(covered, "{operation:?} has no endpoint");
        }
    }
}
