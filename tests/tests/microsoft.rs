//! The Microsoft 365 connector against a local server answering as Microsoft Graph documents:
//! the v2.0 token endpoint (client credentials), mail folders' `messages/delta` and
//! `calendarView/delta` with `@odata.nextLink` pages and an `@odata.deltaLink` at the end,
//! `$skiptoken` and `$deltatoken`, recipients as `{"emailAddress": {"address"}}`, and event times
//! as `dateTimeTimeZone` in UTC when the request prefers `outlook.timezone="UTC"`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use command_service::connectors::microsoft::{Microsoft365, MicrosoftSettings};
use command_service::connectors::vendor::Secret;
use command_service::connectors::{self, ConnectorMetrics};
use serde_json::{json, Value};
use tests::{uuid, TestSystem};

const MAILBOX: &str = "dana@vendor.example";

#[derive(Default)]
struct Graph {
    base: String,
    tokens: usize,
    /// Items of each feed ("inbox", "sentitems", "calendar") not yet read.
    pending: HashMap<String, Vec<Value>>,
    /// Feeds whose first read has started (their second page is behind a skip token).
    second_pages: HashMap<String, Vec<Value>>,
    prefer: Vec<String>,
    /// The next request is refused as if the token had expired, or throttled with 429.
    expire_next: bool,
    throttle_next: bool,
    /// The calendar as Graph holds it, for `calendarView` delta queries that keep their window
    /// (when `windowed`): each meeting with the version it was last changed in.
    windowed: bool,
    meetings: Vec<(u64, Value)>,
    version: u64,
    /// The window of each delta query started, by its number.
    windows: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Graph {
    /// Adds or changes a meeting of the windowed calendar.
    fn put_meeting(&mut self, meeting: Value) {
        self.version += 1;
        self.meetings.retain(|(_, known)| known["id"] != meeting["id"]);
        self.meetings.push((self.version, meeting));
    }
}

/// A `calendarView/delta` page as Graph answers it: the first request's `startDateTime` and
/// `endDateTime` bound the query for good; its delta link returns only what changed since, within
/// that window.
fn windowed_calendar(graph: &mut Graph, params: &HashMap<String, String>) -> Response {
    let instant = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
    let (query, since) = match params.get("$deltatoken") {
        Some(token) => {
            let (query, since) = token.split_once('-').unwrap();
            (query.parse::<usize>().unwrap(), since.parse::<u64>().unwrap())
        }
        None => {
            graph
                .windows
                .push((instant(&params["startDateTime"]), instant(&params["endDateTime"])));
            (graph.windows.len() - 1, 0)
        }
    };
    let (start, end) = graph.windows[query];
    let within = |meeting: &Value| {
        let at = DateTime::parse_from_rfc3339(&format!("{}Z", &meeting["start"]["dateTime"].as_str().unwrap()[..19]))
            .unwrap()
            .with_timezone(&Utc);
        start <= at && at < end
    };
    let value: Vec<Value> = graph
        .meetings
        .iter()
        .filter(|(version, meeting)| *version > since && within(meeting))
        .map(|(_, meeting)| meeting.clone())
        .collect();
    let link = format!(
        "{}/v1.0/users/{MAILBOX}/calendarView/delta?$deltatoken={query}-{}",
        graph.base, graph.version
    );
    Json(json!({"value": value, "@odata.deltaLink": link})).into_response()
}

type Shared = Arc<Mutex<Graph>>;

async fn token(State(graph): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let valid = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_secret").map(String::as_str) == Some("m365-secret")
        && form.get("scope").map(String::as_str) == Some("https://graph.microsoft.com/.default");
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215"})),
        )
            .into_response();
    }
    let mut graph = graph.lock().unwrap();
    graph.tokens += 1;
    Json(
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                "access_token": format!("eyJ0-m365-{}", graph.tokens)}),
    )
    .into_response()
}

