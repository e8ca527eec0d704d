//! REST routes under `/api/v1`. Every request is authenticated; an accepted command answers with
//! the stream, its new sequence, the ids of the appended events and the id of what it created.

mod auth;
pub mod bulk;
pub mod bulk_accounts;
pub mod connectors;
pub mod error;
pub mod extract;
pub mod fields;
pub mod focus;
pub mod idempotency;
pub mod links;
pub mod notifications;
pub mod openapi;
pub mod playbooks;
pub mod reminders;
pub mod routes;
pub mod tasks;
pub mod templates;
pub mod views;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use events::metadata::Role;
use events::rules::RULES_STREAM_ID;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Authenticator;
use crate::domain::alert::{AcknowledgeAlert, Alert};
use crate::domain::csm::{ChangeCapacity, Csm, CsmCommand, RegisterCsm};
use crate::domain::customer::*;
use crate::domain::partner::{DeactivateUser, InviteUser, Partner, PartnerCommand, RegisterPartner};
use crate::domain::rules::{
    ChangeChurnRiskRules, ChangeCoverageStandards, ChangeEngagementWeights, ChangeReminderRules, ChangeWorkloadHours,
    Rules, RulesCommand,
};
use crate::store::{Appended, CommandHandler};
use error::ApiError;
use extract::{CommandContext, EmptyBody, JsonBody};
use openapi::endpoint;
use routes::{Described, Documented};

/// Largest accepted request body (a batch of 1,000 activities fits).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

pub struct Handlers {
    pub customers: CommandHandler<Customer>,
    pub csms: CommandHandler<Csm>,
    pub partners: CommandHandler<Partner>,
    pub rules: CommandHandler<Rules>,
    pub alerts: CommandHandler<Alert>,
    pub reminders: CommandHandler<crate::domain::reminder::Reminder>,
    pub task_templates: CommandHandler<crate::domain::templates::TaskTemplate>,
    pub recurrences: CommandHandler<crate::domain::templates::TaskRecurrence>,
    pub playbooks: CommandHandler<crate::domain::playbook::Playbook>,
    pub playbook_runs: CommandHandler<crate::domain::playbook::PlaybookRun>,
    pub fields: CommandHandler<crate::domain::fields::CustomFields>,
    pub pool: PgPool,
}

pub(crate) type AppState = Arc<Handlers>;
type Accepted = (StatusCode, Json<Value>);
type Answer = Result<Accepted, ApiError>;

