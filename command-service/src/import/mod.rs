//! Imports from .xlsx and CSV (docs/IMPORTS.md): upload (multipart) with a suggested column
//! mapping, preview (writes nothing), commit (all rows' events in one transaction, or none),
//! history, and undo at any age by compensating events that keep later work.
//!
//! An import's file and its status live in the `imports` table; what it did lives in the event
//! store: every event it appended carries `source: import`, `import_id` and `import_row` in its
//! metadata, and so do the events of its undo (with `import_undo`).

pub mod plan;
pub mod sheet;
mod undo;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use events::metadata::{CommandMetadata, Role, Source};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::permissions::Operation;
use crate::http::error::ApiError;
use crate::http::extract::{CommandContext, JsonBody};
use crate::http::Handlers;
use crate::store::ExecuteError;
use plan::{Kind, Mapping, World};

type AppState = Arc<Handlers>;
use crate::http::routes::Documented;
type Answer = Result<(StatusCode, Json<Value>), ApiError>;

/// The import routes; authentication is layered on by the caller.
pub fn router(handlers: Arc<Handlers>) -> Router {
    let (router, _) = routes().finish();
    router
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(sheet::MAX_BYTES + 64 * 1024))
        .with_state(handlers)
}

/// The upload form, as the OpenAPI document describes it (the handler reads it part by part).
#[derive(schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UploadForm {
    /// What the rows are.
    kind: Kind,
    /// The workbook (.xlsx) or CSV file, up to 20 MB.
    #[schemars(with = "String", extend("format" = "binary"))]
    file: Vec<u8>,
    /// Field -> column, a JSON object (this part's content type is application/json); absent:
    /// the suggested mapping.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    mapping: Option<std::collections::BTreeMap<String, String>>,
}

/// The import and deck-template routes, each described where it is served.
pub fn routes() -> Documented<AppState> {
    use crate::http::openapi::{Other, ADMINS, MANAGING, XLSX};
    Documented::default()
        .other(
            Other::new(
                "POST",
                "/api/v1/imports",
                "upload a file to import (multipart: kind, file, optional mapping as JSON); answers the preview",
                MANAGING,
                201,
            )
            .taking_shaped::<UploadForm>("multipart/form-data"),
            upload,
        )
        .other(
            Other::new(
                "GET",
                "/api/v1/imports",
                "the import history (newest 200; a CSM sees its own)",
                MANAGING,
                200,
            ),
            history,
        )
        .other(
            Other::new(
                "GET",
                "/api/v1/imports/{id}",
                "an import's preview: each row's action, changes and errors",
                MANAGING,
                200,
            ),
            show,
        )
        .other(
            Other::new(
                "PUT",
                "/api/v1/imports/{id}/mapping",
                "set an import's mapping; answers the new preview",
                MANAGING,
                200,
            ),
            remap,
        )
        .other(
            Other::new(
                "GET",
                "/api/v1/imports/{id}/errors.xlsx",
                "the rows with errors as a workbook to fix and upload again",
                MANAGING,
                200,
            )
            .answering(XLSX),
            errors_workbook,
        )
        .other(
            Other::new(
                "POST",
                "/api/v1/imports/{id}/commit",
                "append every row's events in one transaction, or none",
                MANAGING,
                200,
            ),
            commit,
        )
        .other(
            Other::new(
                "POST",
                "/api/v1/imports/{id}/undo",
                "compensate what the import did, keeping later changes",
                MANAGING,
                200,
            ),
            undo_import,
        )
        .other(
            Other::new(
                "PUT",
                "/api/v1/deck-template",
                "upload the deck template (.pptx)",
                ADMINS,
                200,
            )
            .taking("application/vnd.openxmlformats-officedocument.presentationml.presentation"),
            upload_template,
        )
        .other(
            Other::new(
                "GET",
                "/api/v1/deck-template",
                "the deck template in use: its file name, size, and who uploaded it when (null: the built-in one)",
                ADMINS,
                200,
            ),
            template_in_use,
        )
        .other(
            Other::new(
                "DELETE",
                "/api/v1/deck-template",
                "go back to the built-in deck template",
                ADMINS,
                200,
            ),
            reset_template,
        )
}