/// One delta page of `feed`: the first read in two pages, later reads (with a delta token)
/// whatever changed since.
fn delta(graph: &mut Graph, headers: &HeaderMap, params: &HashMap<String, String>, feed: &str, link: &str) -> Response {
    if std::mem::take(&mut graph.throttle_next) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"error": {"code": "TooManyRequests", "message": "Please retry after 1 second."}})),
        )
            .into_response();
    }
    let expected = format!("Bearer eyJ0-m365-{}", graph.tokens);
    if std::mem::take(&mut graph.expire_next)
        || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})),
        )
            .into_response();
    }
    if let Some(prefer) = headers.get("prefer").and_then(|v| v.to_str().ok()) {
        graph.prefer.push(prefer.to_owned());
    }
    let base = format!("{}/v1.0{link}", graph.base);
    let context = format!("{}/v1.0/$metadata#Collection(message)", graph.base);
    if params.contains_key("$skiptoken") {
        let rest = graph.second_pages.remove(feed).unwrap_or_default();
        return Json(json!({"@odata.context": context, "value": rest,
                           "@odata.deltaLink": format!("{base}?$deltatoken=after-{feed}")}))
        .into_response();
    }
    let mut items = graph.pending.remove(feed).unwrap_or_default();
    if params.contains_key("$deltatoken") {
        return Json(json!({"@odata.context": context, "value": items,
                           "@odata.deltaLink": format!("{base}?$deltatoken=after-{feed}-again")}))
        .into_response();
    }
    let rest = items.split_off(items.len().div_ceil(2));
    graph.second_pages.insert(feed.to_owned(), rest);
    Json(json!({"@odata.context": context, "value": items, "@odata.nextLink": format!("{base}?$skiptoken=page-2")}))
        .into_response()
}