pub fn router(handlers: Arc<Handlers>, authenticator: Arc<Authenticator>, pool: PgPool) -> Router {
    // Uploads are up to 20 MB of multipart, outside the JSON body limit and the Idempotency-Key
    // layer (an import is idempotent by its own status).
    let imports = crate::import::router(handlers.clone()).layer(axum::middleware::from_fn_with_state(
        authenticator.clone(),
        auth::authenticate,
    ));
    let (commands, _) = command_routes().finish();
    let commands = commands
        .route_layer(axum::middleware::from_fn_with_state(
            auth::Guard::new(pool.clone()),
            auth::guard,
        ))
        .fallback(|| async { ApiError::NotFound { entity: "route" } })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(pool, idempotency::idempotent))
        .layer(axum::middleware::from_fn_with_state(authenticator, auth::authenticate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(handlers);
    imports.merge(commands)
}

/// A path under a customer: `/api/v1/customers/{id}` and `$suffix`.
macro_rules! customer {
    ($suffix:literal) => {
        concat!("/api/v1/customers/{id}", $suffix)
    };
}

/// The commands of the aggregates: each served and described by one line.
pub fn command_routes() -> Documented<AppState> {
    use crate::domain::permissions::Operation as O;
    Documented::default()
        .command(
            endpoint("POST", "/api/v1/csms", O::RegisterCsm, 201).creating("csm_id"),
            register_csm,
        )
        .command(
            endpoint("PUT", "/api/v1/csms/{id}/capacity", O::ChangeCsmCapacity, 200),
            change_capacity,
        )
        .command(
            endpoint("POST", "/api/v1/partners", O::RegisterPartner, 201).creating("partner_id"),
            register_partner,
        )
        .command(
            endpoint("POST", "/api/v1/partners/{id}/users", O::InvitePartnerUser, 201).creating("user_id"),
            invite_partner_user,
        )
        .command(
            endpoint("POST", "/api/v1/partners/{id}/customers", O::AssignPartner, 200),
            assign_partner_customers,
        )
        .command(
            endpoint("POST", "/api/v1/csms/{id}/customers", O::AssignCsm, 200),
            assign_csm_customers,
        )
        .command(
            endpoint(
                "POST",
                "/api/v1/partners/{id}/users/{item}/activate",
                O::ActivatePartnerUser,
                200,
            ),
            activate_partner_user,
        )
        .command(
            endpoint(
                "POST",
                "/api/v1/partners/{id}/users/{item}/deactivate",
                O::DeactivatePartnerUser,
                200,
            ),
            deactivate_partner_user,
        )
        .command(
            endpoint("PUT", "/api/v1/rules/coverage-standards", O::ChangeRules, 200),
            change_coverage_standards,
        )
        .command(
            endpoint("PUT", "/api/v1/rules/engagement-weights", O::ChangeRules, 200),
            change_engagement_weights,
        )
        .command(
            endpoint("PUT", "/api/v1/rules/workload-hours", O::ChangeRules, 200),
            change_workload_hours,
        )
        .command(
            endpoint("PUT", "/api/v1/rules/churn-risk", O::ChangeRules, 200),
            change_churn_risk_rules,
        )
        .command(
            endpoint("PUT", "/api/v1/rules/reminders", O::ChangeRules, 200),
            change_reminder_rules,
        )
        .command(
            endpoint("POST", "/api/v1/alerts/{id}/acknowledge", O::AcknowledgeAlert, 200),
            acknowledge_alert,
        )
        .command(
            endpoint("POST", "/api/v1/reminders", O::ManageReminders, 201).creating("reminder_id"),
            reminders::schedule,
        )
        .command(
            endpoint("POST", "/api/v1/reminders/{id}/snooze", O::ManageReminders, 200),
            reminders::snooze,
        )
        .command(
            endpoint("POST", "/api/v1/reminders/{id}/complete", O::ManageReminders, 200),
            reminders::complete,
        )
        .command(
            endpoint("POST", "/api/v1/reminders/{id}/dismiss", O::ManageReminders, 200),
            reminders::dismiss,
        )
        .command(
            endpoint("POST", "/api/v1/reminders/{id}/cancel", O::ManageReminders, 200),
            reminders::cancel,
        )
        .command(
            endpoint("POST", "/api/v1/task-templates", O::ManageTaskTemplates, 201).creating("template_id"),
            templates::create,
        )
        .command(
            endpoint("PUT", "/api/v1/task-templates/{id}", O::ManageTaskTemplates, 200),
            templates::save,
        )
        .command(
            endpoint(
                "POST",
                "/api/v1/task-templates/{id}/retire",
                O::ManageTaskTemplates,
                200,
            ),
            templates::retire,
        )
        .command(
            endpoint("POST", customer!("/tasks/from-template"), O::CreateTask, 201).creating("task_id"),
            templates::from_template,
        )
        .command(
            endpoint("POST", customer!("/recurring-tasks"), O::ManageRecurringTasks, 201).creating("recurrence_id"),
            templates::start_recurrence,
        )
        .command(
            endpoint(
                "POST",
                "/api/v1/recurring-tasks/{id}/stop",
                O::ManageRecurringTasks,
                200,
            ),
            templates::stop_recurrence,
        )
        .command(
            endpoint("POST", "/api/v1/playbooks", O::ManagePlaybooks, 201).creating("playbook_id"),
            playbooks::create,
        )
        .command(
            endpoint("PUT", "/api/v1/playbooks/{id}", O::ManagePlaybooks, 200),
            playbooks::save,
        )
        .command(
            endpoint("POST", "/api/v1/playbooks/{id}/retire", O::ManagePlaybooks, 200),
            playbooks::retire,
        )
        .command(
            endpoint("POST", customer!("/playbook-runs"), O::RunPlaybooks, 201).creating("run_id"),
            playbooks::start,
        )
        .command(
            endpoint("POST", "/api/v1/playbook-runs/{id}/move", O::RunPlaybooks, 200),
            playbooks::move_step,
        )
        .command(
            endpoint("POST", "/api/v1/playbook-runs/{id}/cancel", O::RunPlaybooks, 200),
            playbooks::cancel,
        )
        .command(
            endpoint("POST", "/api/v1/customers", O::OnboardCustomer, 201).creating("customer_id"),
            onboard_customer,
        )
        .command(endpoint("PATCH", customer!(""), O::UpdateProfile, 200), update_profile)
        .command(endpoint("PUT", customer!("/csm"), O::AssignCsm, 200), assign_csm)
        .command(
            endpoint("POST", customer!("/partners"), O::AssignPartner, 201),
            assign_partner,
        )
        .command(
            endpoint("DELETE", customer!("/partners/{item}"), O::UnassignPartner, 200),
            unassign_partner,
        )
        .command(
            endpoint("POST", customer!("/stakeholders"), O::AddStakeholder, 201).creating("stakeholder_id"),
            add_stakeholder,
        )
        .command(
            endpoint("PATCH", customer!("/stakeholders/{item}"), O::UpdateStakeholder, 200),
            update_stakeholder,
        )
        .command(
            endpoint("DELETE", customer!("/stakeholders/{item}"), O::RemoveStakeholder, 200),
            remove_stakeholder,
        )
        .command(
            endpoint("POST", customer!("/activities"), O::LogActivity, 201).creating("activity_id"),
            log_activity,
        )
        .command(
            endpoint("POST", customer!("/activities/batch"), O::LogActivity, 201).creating("activity_ids"),
            log_activities,
        )
        .command(
            endpoint("PATCH", customer!("/activities/{item}"), O::CorrectActivity, 200),
            correct_activity,
        )
        .command(
            endpoint("DELETE", customer!("/activities/{item}"), O::RetractActivity, 200),
            retract_activity,
        )
        .command(
            endpoint("POST", customer!("/health-scores"), O::RecordHealthScore, 201),
            record_health_score,
        )
        .command(
            endpoint("POST", customer!("/tasks"), O::CreateTask, 201).creating("task_id"),
            create_task,
        )
        .command(
            endpoint("PATCH", customer!("/tasks/{item}"), O::UpdateTask, 200),
            update_task,
        )
        .command(
            endpoint("PUT", customer!("/tasks/{item}/assignee"), O::ReassignTask, 200),
            reassign_task,
        )
        .command(
            endpoint("PUT", customer!("/tasks/{item}/status"), O::ChangeTaskStatus, 200),
            change_task_status,
        )
        .command(
            endpoint("POST", customer!("/tasks/{item}/complete"), O::CompleteTask, 200),
            complete_task,
        )
        .command(
            endpoint("POST", customer!("/tasks/{item}/cancel"), O::CancelTask, 200),
            cancel_task,
        )
        .command(
            endpoint("POST", customer!("/partner-reports"), O::DraftPartnerReport, 201).creating("report_id"),
            draft_partner_report,
        )
        .command(
            endpoint(
                "PATCH",
                customer!("/partner-reports/{item}"),
                O::UpdatePartnerReport,
                200,
            ),
            update_partner_report,
        )
        .command(
            endpoint(
                "POST",
                customer!("/partner-reports/{item}/submit"),
                O::SubmitPartnerReport,
                200,
            ),
            submit_partner_report,
        )
        .command(
            endpoint("POST", customer!("/milestones"), O::RecordMilestone, 201).creating("milestone_id"),
            record_milestone,
        )
        .command(
            endpoint("POST", customer!("/issues"), O::LogIssue, 201).creating("issue_id"),
            log_issue,
        )
        .command(
            endpoint("POST", customer!("/issues/{item}/resolve"), O::ResolveIssue, 200),
            resolve_issue,
        )
        .command(
            endpoint("POST", customer!("/escalations"), O::RaiseEscalation, 201).creating("escalation_id"),
            raise_escalation,
        )
        .command(
            endpoint(
                "POST",
                customer!("/escalations/{item}/resolve"),
                O::ResolveEscalation,
                200,
            ),
            resolve_escalation,
        )
        .command(
            endpoint("PUT", customer!("/adoption-stage"), O::ChangeAdoptionStage, 200),
            change_adoption_stage,
        )
        .command(
            endpoint("PUT", customer!("/use-cases"), O::ChangeUseCaseStatus, 200),
            change_use_case_status,
        )
        .command(endpoint("POST", customer!("/nps"), O::RecordNps, 201), record_nps)
        .command(endpoint("POST", customer!("/tags"), O::TagCustomers, 201), tag_customer)
        .command(
            endpoint("POST", customer!("/tags/remove"), O::TagCustomers, 200),
            untag_customer,
        )
        .command(
            endpoint("POST", customer!("/renewal"), O::RecordRenewal, 200),
            record_renewal,
        )
        .command(endpoint("POST", customer!("/churn"), O::RecordChurn, 200), record_churn)
        .command(
            endpoint("PUT", customer!("/custom-fields"), O::SetCustomFields, 200),
            fields::set_custom_fields,
        )
        .command(
            endpoint("POST", "/api/v1/custom-fields", O::DefineCustomFields, 201).creating("key"),
            fields::define_field,
        )
        .command(
            endpoint("PUT", "/api/v1/custom-fields/{id}", O::DefineCustomFields, 200),
            fields::change_field,
        )
        .command(
            endpoint("POST", "/api/v1/custom-fields/{id}/retire", O::DefineCustomFields, 200),
            fields::retire_field,
        )
        .command(
            endpoint("POST", "/api/v1/custom-fields/{id}/bulk", O::SetCustomFields, 200),
            fields::bulk_set,
        )
        .command(
            endpoint("PUT", "/api/v1/custom-field-order", O::DefineCustomFields, 200),
            fields::reorder_fields,
        )
        .command(endpoint("POST", "/api/v1/tasks/bulk", O::UpdateTask, 200), tasks::bulk)
        .command(
            endpoint("POST", "/api/v1/customers/bulk/preview", O::RecordHealthScore, 200),
            bulk_accounts::preview,
        )
        .command(
            endpoint("POST", "/api/v1/customers/bulk", O::RecordHealthScore, 200),
            bulk_accounts::apply,
        )
}

/// A router of documented routes over the handlers: every request authenticated, bodies up to
/// `limit` bytes.
pub fn authenticated(
    routes: Documented<Arc<Handlers>>,
    handlers: Arc<Handlers>,
    authenticator: Arc<Authenticator>,
    limit: usize,
) -> Router {
    let (router, _) = routes.finish();
    router
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(authenticator, auth::authenticate))
        .with_state(handlers)
}