fn unavailable(error: sqlx::Error) -> ApiError {
    ExecuteError::from_database(&error).into()
}

fn permitted(context: &CommandContext) -> Result<(), ApiError> {
    if Operation::Import.permits(context.principal.role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: format!("the {} role may not import", context.principal.role.as_str()),
        })
    }
}

/// The stored import a request names.
#[derive(sqlx::FromRow)]
struct Stored {
    kind: String,
    file_name: String,
    content: Vec<u8>,
    mapping: Value,
    status: String,
    created_by: String,
    result: Option<Value>,
}

async fn stored(pool: &PgPool, id: &str) -> Result<(Uuid, Stored), ApiError> {
    let import_id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound { entity: "import" })?;
    let row: Option<Stored> = sqlx::query_as(
        "SELECT kind, file_name, content, mapping, status, created_by, result FROM imports WHERE import_id = $1",
    )
    .bind(import_id)
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?;
    row.map(|row| (import_id, row))
        .ok_or(ApiError::NotFound { entity: "import" })
}

/// Only the uploader and managers or admins act on an import.
fn owns(context: &CommandContext, stored: &Stored) -> Result<(), ApiError> {
    if stored.created_by == context.principal.user_id || matches!(context.principal.role, Role::Admin | Role::Manager) {
        Ok(())
    } else {
        Err(ApiError::NotFound { entity: "import" })
    }
}

fn metadata(context: &CommandContext, import_id: Uuid) -> HashMap<String, String> {
    let mut metadata = CommandMetadata {
        source: Source::Import,
        correlation_id: import_id,
        idempotency_key: None,
        ..context.metadata.clone()
    }
    .to_map();
    metadata.insert("import_id".into(), import_id.to_string());
    metadata
}

/// A batch for a plan to decide into, with the directory that knows the activity ids the plan
/// makes up are new by construction (the store is not asked about them).
pub fn plan_batch(
    app: &Handlers,
) -> (
    crate::store::Batch<'_, crate::domain::customer::Customer>,
    Arc<crate::store::FreshActivities>,
) {
    let base = app.customers.services().clone();
    let fresh = Arc::new(crate::store::FreshActivities {
        inner: base.directory.clone(),
        fresh: Default::default(),
    });
    let batch = app.customers.batch().with_services(crate::domain::DomainServices {
        directory: fresh.clone(),
        clock: base.clock.clone(),
    });
    (batch, fresh)
}

/// Reads, maps and decides the stored file: the preview, and the batch a commit appends.
async fn planned<'a>(
    app: &'a Handlers,
    context: &CommandContext,
    import_id: Uuid,
    stored: &Stored,
) -> Result<(plan::Plan, crate::store::Batch<'a, crate::domain::customer::Customer>), ApiError> {
    let kind = Kind::parse(&stored.kind).ok_or_else(|| ApiError::Internal("unknown import kind".into()))?;
    let sheet = sheet::read(&stored.file_name, &stored.content)
        .map_err(|error| ApiError::validation("unreadable_file", "file", error.to_string()))?;
    let mapping: Mapping = serde_json::from_value(stored.mapping.clone()).unwrap_or_default();
    let world = World::load(&app.pool).await.map_err(unavailable)?;
    let (mut batch, fresh) = plan_batch(app);
    let plan = plan::decide(
        kind,
        &sheet,
        &mapping,
        &world,
        &mut batch,
        &context.principal,
        &metadata(context, import_id),
        chrono::Utc::now(),
        &fresh,
    )
    .await?;
    Ok((plan, batch))
}