async fn messages(
    State(graph): State<Shared>,
    headers: HeaderMap,
    Path((mailbox, folder)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(mailbox, MAILBOX);
    if !params.contains_key("$skiptoken") && !params.contains_key("$deltatoken") {
        assert!(params["$select"].contains("conversationId"), "{params:?}");
    }
    let mut graph = graph.lock().unwrap();
    delta(
        &mut graph,
        &headers,
        &params,
        &folder,
        &format!("/users/{mailbox}/mailFolders/{folder}/messages/delta"),
    )
}

async fn calendar(
    State(graph): State<Shared>,
    headers: HeaderMap,
    Path(mailbox): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(mailbox, MAILBOX);
    let mut graph = graph.lock().unwrap();
    if graph.windowed {
        return windowed_calendar(&mut graph, &params);
    }
    delta(
        &mut graph,
        &headers,
        &params,
        "calendar",
        &format!("/users/{mailbox}/calendarView/delta"),
    )
}

async fn fake_graph() -> (String, Shared) {
    let graph: Shared = Arc::default();
    let app = Router::new()
        .route("/tenant/oauth2/v2.0/token", post(token))
        .route(
            "/v1.0/users/{mailbox}/mailFolders/{folder}/messages/delta",
            get(messages),
        )
        .route("/v1.0/users/{mailbox}/calendarView/delta", get(calendar))
        .with_state(graph.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    graph.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, graph)
}

fn who(address: &str) -> Value {
    json!({"emailAddress": {"name": address, "address": address}})
}

fn at(hours_ago: i64) -> String {
    (Utc::now() - Duration::hours(hours_ago))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn sent(id: &str, to: &[&str], cc: &[&str], conversation: &str, hours_ago: i64) -> Value {
    json!({"@odata.etag": "W/\"1\"", "id": id, "subject": format!("About {id}"), "from": who(MAILBOX),
           "toRecipients": to.iter().map(|a| who(a)).collect::<Vec<_>>(), "ccRecipients": cc.iter().map(|a| who(a)).collect::<Vec<_>>(),
           "sentDateTime": at(hours_ago), "receivedDateTime": at(hours_ago), "conversationId": conversation})
}

fn received(id: &str, from: &str, conversation: &str, hours_ago: i64) -> Value {
    json!({"@odata.etag": "W/\"1\"", "id": id, "subject": format!("RE: {id}"), "from": who(from),
           "toRecipients": [who(MAILBOX)], "ccRecipients": [], "sentDateTime": at(hours_ago),
           "receivedDateTime": at(hours_ago), "conversationId": conversation})
}

fn meeting(id: &str, attendee: &str, start: DateTime<Utc>, minutes: i64, cancelled: bool) -> Value {
    let time =
        |at: DateTime<Utc>| json!({"dateTime": at.format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": "UTC"});
    json!({"id": id, "subject": format!("Meeting {id}"), "isCancelled": cancelled, "organizer": who(MAILBOX),
           "attendees": [{"type": "required", "status": {"response": "accepted"}, "emailAddress": {"address": attendee, "name": attendee}}],
           "start": time(start), "end": time(start + Duration::minutes(minutes))})
}

async fn outlook_events(system: &TestSystem) -> Vec<(String, Value)> {
    sqlx::query_as(
        "SELECT event_type, payload FROM events WHERE metadata ->> 'source' = 'outlook' ORDER BY global_position",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn mail_and_meetings_become_activities_with_real_replies_once() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    let since = Utc::now() - Duration::days(90);
    let acme = system.onboard("Acme", "Enterprise", "300000", csm, since).await;
    let beta = system.onboard("Beta", "SMB", "9000", csm, since).await;
    // Both onboarded with the same Salesforce id by the helper: give Beta its own.
    system
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/customers/{beta}"),
            Some(&json!({"salesforce_id": "0015g00000BetaXAAQ"})),
        )
        .await;
    let priya = add_stakeholder(&system, acme, "Priya", "priya@acme.example").await;
    let sam = add_stakeholder(&system, beta, "Sam", "sam@beta.example").await;
    system.caught_up().await;

    let (base, graph) = fake_graph().await;
    {
        let mut graph = graph.lock().unwrap();
        graph.pending.insert(
            "sentitems".into(),
            vec![
                sent("M1", &["priya@acme.example"], &[], "C1", 10),
                sent("M2", &["friend@mail.example"], &[], "C9", 9),
                sent("M5", &["sam@beta.example"], &["colleague@vendor.example"], "C2", 8),
            ],
        );
        graph.pending.insert(
            "inbox".into(),
            vec![
                received("M3", "priya@acme.example", "C1", 7),
                received("M4", "newperson@beta.example", "C4", 6),
                // Malformed: no sender.
                json!({"id": "M7", "subject": "?", "toRecipients": [who(MAILBOX)], "receivedDateTime": at(5), "conversationId": "C7"}),
            ],
        );
        graph.expire_next = true;
        graph.throttle_next = true;
        let now = Utc::now();
        graph.pending.insert(
            "calendar".into(),
            vec![
                meeting("E1", "priya@acme.example", now - Duration::hours(30), 60, false),
                meeting("E2", "sam@beta.example", now + Duration::hours(20), 45, false),
                meeting("E3", "priya@acme.example", now + Duration::hours(40), 30, true),
            ],
        );
    }
    let settings = MicrosoftSettings {
        token_url: Some(format!("{base}/tenant/oauth2/v2.0/token")),
        client_id: "app-id".into(),
        client_secret: Secret::new("m365-secret"),
        graph_url: format!("{base}/v1.0"),
        mailboxes: MAILBOX.into(),
        calendar_days: 30,
        interval_seconds: 60.0,
    };
    let handlers = command_service::handlers(&system.pool);
    let connector = Microsoft365::new(settings).unwrap();
    let metrics = ConnectorMetrics::unregistered();

    let first = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, "succeeded", "{first:?}");
    // M1, M5, M3, M4, E1, and the correction M3 makes to M1; M2 concerns no customer.
    assert_eq!(first.counts.applied, 6, "{first:?}");
    assert_eq!(first.counts.ignored, 1, "{first:?}");
    assert_eq!(first.counts.skipped, 1, "{first:?}");
    assert_eq!(
        (
            first.counts.skips[0].record_id.as_str(),
            first.counts.skips[0].code.as_str()
        ),
        ("M7", "malformed_record")
    );
    // The throttled request waited its second; the refused token was renewed once.
    assert_eq!(graph.lock().unwrap().tokens, 2);
    assert!(graph
        .lock()
        .unwrap()
        .prefer
        .iter()
        .all(|p| p == "outlook.timezone=\"UTC\""));

    let events = outlook_events(&system).await;
    let logged: Vec<&Value> = events
        .iter()
        .filter(|(kind, _)| kind == "ActivityLogged")
        .map(|(_, payload)| &payload["ActivityLogged"])
        .collect();
    assert_eq!(logged.len(), 5, "{events:?}");
    let by_subject = |subject: &str| logged.iter().find(|a| a["subject"] == subject).copied().unwrap();
    let m1 = by_subject("About M1");
    assert_eq!(
        (m1["kind"].as_str(), m1["direction"].as_str()),
        (Some("email"), Some("outbound"))
    );
    assert_eq!(m1["participants"], json!([priya]));
    let m5 = by_subject("About M5");
    assert_eq!(m5["participants"], json!([sam]), "the colleague is no participant");
    let m4 = by_subject("RE: M4");
    assert_eq!(m4["direction"], "inbound");
    assert_eq!(
        m4["participants"],
        json!([]),
        "a new address at Beta's domain is Beta's, no stakeholder yet"
    );
    let e1 = by_subject("Meeting E1");
    assert_eq!(
        (e1["kind"].as_str(), e1["duration_minutes"].as_u64()),
        (Some("meeting"), Some(60))
    );
    let corrected: Vec<&Value> = events
        .iter()
        .filter(|(kind, _)| kind == "ActivityCorrected")
        .map(|(_, payload)| &payload["ActivityCorrected"])
        .collect();
    assert_eq!(corrected.len(), 1, "{events:?}");
    assert_eq!(corrected[0]["activity_id"], m1["activity_id"]);
    assert_eq!(corrected[0]["response_received"], true);
    assert_eq!(corrected[0]["response_time_hours"], 3.0);

    // The upcoming meeting is Beta's next scheduled touch, not an activity; the cancelled one is nothing.
    system.caught_up().await;
    let touch = system
        .graphql(
            "query($b: UUID!, $a: UUID!) { b: customer(id: $b) { nextScheduledTouch { subject direction source } }
               a: customer(id: $a) { nextScheduledTouch { subject } } }",
            json!({"b": beta, "a": acme}),
        )
        .await;
    assert_eq!(
        touch["b"]["nextScheduledTouch"],
        json!({"subject": "Meeting E2", "direction": "outbound", "source": "microsoft365"})
    );
    assert_eq!(touch["a"]["nextScheduledTouch"], Value::Null);

    // Again: the delta links say nothing changed, and nothing is appended.
    let before = outlook_events(&system).await.len();
    let again = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.counts.applied, again.counts.records_read), (0, 0), "{again:?}");
    assert_eq!(outlook_events(&system).await.len(), before);

    // Sam answers M5 seven hours later: the reply is logged and M5 corrected.
    graph
        .lock()
        .unwrap()
        .pending
        .insert("inbox".into(), vec![received("M6", "sam@beta.example", "C2", 1)]);
    let reply = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.counts.applied, 2, "{reply:?}");
    let events = outlook_events(&system).await;
    let last = &events.last().unwrap().1["ActivityCorrected"];
    assert_eq!(last["activity_id"], m5["activity_id"]);
    assert_eq!(last["response_time_hours"], 7.0);

    // Once the meeting has ended it becomes a meeting activity and stops being scheduled.
    sqlx::query(
        "UPDATE scheduled_touches SET starts_at = now() - interval '2 hours', ends_at = now() - interval '75 minutes'",
    )
    .execute(&system.pool)
    .await
    .unwrap();
    let settled = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.counts.applied, 1, "{settled:?}");
    let events = outlook_events(&system).await;
    let met = &events.last().unwrap().1["ActivityLogged"];
    assert_eq!(
        (met["subject"].as_str(), met["duration_minutes"].as_u64()),
        (Some("Meeting E2"), Some(45))
    );
    assert_eq!(met["participants"], json!([sam]));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM scheduled_touches")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    system.stop().await;
}