/// What every router of the service serves, described (the OpenAPI document's source).
pub fn described() -> Vec<Described> {
    let mut described = command_routes().finish().1;
    described.extend(crate::import::routes().finish().1);
    described.extend(notifications::described());
    described.extend(links::routes().finish().1);
    described.extend(views::routes().finish().1);
    described.extend(focus::routes().finish().1);
    described.extend(connectors::routes().finish().1);
    described.extend(openapi::operations());
    described
}

/// Cross-origin access for browser clients such as the web client the query API serves. Every
/// command is authorized by a bearer token the client sends explicitly, never by a cookie, so
/// any origin may call: a page elsewhere gains nothing a token-less request would not.
pub fn browsers() -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, Method};
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-correlation-id"),
            HeaderName::from_static("x-causation-id"),
            HeaderName::from_static("x-source"),
            HeaderName::from_static("x-file-name"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::CONTENT_DISPOSITION,
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// What an accepted command answers besides its append: its status and, when it created
/// something, that thing's id under its name.
struct Reply {
    status: StatusCode,
    created: Option<(&'static str, Value)>,
}

impl Reply {
    const OK: Reply = Reply {
        status: StatusCode::OK,
        created: None,
    };
    const CREATED: Reply = Reply {
        status: StatusCode::CREATED,
        created: None,
    };

    fn created(name: &'static str, id: impl serde::Serialize) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            created: Some((name, json!(id))),
        }
    }

    /// The answer to an accepted command.
    fn answer(self, appended: Appended) -> Accepted {
        let mut body = serde_json::to_value(appended).expect("an append result serializes");
        if let (Some((name, id)), Value::Object(map)) = (self.created, &mut body) {
            map.insert(name.to_owned(), id);
        }
        (self.status, Json(body))
    }

    /// What the events of a command with an `Idempotency-Key` carry, so that a retry after a
    /// crash answers exactly what the first attempt would have.
    fn recorded(&self, context: &CommandContext) -> Option<String> {
        context.metadata.idempotency_key.as_ref()?;
        let created = self.created.as_ref().map(|(name, id)| json!({ *name: id }));
        Some(json!({"status": self.status.as_u16(), "created": created}).to_string())
    }
}

/// Runs a command on stream `id` of `handler`'s aggregate and answers it.
async fn run<A>(
    handler: &CommandHandler<A>,
    id: &str,
    command: A::Command,
    context: &CommandContext,
    reply: Reply,
) -> Answer
where
    A: cqrs_es::Aggregate<Error = crate::domain::CommandError> + crate::domain::Guarded + Clone,
    A::Command: Clone,
{
    let appended = handler
        .execute_answering(
            id,
            command,
            &context.metadata,
            Some(&context.principal),
            reply.recorded(context),
        )
        .await?;
    Ok(reply.answer(appended))
}

/// A path id that is not a UUID cannot name anything that exists.
fn path_id(value: &str, entity: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value).map_err(|_| ApiError::NotFound { entity })
}