fn preview_body(
    import_id: Uuid,
    stored: &Stored,
    plan: &plan::Plan,
    targets: &[plan::Target],
    read: &sheet::Sheet,
) -> Value {
    json!({
        "import_id": import_id,
        "kind": stored.kind,
        "file_name": stored.file_name,
        "status": stored.status,
        "headers": read.headers,
        "ignored_sheets": read.ignored_sheets,
        "targets": targets,
        "mapping": stored.mapping,
        "counts": plan.counts,
        "rows": plan.outcomes,
        "errors_download": format!("/api/v1/imports/{import_id}/errors.xlsx"),
    })
}

/// `POST /api/v1/imports` (multipart: `kind`, `file`, optional `mapping` as JSON): stores the
/// file, suggests a mapping and answers the preview. Writes no event.
async fn upload(
    State(app): State<AppState>,
    context: CommandContext,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Answer {
    let mut form = form.map_err(|_| ApiError::UnsupportedMediaType("send the file as multipart/form-data"))?;
    permitted(&context)?;
    let (mut kind, mut file, mut mapping) = (None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|error| ApiError::validation("invalid_form", "body", error.body_text()))?
    {
        match field.name().unwrap_or_default() {
            "kind" => kind = Some(field.text().await.unwrap_or_default()),
            "mapping" => {
                let text = field.text().await.unwrap_or_default();
                let parsed = serde_json::from_str::<Mapping>(&text).map_err(|error| {
                    ApiError::validation(
                        "invalid_mapping",
                        "mapping",
                        format!("mapping is a JSON object of field -> column: {error}"),
                    )
                })?;
                if let Some(field) = crate::http::extract::nul_field(&json!(parsed), "mapping".into()) {
                    return Err(ApiError::validation(
                        "invalid_character",
                        field,
                        "text may not contain the NUL character (U+0000)",
                    ));
                }
                mapping = Some(parsed);
            }
            "file" => {
                let name = field.file_name().unwrap_or("upload.csv").to_owned();
                let bytes = field.bytes().await.map_err(|error| {
                    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::PayloadTooLarge
                    } else {
                        ApiError::validation("invalid_form", "file", error.body_text())
                    }
                })?;
                file = Some((name, bytes));
            }
            other => {
                return Err(ApiError::validation(
                    "unknown_field",
                    other.to_owned(),
                    "the form takes kind, file and mapping",
                ))
            }
        }
    }
    let kind_text = kind.ok_or_else(|| ApiError::validation("missing_field", "kind", "kind is required"))?;
    let kind = Kind::parse(kind_text.trim()).ok_or_else(|| {
        ApiError::validation(
            "invalid_value",
            "kind",
            "kind is customers, stakeholders, activities, health_scores or custom_fields",
        )
    })?;
    let (file_name, bytes) = file.ok_or_else(|| ApiError::validation("missing_field", "file", "attach the file"))?;
    if bytes.len() > sheet::MAX_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let sheet = sheet::read(&file_name, &bytes)
        .map_err(|error| ApiError::validation("unreadable_file", "file", error.to_string()))?;
    let definitions = events::service::read_models::custom_field_definitions(&app.pool, None)
        .await
        .map_err(unavailable)?;
    let targets = plan::targets(kind, &definitions);
    let mapping = mapping.unwrap_or_else(|| plan::suggest(&targets, &sheet.headers));
    let import_id = Uuid::now_v7();
    let file_name: String = file_name.chars().filter(|c| *c != '\0').take(255).collect();
    sqlx::query(
        "INSERT INTO imports (import_id, kind, file_name, file_format, content, headers, mapping, row_count, created_by, created_role)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(import_id)
    .bind(kind.as_str())
    .bind(&file_name)
    .bind(sheet::format_of(&file_name, &bytes))
    .bind(bytes.as_ref())
    .bind(json!(sheet.headers))
    .bind(json!(mapping))
    .bind(sheet.rows.len() as i32)
    .bind(&context.principal.user_id)
    .bind(context.principal.role.as_str())
    .execute(&app.pool)
    .await
    .map_err(unavailable)?;
    let (_, stored) = stored(&app.pool, &import_id.to_string()).await?;
    preview(&app, &context, import_id, &stored, StatusCode::CREATED).await
}

async fn preview(
    app: &Handlers,
    context: &CommandContext,
    import_id: Uuid,
    stored: &Stored,
    status: StatusCode,
) -> Answer {
    let kind = Kind::parse(&stored.kind).ok_or_else(|| ApiError::Internal("unknown import kind".into()))?;
    let sheet = sheet::read(&stored.file_name, &stored.content)
        .map_err(|error| ApiError::validation("unreadable_file", "file", error.to_string()))?;
    let world = World::load(&app.pool).await.map_err(unavailable)?;
    let targets = plan::targets(kind, &world.definitions);
    let mapping: Mapping = serde_json::from_value(stored.mapping.clone()).unwrap_or_default();
    if let Err((field, message)) = plan::check_mapping(&targets, &sheet.headers, &mapping) {
        let mut body = json!({"import_id": import_id, "headers": sheet.headers, "targets": targets, "mapping": mapping,
            "error": "mapping_incomplete", "field": field, "message": message});
        body["status"] = json!(stored.status);
        return Ok((status, Json(body)));
    }
    let (plan, _) = planned(app, context, import_id, stored).await?;
    Ok((status, Json(preview_body(import_id, stored, &plan, &targets, &sheet))))
}

/// `GET /api/v1/imports/{id}`: the import with its preview as of now (or its result once
/// committed or undone).
async fn show(State(app): State<AppState>, Path(id): Path<String>, context: CommandContext) -> Answer {
    permitted(&context)?;
    let (import_id, stored) = stored(&app.pool, &id).await?;
    owns(&context, &stored)?;
    if stored.status != "uploaded" {
        return Ok((StatusCode::OK, Json(summary(&app.pool, import_id).await?)));
    }
    preview(&app, &context, import_id, &stored, StatusCode::OK).await
}

/// `PUT /api/v1/deck-template` (admins; the body is a .pptx or .potx): the template decks are
/// written into from now on. It is checked by writing a trial deck into it.
async fn upload_template(
    State(app): State<AppState>,
    context: CommandContext,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    use events::service::deck;
    if context.principal.role != Role::Admin {
        return Err(ApiError::Forbidden {
            message: "only admins change the deck template".into(),
        });
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/vnd.openxmlformats-officedocument.presentationml.")
        && !content_type.starts_with("application/octet-stream")
    {
        return Err(ApiError::UnsupportedMediaType(
            "send the template as application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ));
    }
    let trial = deck::Slide {
        title: "Trial".into(),
        blocks: vec![
            deck::Block::Table(vec!["a".into()], vec![vec!["1".into()]]),
            deck::Block::Chart(
                deck::Chart::new(
                    deck::ChartKind::Bar,
                    "Trial",
                    vec!["a".into()],
                    vec![("a".into(), vec![1.0])],
                )
                .money()
                .series_colours(&["24A148"]),
            ),
        ],
    };
    deck::check_template(&body)
        .and_then(|_| deck::build(&body, &[trial]))
        .map_err(|error| ApiError::validation("invalid_template", "body", error.to_string()))?;
    let template_id = Uuid::now_v7();
    let file_name = headers
        .get("x-file-name")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("template.pptx")
        .chars()
        .take(255)
        .collect::<String>();
    sqlx::query("INSERT INTO deck_templates (template_id, file_name, content, uploaded_by) VALUES ($1, $2, $3, $4)")
        .bind(template_id)
        .bind(&file_name)
        .bind(body.as_ref())
        .bind(&context.principal.user_id)
        .execute(&app.pool)
        .await
        .map_err(unavailable)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"template_id": template_id, "file_name": file_name, "bytes": body.len()})),
    ))
}