async fn add_stakeholder(system: &TestSystem, customer: uuid::Uuid, name: &str, email: &str) -> uuid::Uuid {
    uuid(
        &system
            .post_ok(
                &format!("/api/v1/customers/{customer}/stakeholders"),
                &json!({"name": name, "role": "Director", "level": "executive", "email": email}),
            )
            .await["stakeholder_id"],
    )
}

/// Graph keeps a `calendarView` delta query's first window for good, so the connector moves the
/// window on as time passes: once less than half its look-ahead is left, it reads the old
/// query's last changes and starts a new query over now ± the days. Over three windows every
/// meeting is read as it comes into reach, and none is appended twice.
#[tokio::test]
async fn the_calendar_window_moves_with_time_and_no_meeting_is_appended_twice() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    // The connector's clock starts 100 days ago, so every meeting it reads has happened.
    let start = Utc::now() - Duration::days(100);
    let acme = system
        .onboard("Acme", "Enterprise", "300000", csm, start - Duration::days(60))
        .await;
    add_stakeholder(&system, acme, "Priya", "priya@acme.example").await;
    system.caught_up().await;

    let (base, graph) = fake_graph().await;
    let day = |n: i64| start + Duration::days(n) + Duration::hours(10);
    {
        let mut graph = graph.lock().unwrap();
        graph.windowed = true;
        for (id, at) in [("W1", 5), ("W2", 25), ("W3", 45), ("W4", 80)] {
            graph.put_meeting(meeting(id, "priya@acme.example", day(at), 30, false));
        }
    }
    let clock = Arc::new(Mutex::new(start));
    let settings = MicrosoftSettings {
        token_url: Some(format!("{base}/tenant/oauth2/v2.0/token")),
        client_id: "app-id".into(),
        client_secret: Secret::new("m365-secret"),
        graph_url: format!("{base}/v1.0"),
        mailboxes: MAILBOX.into(),
        calendar_days: 30,
        interval_seconds: 60.0,
    };
    let read = clock.clone();
    let connector = Microsoft365::new(settings)
        .unwrap()
        .with_clock(Arc::new(move || *read.lock().unwrap()));
    let handlers = command_service::handlers(&system.pool);
    let metrics = ConnectorMetrics::unregistered();
    let meetings_logged = || async {
        let mut subjects: Vec<String> = outlook_events(&system)
            .await
            .iter()
            .filter(|(kind, _)| kind == "ActivityLogged")
            .map(|(_, payload)| payload["ActivityLogged"]["subject"].as_str().unwrap().to_owned())
            .collect();
        subjects.sort();
        subjects
    };
    // Runs at each day of the connector's clock; what is logged after each.
    let mut seen = Vec::new();
    for (at, added) in [
        (0, None),
        (10, Some(("W5", 12))),
        (20, None),
        (50, None),
        (51, None),
        (70, None),
    ] {
        *clock.lock().unwrap() = start + Duration::days(at);
        if let Some((id, on)) = added {
            // A meeting booked in the current window after its first read: the delta link
            // brings it.
            graph
                .lock()
                .unwrap()
                .put_meeting(meeting(id, "priya@acme.example", day(on), 30, false));
        }
        let record = connectors::run_once(&connector, &handlers, &metrics)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, "succeeded", "{record:?}");
        seen.push((at, meetings_logged().await));
    }
    let expect = |ids: &[&str]| ids.iter().map(|id| format!("Meeting {id}")).collect::<Vec<_>>();
    assert_eq!(
        seen,
        [
            (0, expect(&["W1", "W2"])),
            (10, expect(&["W1", "W2", "W5"])),
            // 10 days of look-ahead left: a new window over days -10 .. 50 reaches W3.
            (20, expect(&["W1", "W2", "W3", "W5"])),
            (50, expect(&["W1", "W2", "W3", "W5"])),
            (51, expect(&["W1", "W2", "W3", "W5"])),
            // The window of day 50 (20 .. 80) ended too soon for W4; the one of day 70 reaches it.
            (70, expect(&["W1", "W2", "W3", "W4", "W5"])),
        ]
    );
    let windows: Vec<(i64, i64)> = graph
        .lock()
        .unwrap()
        .windows
        .iter()
        .map(|(from, to)| {
            // Whole days from the start (the request's instants are cut to the second).
            let days = |at: DateTime<Utc>| ((at - start).num_seconds() as f64 / 86_400.0).round() as i64;
            (days(*from), days(*to))
        })
        .collect();
    assert_eq!(windows, [(-30, 30), (-10, 50), (20, 80), (40, 100)]);
    system.stop().await;
}