async fn on_customer(
    app: &Handlers,
    id: &str,
    context: &CommandContext,
    command: CustomerCommand,
    reply: Reply,
) -> Answer {
    let customer_id = path_id(id, "customer")?;
    run(&app.customers, &customer_id.to_string(), command, context, reply).await
}

/// The acting partner organisation, for commands on partner reports.
fn acting_partner(context: &CommandContext) -> Option<Uuid> {
    (context.principal.role == Role::Partner)
        .then_some(context.principal.partner_id)
        .flatten()
}

/// A customer command whose body is the whole command.
macro_rules! customer_command {
    ($handler:ident, $body:ty, $variant:ident, $status:expr) => {
        async fn $handler(
            State(app): State<AppState>,
            Path(id): Path<String>,
            context: CommandContext,
            JsonBody(body): JsonBody<$body>,
        ) -> Answer {
            on_customer(&app, &id, &context, CustomerCommand::$variant(body), $status).await
        }
    };
}

/// A customer command creating something whose id the client may choose (`$field`).
macro_rules! customer_creation {
    ($handler:ident, $body:ty, $variant:ident, $field:ident) => {
        async fn $handler(
            State(app): State<AppState>,
            Path(id): Path<String>,
            context: CommandContext,
            JsonBody(mut body): JsonBody<$body>,
        ) -> Answer {
            let created = *body.$field.get_or_insert_with(Uuid::now_v7);
            let reply = Reply::created(stringify!($field), created);
            on_customer(&app, &id, &context, CustomerCommand::$variant(body), reply).await
        }
    };
}