/// `GET /api/v1/deck-template` (admins): the uploaded template decks are written into, or null
/// while the built-in one is used.
async fn template_in_use(State(app): State<AppState>, context: CommandContext) -> Answer {
    if context.principal.role != Role::Admin {
        return Err(ApiError::Forbidden {
            message: "only admins manage the deck template".into(),
        });
    }
    let latest: Option<(Uuid, String, String, chrono::DateTime<chrono::Utc>, i32)> = sqlx::query_as(
        "SELECT template_id, file_name, uploaded_by, uploaded_at, octet_length(content)
           FROM deck_templates ORDER BY uploaded_at DESC LIMIT 1",
    )
    .fetch_optional(&app.pool)
    .await
    .map_err(unavailable)?;
    let template = latest.map(|(template_id, file_name, uploaded_by, uploaded_at, bytes)| {
        json!({"template_id": template_id, "file_name": file_name, "uploaded_by": uploaded_by,
               "uploaded_at": uploaded_at, "bytes": bytes})
    });
    Ok((StatusCode::OK, Json(json!({ "template": template }))))
}

/// `DELETE /api/v1/deck-template`: decks go back to the shipped default template.
async fn reset_template(State(app): State<AppState>, context: CommandContext) -> Answer {
    if context.principal.role != Role::Admin {
        return Err(ApiError::Forbidden {
            message: "only admins change the deck template".into(),
        });
    }
    let removed = sqlx::query("DELETE FROM deck_templates")
        .execute(&app.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
    Ok((StatusCode::OK, Json(json!({"removed": removed}))))
}

/// `GET /api/v1/imports/{id}/errors.xlsx`: the rows with errors, their original cells and
/// an error column beside them, to fix in a spreadsheet program and upload again.
async fn errors_workbook(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use events::service::workbook::{self, Cell as Out, Kind as Column};
    permitted(&context)?;
    let (import_id, stored) = stored(&app.pool, &id).await?;
    owns(&context, &stored)?;
    let sheet = sheet::read(&stored.file_name, &stored.content)
        .map_err(|error| ApiError::validation("unreadable_file", "file", error.to_string()))?;
    let (plan, _) = planned(&app, &context, import_id, &stored).await?;
    let mut columns = vec![
        workbook::column("Sheet", Column::Text),
        workbook::column("Row", Column::Integer),
    ];
    columns.extend(
        sheet
            .headers
            .iter()
            .map(|header| workbook::column(header, Column::Text)),
    );
    columns.push(workbook::column("Errors", Column::Text));
    let cells: HashMap<(Option<&str>, usize), &Vec<sheet::Cell>> = sheet
        .rows
        .iter()
        .map(|row| ((row.sheet.as_deref(), row.number), &row.cells))
        .collect();
    let rows = plan
        .outcomes
        .iter()
        .filter(|outcome| !outcome.errors.is_empty())
        .map(|outcome| {
            let mut row = vec![
                outcome.sheet.clone().map_or(Out::Empty, Out::Text),
                Out::Number(outcome.row as f64),
            ];
            row.extend(
                cells
                    .get(&(outcome.sheet.as_deref(), outcome.row))
                    .into_iter()
                    .flat_map(|cells| cells.iter())
                    .take(sheet.headers.len())
                    .map(|cell| match cell {
                        sheet::Cell::Empty => Out::Empty,
                        sheet::Cell::Number(number) => Out::Number(*number),
                        sheet::Cell::Bool(value) => Out::Bool(*value),
                        sheet::Cell::DateTime(at) => Out::Date(at.date()),
                        sheet::Cell::Text(text) => Out::text(text.clone()),
                    }),
            );
            row.resize(sheet.headers.len() + 2, Out::Empty);
            let messages: Vec<String> = outcome
                .errors
                .iter()
                .map(|error| match &error.column {
                    Some(column) => format!("{column}: {} ({})", error.message, error.code),
                    None => format!("{} ({})", error.message, error.code),
                })
                .collect();
            row.push(Out::text(messages.join("\n")));
            row
        })
        .collect();
    let about = vec![
        ("Import".to_owned(), import_id.to_string()),
        ("File".to_owned(), stored.file_name.clone()),
        ("Kind".to_owned(), stored.kind.clone()),
        ("Rows with errors".to_owned(), plan.counts.error.to_string()),
        ("Generated at".to_owned(), chrono::Utc::now().to_rfc3339()),
        ("Generated by".to_owned(), context.principal.user_id.clone()),
    ];
    let table = workbook::Table {
        name: "Errors".into(),
        columns,
        rows,
    };
    let bytes =
        workbook::xlsx("Import errors", &about, &[table]).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"import-{import_id}-errors.xlsx\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// A new mapping of an uploaded import: target (`name`, `cf.segment`) -> column header.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Remap {
    pub mapping: std::collections::BTreeMap<String, String>,
}

/// `PUT /api/v1/imports/{id}/mapping`: the user's mapping; answers the new preview.
async fn remap(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<Remap>,
) -> Answer {
    permitted(&context)?;
    let (import_id, mut stored) = stored(&app.pool, &id).await?;
    owns(&context, &stored)?;
    if stored.status != "uploaded" {
        return Err(ApiError::Conflict {
            code: "import_committed",
            message: "a committed import's mapping no longer changes".into(),
        });
    }
    sqlx::query("UPDATE imports SET mapping = $2 WHERE import_id = $1")
        .bind(import_id)
        .bind(json!(body.mapping))
        .execute(&app.pool)
        .await
        .map_err(unavailable)?;
    stored.mapping = json!(body.mapping);
    preview(&app, &context, import_id, &stored, StatusCode::OK).await
}

/// `POST /api/v1/imports/{id}/commit`: appends every row's events in one transaction, or none
/// when any row has an error (answered with the preview). A second commit appends nothing and
/// answers the first one's result.
async fn commit(State(app): State<AppState>, Path(id): Path<String>, context: CommandContext) -> Answer {
    permitted(&context)?;
    let (import_id, stored) = stored(&app.pool, &id).await?;
    owns(&context, &stored)?;
    for attempt in 1.. {
        if stored.status != "uploaded" {
            return Ok((StatusCode::OK, Json(summary(&app.pool, import_id).await?)));
        }
        let (plan, batch) = planned(&app, &context, import_id, &stored).await?;
        if plan.counts.error > 0 {
            let errors: Vec<_> = plan.outcomes.iter().filter(|row| row.action == "error").collect();
            return Err(ApiError::Unprocessable {
                code: "import_has_errors",
                message: format!(
                    "{} of {} rows have errors; nothing was appended",
                    plan.counts.error, plan.counts.rows
                ),
                fields: serde_json::Map::from_iter([("rows".to_owned(), json!(errors))]),
            });
        }
        let events = batch.len();
        // Claims the import first: a concurrent commit waits here and then finds it committed.
        let claim = sqlx::query(
            "UPDATE imports SET status = 'committed', committed_at = now(), committed_by = $2, counts = $3, event_count = $4
              WHERE import_id = $1 AND status = 'uploaded'",
        )
        .bind(import_id)
        .bind(&context.principal.user_id)
        .bind(json!(plan.counts))
        .bind(events as i64);
        if let Some(answer) = claim_and_append(&app, import_id, claim, batch, attempt).await? {
            tracing::info!(%import_id, events, rows = plan.counts.rows, "import committed");
            return Ok(answer);
        }
    }
    unreachable!("the loop returns")
}

/// In one transaction: moves the import on (`claim`, an UPDATE that matches only from the
/// expected status) and appends `batch`. Answers the import's record, or `None` when a
/// concurrent writer changed a stream and the attempt (below the third) should be planned again.
/// A claim that matches nothing means another request moved the import first: its record is
/// the answer and nothing is appended.
async fn claim_and_append(
    app: &Handlers,
    import_id: Uuid,
    claim: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    batch: crate::store::Batch<'_, crate::domain::customer::Customer>,
    attempt: u32,
) -> Result<Option<(StatusCode, Json<Value>)>, ApiError> {
    let mut tx = app.pool.begin().await.map_err(unavailable)?;
    let claimed = claim.execute(&mut *tx).await.map_err(unavailable)?.rows_affected();
    if claimed > 0 {
        let appends = batch.appends();
        match batch.append(&mut tx).await {
            Err(ExecuteError::Conflict) if attempt < 3 => return Ok(None),
            Err(error) => return Err(error.into()),
            Ok(_) => {
                tx.commit().await.map_err(unavailable)?;
                appends.committed();
            }
        }
    }
    Ok(Some((StatusCode::OK, Json(summary(&app.pool, import_id).await?))))
}

/// An import's record as history shows it.
async fn summary(pool: &PgPool, import_id: Uuid) -> Result<Value, ApiError> {
    let row: Option<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('import_id', import_id, 'kind', kind, 'file_name', file_name, 'status', status,
                'rows', row_count, 'counts', counts, 'events', event_count, 'created_by', created_by,
                'created_at', created_at, 'committed_by', committed_by, 'committed_at', committed_at,
                'undone_by', undone_by, 'undone_at', undone_at, 'undo', result)
           FROM imports WHERE import_id = $1",
    )
    .bind(import_id)
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?;
    row.ok_or(ApiError::NotFound { entity: "import" })
}

