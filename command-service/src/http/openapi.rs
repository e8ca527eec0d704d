//! The OpenAPI document of the REST API, generated from the endpoint table below and the request
//! types' JSON Schemas into `schemas/openapi.json` (with a drift test). The end-to-end tests walk
//! the same table, so every documented endpoint is exercised.

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::domain::alert::AcknowledgeAlert;
use crate::domain::csm::{ChangeCapacity, RegisterCsm};
use crate::domain::customer::*;
use crate::domain::fields::DefineField;
use crate::domain::partner::{DeactivateUser, InviteUser, RegisterPartner};
use crate::domain::permissions::Operation;
use crate::domain::rules::{ChangeCoverageStandards, ChangeEngagementWeights, ChangeWorkloadHours};

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

fn body<T: JsonSchema>() -> Option<Body> {
    Some((
        std::any::type_name::<T>().rsplit("::").next().unwrap_or("Body"),
        |generator| generator.subschema_for::<T>(),
    ))
}

const fn endpoint(method: &'static str, path: &'static str, operation: Operation, status: u16) -> Endpoint {
    Endpoint {
        method,
        path,
        operation,
        body: None,
        status,
        created: None,
    }
}

/// Every endpoint of the API.
pub fn endpoints() -> Vec<Endpoint> {
    use Operation as O;
    let with = |mut endpoint: Endpoint, body, created| {
        endpoint.body = body;
        endpoint.created = created;
        endpoint
    };
    let c = "/api/v1/customers/{id}";
    let leak = |suffix: &str| -> &'static str { Box::leak(format!("{c}{suffix}").into_boxed_str()) };
    vec![
        with(
            endpoint("POST", "/api/v1/csms", O::RegisterCsm, 201),
            body::<RegisterCsm>(),
            Some("csm_id"),
        ),
        with(
            endpoint("PUT", "/api/v1/csms/{id}/capacity", O::ChangeCsmCapacity, 200),
            body::<ChangeCapacity>(),
            None,
        ),
        with(
            endpoint("POST", "/api/v1/partners", O::RegisterPartner, 201),
            body::<RegisterPartner>(),
            Some("partner_id"),
        ),
        with(
            endpoint("POST", "/api/v1/partners/{id}/users", O::InvitePartnerUser, 201),
            body::<InviteUser>(),
            Some("user_id"),
        ),
        endpoint(
            "POST",
            "/api/v1/partners/{id}/users/{item}/activate",
            O::ActivatePartnerUser,
            200,
        ),
        with(
            endpoint(
                "POST",
                "/api/v1/partners/{id}/users/{item}/deactivate",
                O::DeactivatePartnerUser,
                200,
            ),
            body::<DeactivateUser>(),
            None,
        ),
        with(
            endpoint("PUT", "/api/v1/rules/coverage-standards", O::ChangeRules, 200),
            body::<ChangeCoverageStandards>(),
            None,
        ),
        with(
            endpoint("PUT", "/api/v1/rules/engagement-weights", O::ChangeRules, 200),
            body::<ChangeEngagementWeights>(),
            None,
        ),
        with(
            endpoint("PUT", "/api/v1/rules/workload-hours", O::ChangeRules, 200),
            body::<ChangeWorkloadHours>(),
            None,
        ),
        with(
            endpoint("POST", "/api/v1/alerts/{id}/acknowledge", O::AcknowledgeAlert, 200),
            body::<AcknowledgeAlert>(),
            None,
        ),
        with(
            endpoint("POST", "/api/v1/customers", O::OnboardCustomer, 201),
            body::<OnboardCustomer>(),
            Some("customer_id"),
        ),
        with(
            endpoint("PATCH", c, O::UpdateProfile, 200),
            body::<UpdateProfile>(),
            None,
        ),
        with(
            endpoint("PUT", leak("/csm"), O::AssignCsm, 200),
            body::<AssignCsm>(),
            None,
        ),
        with(
            endpoint("POST", leak("/partners"), O::AssignPartner, 201),
            body::<AssignPartner>(),
            None,
        ),
        with(
            endpoint("DELETE", leak("/partners/{item}"), O::UnassignPartner, 200),
            body::<UnassignPartner>(),
            None,
        ),
        with(
            endpoint("POST", leak("/stakeholders"), O::AddStakeholder, 201),
            body::<AddStakeholder>(),
            Some("stakeholder_id"),
        ),
        with(
            endpoint("PATCH", leak("/stakeholders/{item}"), O::UpdateStakeholder, 200),
            body::<UpdateStakeholder>(),
            None,
        ),
        with(
            endpoint("DELETE", leak("/stakeholders/{item}"), O::RemoveStakeholder, 200),
            body::<RemoveStakeholder>(),
            None,
        ),
        with(
            endpoint("POST", leak("/activities"), O::LogActivity, 201),
            body::<LogActivity>(),
            Some("activity_id"),
        ),
        with(
            endpoint("POST", leak("/activities/batch"), O::LogActivity, 201),
            body::<LogActivities>(),
            Some("activity_ids"),
        ),
        with(
            endpoint("PATCH", leak("/activities/{item}"), O::CorrectActivity, 200),
            body::<CorrectActivity>(),
            None,
        ),
        with(
            endpoint("DELETE", leak("/activities/{item}"), O::RetractActivity, 200),
            body::<RetractActivity>(),
            None,
        ),
        with(
            endpoint("POST", leak("/health-scores"), O::RecordHealthScore, 201),
            body::<RecordHealthScore>(),
            None,
        ),
        with(
            endpoint("POST", leak("/tasks"), O::CreateTask, 201),
            body::<CreateTask>(),
            Some("task_id"),
        ),
        with(
            endpoint("PATCH", leak("/tasks/{item}"), O::UpdateTask, 200),
            body::<UpdateTask>(),
            None,
        ),
        with(
            endpoint("PUT", leak("/tasks/{item}/assignee"), O::ReassignTask, 200),
            body::<ReassignTask>(),
            None,
        ),
        with(
            endpoint("PUT", leak("/tasks/{item}/status"), O::ChangeTaskStatus, 200),
            body::<ChangeTaskStatus>(),
            None,
        ),
        with(
            endpoint("POST", leak("/tasks/{item}/complete"), O::CompleteTask, 200),
            body::<CompleteTask>(),
            None,
        ),
        with(
            endpoint("POST", leak("/tasks/{item}/cancel"), O::CancelTask, 200),
            body::<CancelTask>(),
            None,
        ),
        with(
            endpoint("POST", leak("/partner-reports"), O::DraftPartnerReport, 201),
            body::<DraftPartnerReport>(),
            Some("report_id"),
        ),
        with(
            endpoint("PATCH", leak("/partner-reports/{item}"), O::UpdatePartnerReport, 200),
            body::<UpdatePartnerReport>(),
            None,
        ),
        endpoint(
            "POST",
            leak("/partner-reports/{item}/submit"),
            O::SubmitPartnerReport,
            200,
        ),
        with(
            endpoint("POST", leak("/milestones"), O::RecordMilestone, 201),
            body::<RecordMilestone>(),
            Some("milestone_id"),
        ),
        with(
            endpoint("POST", leak("/issues"), O::LogIssue, 201),
            body::<LogIssue>(),
            Some("issue_id"),
        ),
        with(
            endpoint("POST", leak("/issues/{item}/resolve"), O::ResolveIssue, 200),
            body::<Resolve>(),
            None,
        ),
        with(
            endpoint("POST", leak("/escalations"), O::RaiseEscalation, 201),
            body::<RaiseEscalation>(),
            Some("escalation_id"),
        ),
        with(
            endpoint("POST", leak("/escalations/{item}/resolve"), O::ResolveEscalation, 200),
            body::<Resolve>(),
            None,
        ),
        with(
            endpoint("PUT", leak("/adoption-stage"), O::ChangeAdoptionStage, 200),
            body::<ChangeAdoptionStage>(),
            None,
        ),
        with(
            endpoint("PUT", leak("/use-cases"), O::ChangeUseCaseStatus, 200),
            body::<ChangeUseCaseStatus>(),
            None,
        ),
        with(
            endpoint("POST", leak("/nps"), O::RecordNps, 201),
            body::<RecordNps>(),
            None,
        ),
        with(
            endpoint("POST", leak("/renewal"), O::RecordRenewal, 200),
            body::<RecordRenewal>(),
            None,
        ),
        with(
            endpoint("POST", leak("/churn"), O::RecordChurn, 200),
            body::<RecordChurn>(),
            None,
        ),
        with(
            endpoint("PUT", leak("/custom-fields"), O::SetCustomFields, 200),
            body::<SetCustomFields>(),
            None,
        ),
        with(
            endpoint("POST", "/api/v1/custom-fields", O::DefineCustomFields, 201),
            body::<DefineField>(),
            Some("key"),
        ),
        with(
            endpoint("PUT", "/api/v1/custom-fields/{id}", O::DefineCustomFields, 200),
            body::<DefineField>(),
            None,
        ),
        endpoint("POST", "/api/v1/custom-fields/{id}/retire", O::DefineCustomFields, 200),
        with(
            endpoint("POST", "/api/v1/custom-fields/{id}/bulk", O::SetCustomFields, 200),
            body::<super::fields::BulkSet>(),
            None,
        ),
    ]
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

const MANAGING: &[&str] = &["admin", "manager", "csm"];
const ADMINS: &[&str] = &["admin"];
const EVERYONE: &[&str] = &["admin", "manager", "csm", "partner", "readonly", "auditor"];
const JSON: &str = "application/json";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Every endpoint that is not a command of an aggregate.
pub fn other_endpoints() -> Vec<Other> {
    let other = |method, path, summary, roles, request, status, answers| Other {
        method,
        path,
        summary,
        roles,
        request,
        status,
        answers,
    };
    let json_body = |body| Some((JSON, body));
    vec![
        other(
            "POST",
            "/api/v1/imports",
            "upload a file to import (multipart: kind, file, optional mapping as JSON); answers the preview",
            MANAGING,
            Some(("multipart/form-data", None)),
            201,
            JSON,
        ),
        other(
            "GET",
            "/api/v1/imports",
            "the import history (newest 200; a CSM sees its own)",
            MANAGING,
            None,
            200,
            JSON,
        ),
        other(
            "GET",
            "/api/v1/imports/{id}",
            "an import's preview: each row's action, changes and errors",
            MANAGING,
            None,
            200,
            JSON,
        ),
        other(
            "PUT",
            "/api/v1/imports/{id}/mapping",
            "set an import's mapping; answers the new preview",
            MANAGING,
            json_body(body::<crate::import::Remap>()),
            200,
            JSON,
        ),
        other(
            "GET",
            "/api/v1/imports/{id}/errors.xlsx",
            "the rows with errors as a workbook to fix and upload again",
            MANAGING,
            None,
            200,
            XLSX,
        ),
        other(
            "POST",
            "/api/v1/imports/{id}/commit",
            "append every row's events in one transaction, or none",
            MANAGING,
            None,
            200,
            JSON,
        ),
        other(
            "POST",
            "/api/v1/imports/{id}/undo",
            "compensate what the import did, keeping later changes",
            MANAGING,
            None,
            200,
            JSON,
        ),
        other(
            "PUT",
            "/api/v1/deck-template",
            "upload the deck template (.pptx)",
            ADMINS,
            Some((
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                None,
            )),
            200,
            JSON,
        ),
        other(
            "DELETE",
            "/api/v1/deck-template",
            "go back to the built-in deck template",
            ADMINS,
            None,
            200,
            JSON,
        ),
        other(
            "GET",
            "/api/v1/notification-preferences",
            "the caller's notification preferences",
            &["admin", "manager", "csm", "readonly", "auditor"],
            None,
            200,
            JSON,
        ),
        other(
            "PUT",
            "/api/v1/notification-preferences",
            "set the caller's notification preferences",
            &["admin", "manager", "csm", "readonly", "auditor"],
            json_body(body::<super::notifications::Preferences>()),
            200,
            JSON,
        ),
        other(
            "PUT",
            "/api/v1/notification-preferences/{user}",
            "set another user's notification preferences",
            ADMINS,
            json_body(body::<super::notifications::UserPreferences>()),
            200,
            JSON,
        ),
        other(
            "POST",
            "/api/v1/webhooks",
            "subscribe a URL to alerts and events (public addresses only, unless allowed); the secret is shown once",
            ADMINS,
            json_body(body::<super::notifications::AddWebhook>()),
            201,
            JSON,
        ),
        other("GET", "/api/v1/webhooks", "the live webhooks", ADMINS, None, 200, JSON),
        other(
            "DELETE",
            "/api/v1/webhooks/{id}",
            "stop a webhook",
            ADMINS,
            None,
            200,
            JSON,
        ),
        other(
            "GET",
            "/api/v1/webhooks/{id}/deliveries",
            "a webhook's delivery log, every attempt",
            ADMINS,
            None,
            200,
            JSON,
        ),
        other(
            "PUT",
            "/api/v1/customers/{id}/work-items",
            "link a customer to the delivery tool's work items",
            MANAGING,
            json_body(body::<super::links::WorkItemLinks>()),
            200,
            JSON,
        ),
        other(
            "GET",
            "/api/v1/customers/{id}/work-items",
            "the work items linked to a customer",
            EVERYONE,
            None,
            200,
            JSON,
        ),
        other(
            "POST",
            "/slack/interactions",
            "Slack's interaction payloads (signed by Slack; the Acknowledge button)",
            &[],
            Some(("application/x-www-form-urlencoded", None)),
            200,
            JSON,
        ),
        other(
            "POST",
            "/slack/commands",
            "Slack's slash command /cstrack (signed by Slack)",
            &[],
            Some(("application/x-www-form-urlencoded", None)),
            200,
            JSON,
        ),
        other("GET", "/healthz", "the process is up", &[], None, 200, JSON),
        other(
            "GET",
            "/readyz",
            "the database and broker answer (503 when not)",
            &[],
            None,
            200,
            JSON,
        ),
        other("GET", "/metrics", "Prometheus metrics", &[], None, 200, "text/plain"),
    ]
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

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for endpoint in endpoints() {
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
    for other in other_endpoints() {
        let mut parameters = Vec::new();
        for (name, description) in [("id", "the id it names"), ("user", "the user's id")] {
            if other.path.contains(&format!("{{{name}}}")) {
                parameters.push(json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}}));
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

    /// Every route the command service serves, read from where the routers declare them
    /// (`.route(path, get(..).put(..))`), is in the document: a route added without its
    /// description fails here.
    #[test]
    fn served_routes_are_documented() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let sources = [
            "src/http/mod.rs",
            "src/http/notifications.rs",
            "src/http/links.rs",
            "src/import/mod.rs",
            "../events/src/service/ops.rs",
        ];
        let document = super::document();
        let mut served = 0;
        for source in sources {
            let text = std::fs::read_to_string(root.join(source)).unwrap();
            for (method, path) in declared_routes(&text) {
                served += 1;
                let item = &document["paths"][&path];
                assert!(
                    item.get(method.to_lowercase()).is_some(),
                    "{method} {path} (in {source}) is served but not in schemas/openapi.json"
                );
            }
        }
        assert!(served > 60, "the routes were found: {served}");
    }

    /// (method, path) of each `.route(...)` in a router's source: literal paths and
    /// `format!` paths built on `customer` (`/api/v1/customers/{id}`).
    fn declared_routes(text: &str) -> Vec<(String, String)> {
        let mut routes = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's arguments: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(end, _)| end);
            let call = &rest[..end];
            let Some(open) = call.find('"') else { continue };
            let Some(close) = call[open + 1..].find('"') else {
                continue;
            };
            let path = call[open + 1..open + 1 + close]
                .replace("{customer}", "/api/v1/customers/{id}")
                .replace("{{", "{")
                .replace("}}", "}");
            if !path.starts_with('/') {
                continue;
            }
            let handlers = &call[open + 1 + close..];
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = [
                    format!(" {method}("),
                    format!(".{method}("),
                    format!("::{method}("),
                    format!("({method}("),
                ];
                if called.iter().any(|pattern| handlers.contains(pattern.as_str())) {
                    routes.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        routes
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