/// A customer command on one item named in the path (`{item}`), stored in `$field`.
macro_rules! customer_item_command {
    ($handler:ident, $body:ty, $variant:ident, $field:ident, $entity:literal) => {
        async fn $handler(
            State(app): State<AppState>,
            Path((id, item)): Path<(String, String)>,
            context: CommandContext,
            JsonBody(mut body): JsonBody<$body>,
        ) -> Answer {
            body.$field = path_id(&item, $entity)?;
            on_customer(&app, &id, &context, CustomerCommand::$variant(body), Reply::OK).await
        }
    };
}

customer_command!(update_profile, UpdateProfile, UpdateProfile, Reply::OK);
customer_command!(assign_csm, AssignCsm, AssignCsm, Reply::OK);
customer_command!(
    record_health_score,
    RecordHealthScore,
    RecordHealthScore,
    Reply::CREATED
);
customer_command!(
    change_adoption_stage,
    ChangeAdoptionStage,
    ChangeAdoptionStage,
    Reply::OK
);
customer_command!(
    change_use_case_status,
    ChangeUseCaseStatus,
    ChangeUseCaseStatus,
    Reply::OK
);
customer_command!(record_nps, RecordNps, RecordNps, Reply::CREATED);
customer_command!(tag_customer, TagCustomer, TagCustomer, Reply::CREATED);
customer_command!(untag_customer, UntagCustomer, UntagCustomer, Reply::OK);
customer_command!(record_renewal, RecordRenewal, RecordRenewal, Reply::OK);
customer_command!(record_churn, RecordChurn, RecordChurn, Reply::OK);
customer_creation!(add_stakeholder, AddStakeholder, AddStakeholder, stakeholder_id);
customer_creation!(create_task, CreateTask, CreateTask, task_id);
customer_creation!(record_milestone, RecordMilestone, RecordMilestone, milestone_id);
customer_creation!(log_issue, LogIssue, LogIssue, issue_id);
customer_creation!(raise_escalation, RaiseEscalation, RaiseEscalation, escalation_id);
customer_item_command!(
    unassign_partner,
    UnassignPartner,
    UnassignPartner,
    partner_id,
    "partner assignment"
);
customer_item_command!(
    update_stakeholder,
    UpdateStakeholder,
    UpdateStakeholder,
    stakeholder_id,
    "stakeholder"
);
customer_item_command!(
    remove_stakeholder,
    RemoveStakeholder,
    RemoveStakeholder,
    stakeholder_id,
    "stakeholder"
);
customer_item_command!(
    correct_activity,
    CorrectActivity,
    CorrectActivity,
    activity_id,
    "activity"
);
customer_item_command!(
    retract_activity,
    RetractActivity,
    RetractActivity,
    activity_id,
    "activity"
);
customer_item_command!(update_task, UpdateTask, UpdateTask, task_id, "task");
customer_item_command!(reassign_task, ReassignTask, ReassignTask, task_id, "task");
customer_item_command!(change_task_status, ChangeTaskStatus, ChangeTaskStatus, task_id, "task");
customer_item_command!(complete_task, CompleteTask, CompleteTask, task_id, "task");
customer_item_command!(cancel_task, CancelTask, CancelTask, task_id, "task");
customer_item_command!(resolve_issue, Resolve, ResolveIssue, id, "issue");
customer_item_command!(resolve_escalation, Resolve, ResolveEscalation, id, "escalation");