/// `GET /api/v1/imports`: the latest 200 imports, newest first (a CSM sees its own).
async fn history(State(app): State<AppState>, context: CommandContext) -> Answer {
    permitted(&context)?;
    let everyone = matches!(context.principal.role, Role::Admin | Role::Manager);
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT import_id FROM imports WHERE $1 OR created_by = $2 ORDER BY created_at DESC LIMIT 200",
    )
    .bind(everyone)
    .bind(&context.principal.user_id)
    .fetch_all(&app.pool)
    .await
    .map_err(unavailable)?;
    let mut imports = Vec::with_capacity(ids.len());
    for id in ids {
        imports.push(summary(&app.pool, id).await?);
    }
    Ok((StatusCode::OK, Json(json!({ "imports": imports }))))
}

/// `POST /api/v1/imports/{id}/undo`: compensating events, in one transaction, that retract
/// what the import added and restore what it changed, keeping every later change.
async fn undo_import(State(app): State<AppState>, Path(id): Path<String>, context: CommandContext) -> Answer {
    permitted(&context)?;
    let (import_id, stored) = stored(&app.pool, &id).await?;
    owns(&context, &stored)?;
    match stored.status.as_str() {
        "uploaded" => {
            return Err(ApiError::Conflict {
                code: "import_not_committed",
                message: "only a committed import can be undone".into(),
            })
        }
        "undone" => return Ok((StatusCode::OK, Json(summary(&app.pool, import_id).await?))),
        _ => {}
    }
    let _ = stored.result;
    for attempt in 1.. {
        let mut metadata = metadata(&context, import_id);
        metadata.insert("import_undo".into(), "true".into());
        let mut batch = app.customers.batch();
        let result = undo::decide(&app.pool, import_id, &mut batch, &context.principal, &metadata).await?;
        let claim = sqlx::query(
            "UPDATE imports SET status = 'undone', undone_at = now(), undone_by = $2, result = $3
              WHERE import_id = $1 AND status = 'committed'",
        )
        .bind(import_id)
        .bind(&context.principal.user_id)
        .bind(&result);
        if let Some(answer) = claim_and_append(&app, import_id, claim, batch, attempt).await? {
            tracing::info!(%import_id, "import undone");
            return Ok(answer);
        }
    }
    unreachable!("the loop returns")
}