async fn onboard_customer(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<OnboardCustomer>,
) -> Answer {
    let customer_id = *body.customer_id.get_or_insert_with(Uuid::now_v7);
    let reply = Reply::created("customer_id", customer_id);
    run(
        &app.customers,
        &customer_id.to_string(),
        CustomerCommand::Onboard(body),
        &context,
        reply,
    )
    .await
}

async fn assign_partner(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<AssignPartner>,
) -> Answer {
    on_customer(
        &app,
        &id,
        &context,
        CustomerCommand::AssignPartner(body),
        Reply::CREATED,
    )
    .await
}

async fn log_activity(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<LogActivity>,
) -> Answer {
    body.fresh_id = body.activity_id.is_none();
    let activity_id = *body.activity_id.get_or_insert_with(Uuid::now_v7);
    body.logged_by.get_or_insert_with(|| context.principal.user_id.clone());
    let reply = Reply::created("activity_id", activity_id);
    on_customer(&app, &id, &context, CustomerCommand::LogActivity(body), reply).await
}

async fn log_activities(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<LogActivities>,
) -> Answer {
    let mut activity_ids = Vec::with_capacity(body.activities.len());
    for activity in &mut body.activities {
        activity.fresh_id = activity.activity_id.is_none();
        activity_ids.push(*activity.activity_id.get_or_insert_with(Uuid::now_v7));
        activity
            .logged_by
            .get_or_insert_with(|| context.principal.user_id.clone());
    }
    let reply = Reply::created("activity_ids", activity_ids);
    on_customer(&app, &id, &context, CustomerCommand::LogActivities(body), reply).await
}

async fn draft_partner_report(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<DraftPartnerReport>,
) -> Answer {
    if let Some(own) = acting_partner(&context) {
        if body.partner_id.is_some_and(|partner| partner != own) {
            return Err(ApiError::Forbidden {
                message: "a partner reports only for its own organisation".into(),
            });
        }
        body.partner_id = Some(own);
    }
    let report_id = *body.report_id.get_or_insert_with(Uuid::now_v7);
    let reply = Reply::created("report_id", report_id);
    on_customer(&app, &id, &context, CustomerCommand::DraftPartnerReport(body), reply).await
}

async fn update_partner_report(
    State(app): State<AppState>,
    Path((id, item)): Path<(String, String)>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<UpdatePartnerReport>,
) -> Answer {
    body.report_id = path_id(&item, "partner report")?;
    body.acting_partner_id = acting_partner(&context);
    on_customer(
        &app,
        &id,
        &context,
        CustomerCommand::UpdatePartnerReport(body),
        Reply::OK,
    )
    .await
}

async fn submit_partner_report(
    State(app): State<AppState>,
    Path((id, item)): Path<(String, String)>,
    context: CommandContext,
    _body: EmptyBody,
) -> Answer {
    let command = SubmitPartnerReport {
        report_id: path_id(&item, "partner report")?,
        acting_partner_id: acting_partner(&context),
    };
    on_customer(
        &app,
        &id,
        &context,
        CustomerCommand::SubmitPartnerReport(command),
        Reply::OK,
    )
    .await
}

async fn register_csm(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<RegisterCsm>,
) -> Answer {
    let csm_id = *body.csm_id.get_or_insert_with(Uuid::now_v7);
    let reply = Reply::created("csm_id", csm_id);
    run(
        &app.csms,
        &csm_id.to_string(),
        CsmCommand::Register(body),
        &context,
        reply,
    )
    .await
}

async fn change_capacity(
    State(app): State<AppState>,
    Path(csm_id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<ChangeCapacity>,
) -> Answer {
    let csm_id = path_id(&csm_id, "csm")?;
    run(
        &app.csms,
        &csm_id.to_string(),
        CsmCommand::ChangeCapacity(body),
        &context,
        Reply::OK,
    )
    .await
}

async fn register_partner(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<RegisterPartner>,
) -> Answer {
    let partner_id = *body.partner_id.get_or_insert_with(Uuid::now_v7);
    let reply = Reply::created("partner_id", partner_id);
    run(
        &app.partners,
        &partner_id.to_string(),
        PartnerCommand::Register(body),
        &context,
        reply,
    )
    .await
}

async fn on_partner(
    app: &Handlers,
    id: &str,
    context: &CommandContext,
    command: PartnerCommand,
    reply: Reply,
) -> Answer {
    let partner_id = path_id(id, "partner")?;
    run(&app.partners, &partner_id.to_string(), command, context, reply).await
}

/// Customers to assign to a partner organisation at once.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCustomers {
    /// 1 to 1,000 distinct customers; those already assigned are left as they are.
    #[schemars(length(min = 1, max = 1000), extend("uniqueItems" = true))]
    pub customer_ids: Vec<Uuid>,
}

/// Assigns the partner to up to 1,000 customers in one transaction, or to none.
async fn assign_partner_customers(
    State(app): State<AppState>,
    Path(partner_id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<AssignCustomers>,
) -> Answer {
    let partner_id = path_id(&partner_id, "partner")?;
    let command = |_| CustomerCommand::AssignPartner(AssignPartner { partner_id });
    let unchanged = |rejection: &crate::domain::CommandError| {
        matches!(
            rejection,
            crate::domain::CommandError::Conflict {
                code: "partner_already_assigned",
                ..
            }
        )
    };
    let assigned = bulk::on_customers(&app, &context, &body.customer_ids, command, unchanged).await?;
    Ok((
        axum::http::StatusCode::OK,
        Json(json!({
            "partner_id": partner_id,
            "customers": body.customer_ids.len(),
            "assigned": assigned,
        })),
    ))
}

/// Customers to hand to a CSM at once, and why.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignCustomers {
    /// 1 to 1,000 distinct customers; those the CSM already has are left as they are.
    #[schemars(length(min = 1, max = 1000), extend("uniqueItems" = true))]
    pub customer_ids: Vec<Uuid>,
    /// Kept with each handoff.
    #[schemars(length(max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
}

/// Hands up to 1,000 customers to the CSM in one transaction, or none (each its own handoff).
async fn assign_csm_customers(
    State(app): State<AppState>,
    Path(csm_id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<ReassignCustomers>,
) -> Answer {
    let csm_id = path_id(&csm_id, "csm")?;
    let command = |_| {
        CustomerCommand::AssignCsm(AssignCsm {
            csm_id,
            reason: body.reason.clone(),
            occurred_at: None,
        })
    };
    let unchanged = |rejection: &crate::domain::CommandError| {
        matches!(
            rejection,
            crate::domain::CommandError::Invalid {
                code: "csm_unchanged",
                ..
            }
        )
    };
    let reassigned = bulk::on_customers(&app, &context, &body.customer_ids, command, unchanged).await?;
    Ok((
        axum::http::StatusCode::OK,
        Json(json!({
            "csm_id": csm_id,
            "customers": body.customer_ids.len(),
            "reassigned": reassigned,
        })),
    ))
}

async fn invite_partner_user(
    State(app): State<AppState>,
    Path(partner_id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<InviteUser>,
) -> Answer {
    let user_id = body.user_id.get_or_insert_with(|| Uuid::now_v7().to_string()).clone();
    let reply = Reply::created("user_id", user_id);
    on_partner(&app, &partner_id, &context, PartnerCommand::InviteUser(body), reply).await
}

async fn activate_partner_user(
    State(app): State<AppState>,
    Path((partner_id, user_id)): Path<(String, String)>,
    context: CommandContext,
    _body: EmptyBody,
) -> Answer {
    let command = PartnerCommand::ActivateUser { user_id };
    on_partner(&app, &partner_id, &context, command, Reply::OK).await
}

async fn deactivate_partner_user(
    State(app): State<AppState>,
    Path((partner_id, user_id)): Path<(String, String)>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<DeactivateUser>,
) -> Answer {
    body.user_id = user_id;
    on_partner(
        &app,
        &partner_id,
        &context,
        PartnerCommand::DeactivateUser(body),
        Reply::OK,
    )
    .await
}

async fn on_rules(app: &Handlers, context: &CommandContext, command: RulesCommand) -> Answer {
    run(&app.rules, RULES_STREAM_ID, command, context, Reply::OK).await
}

async fn change_coverage_standards(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<ChangeCoverageStandards>,
) -> Answer {
    on_rules(&app, &context, RulesCommand::ChangeCoverageStandards(body)).await
}

async fn change_engagement_weights(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<ChangeEngagementWeights>,
) -> Answer {
    on_rules(&app, &context, RulesCommand::ChangeEngagementWeights(body)).await
}

async fn change_workload_hours(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<ChangeWorkloadHours>,
) -> Answer {
    on_rules(&app, &context, RulesCommand::ChangeWorkloadHours(body)).await
}

async fn change_churn_risk_rules(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<ChangeChurnRiskRules>,
) -> Answer {
    on_rules(&app, &context, RulesCommand::ChangeChurnRiskRules(body)).await
}

async fn change_reminder_rules(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<ChangeReminderRules>,
) -> Answer {
    on_rules(&app, &context, RulesCommand::ChangeReminderRules(body)).await
}

async fn acknowledge_alert(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<AcknowledgeAlert>,
) -> Answer {
    body.alert_id = path_id(&id, "alert")?;
    let alert_id = body.alert_id.to_string();
    run(&app.alerts, &alert_id, body, &context, Reply::OK).await
}
