//! Alerts that reach a person: e-mail through a local SMTP sink started here, Slack through a
//! local server answering `chat.postMessage` as Slack documents it, webhooks to a receiver that
//! fails twice, the daily digest, and Slack's signed requests (the Acknowledge button and the
//! `/cstrack` slash command) accepted when signed and refused when replayed or forged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use events::metadata::Role;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use tests::{eventually, token, uuid, TestSystem, SLACK_SIGNING_SECRET};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Messages an SMTP sink received: (recipients, raw message).
type Mailbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A minimal SMTP server (RFC 5321: EHLO, MAIL, RCPT, DATA, QUIT) keeping what it receives.
async fn smtp_sink() -> (u16, Mailbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailbox: Mailbox = Arc::default();
    let kept = mailbox.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read);
                write.write_all(b"220 sink ESMTP ready\r\n").await.ok();
                let (mut recipients, mut line) = (Vec::new(), String::new());
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "RCPT" => {
                            recipients.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                            b"250 OK\r\n"
                        }
                        "DATA" => {
                            write.write_all(b"354 end with .\r\n").await.ok();
                            let mut message = String::new();
                            loop {
                                line.clear();
                                if lines.read_line(&mut line).await.unwrap_or(0) == 0 || line == ".\r\n" {
                                    break;
                                }
                                message.push_str(&line);
                            }
                            kept.lock().unwrap().push((std::mem::take(&mut recipients), message));
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.ok();
                            return;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    write.write_all(answer).await.ok();
                }
            });
        }
    });
    (port, mailbox)
}

#[derive(Default)]
struct Receivers {
    /// Slack `chat.postMessage` bodies.
    slack: Vec<Value>,
    /// Webhook requests: (headers, body) of every attempt.
    hooks: Vec<(HeaderMap, Vec<u8>)>,
    /// Attempts answered 500 so far, per delivery id.
    failed: std::collections::HashMap<String, u32>,
    slack_throttled: bool,
}

type Shared = Arc<Mutex<Receivers>>;

/// `chat.postMessage`, rate limited once (429 with `Retry-After: 1`, as Slack answers).
async fn post_message(State(shared): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer xoxb-test-token") {
        return Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    let mut shared = shared.lock().unwrap();
    if !shared.slack_throttled {
        shared.slack_throttled = true;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
    }
    let channel = body["channel"].clone();
    shared.slack.push(body);
    Json(json!({"ok": true, "channel": channel, "ts": "1764590400.000100"})).into_response()
}

/// A receiver that answers 500 to the first two attempts of each delivery.
async fn hook(State(shared): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let mut shared = shared.lock().unwrap();
    let delivery = headers
        .get("x-cstrack-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    shared.hooks.push((headers, body.to_vec()));
    let failed = shared.failed.entry(delivery).or_default();
    if *failed < 2 {
        *failed += 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn receivers() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route("/hook", post(hook))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, shared)
}

fn slack_signature(timestamp: i64, body: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

async fn slack_request(system: &TestSystem, path: &str, body: &str, timestamp: i64, signature: &str) -> (u16, Value) {
    let response = system
        .http
        .post(format!("{}{path}", system.command_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header("x-slack-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A request signed now, as Slack signs it.
async fn signed_slack_request(system: &TestSystem, path: &str, body: &str) -> (u16, Value) {
    let now = Utc::now().timestamp();
    slack_request(
        system,
        path,
        body,
        now,
        &slack_signature(now, body, SLACK_SIGNING_SECRET),
    )
    .await
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn alerts_reach_email_slack_webhooks_and_digests_once_and_slack_acts_on_them() {
    let mut system = TestSystem::spawn().await.unwrap();
    let (smtp_port, mailbox) = smtp_sink().await;
    let (base, shared) = receivers().await;
    system
        .reconfigure_projection(|settings| {
            settings.notifications.smtp_host = Some("127.0.0.1".into());
            settings.notifications.smtp_port = smtp_port;
            settings.notifications.smtp_security = "none".into();
            settings.notifications.slack_bot_token = Some("xoxb-test-token".into());
            settings.notifications.slack_api_url = format!("{base}/api");
            // Digests are sent below, on purpose.
            settings.notifications.digest_hour = 24;
        })
        .await
        .unwrap();
    let dana = system.register_csm("Dana").await;
    let acme = system
        .onboard(
            "Acme",
            "Enterprise",
            "300000",
            dana,
            Utc::now() - chrono::Duration::days(90),
        )
        .await;

    // Preferences: Dana by e-mail and Slack at once, Maria (a manager) by a daily digest.
    let dana_token = token(Role::Csm, "dana", None);
    let preferences = json!({"csm_id": dana, "email": "dana@example.com", "slack_user_id": "U0DANA1",
                             "channels": ["email", "slack"], "kinds": ["health_red", "partner_report_submitted"]});
    let (status, answer) = system
        .send_as(
            &dana_token,
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(&preferences),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let maria_token = token(Role::Manager, "maria", None);
    let digest =
        json!({"email": "maria@example.com", "channels": ["email"], "mode": "digest", "kinds": ["health_red"]});
    let (status, answer) = system
        .send_as(
            &maria_token,
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(&digest),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    // Bad preferences are refused with the field, and change nothing.
    for (body, field) in [
        (json!({"channels": ["pager"]}), "channels"),
        (json!({"channels": ["email"]}), "email"),
        (json!({"kinds": ["everything"]}), "kinds"),
        (json!({"slack_user_id": "dana"}), "slack_user_id"),
        (json!({"mode": "hourly"}), "mode"),
    ] {
        let (status, answer) = system
            .send_as(
                &maria_token,
                Method::PUT,
                "/api/v1/notification-preferences",
                Some(&body),
            )
            .await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(answer["fields"].get(field).is_some(), "{body}: {answer}");
    }
    let (_, kept) = system
        .send_as(&maria_token, Method::GET, "/api/v1/notification-preferences", None)
        .await;
    assert_eq!(kept["mode"], "digest", "{kept}");
    let partner = token(Role::Partner, "pat", Some(uuid::Uuid::now_v7()));
    let (status, _) = system
        .send_as(
            &partner,
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 403);

    // A webhook for red health, as alert and as event.
    let (status, answer) = system
        .post(
            "/api/v1/webhooks",
            &json!({"url": format!("{base}/hook"), "kinds": ["alert.health_red", "event.HealthScoreRecorded"]}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let webhook = uuid(&answer["webhook_id"]);
    let secret = answer["secret"].as_str().unwrap().to_owned();
    for (body, status_wanted) in [
        (json!({"url": "ftp://example.com", "kinds": ["alert.*"]}), 422),
        (json!({"url": format!("{base}/hook"), "kinds": ["alert.sunny"]}), 422),
        (json!({"url": format!("{base}/hook"), "kinds": []}), 422),
    ] {
        let (status, answer) = system.post("/api/v1/webhooks", &body).await;
        assert_eq!(status, status_wanted, "{body}: {answer}");
    }
    let (status, _) = system
        .send_as(
            &dana_token,
            Method::POST,
            "/api/v1/webhooks",
            Some(&json!({"url": format!("{base}/hook"), "kinds": ["alert.*"]})),
        )
        .await;
    assert_eq!(status, 403);

    // A new subscription takes the events published about a second after it is made (the
    // intake reads the webhooks and binds their queue every second).
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // Health turns red: one alert, told once through each channel.
    system.record_health(acme, 35.0, Utc::now().date_naive()).await;
    eventually(Duration::from_secs(30), || async {
        let shared = shared.lock().unwrap();
        let delivered = shared.hooks.len() >= 6;
        delivered && !shared.slack.is_empty() && !mailbox.lock().unwrap().is_empty()
    })
    .await
    .expect("the alert reaches e-mail, Slack and the webhook");
    let alert_id: uuid::Uuid = sqlx::query_scalar("SELECT alert_id FROM alerts WHERE kind = 'health_red'")
        .fetch_one(&system.pool)
        .await
        .unwrap();

    let mail = mailbox.lock().unwrap().clone();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].0, ["dana@example.com"]);
    assert!(
        mail[0].1.contains("Subject: [cstrack] Acme: health turned red (35)"),
        "{}",
        mail[0].1
    );
    assert!(
        mail[0].1.contains("text/plain") && mail[0].1.contains("text/html"),
        "{}",
        mail[0].1
    );

    let slack = shared.lock().unwrap().slack.clone();
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert_eq!(slack[0]["channel"], "U0DANA1");
    // The first post was rate limited: the retry waited the second Slack asked for.
    let slack_log: Vec<(i32, Option<i32>, Option<f64>)> = sqlx::query_as(
        "SELECT a.attempt, a.status_code, extract(epoch FROM a.at - lag(a.at) OVER (ORDER BY a.attempt))::float8
           FROM notification_attempts a JOIN notification_deliveries d USING (delivery_id)
          WHERE d.channel = 'slack' ORDER BY a.attempt",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert_eq!(slack_log.len(), 2, "{slack_log:?}");
    assert_eq!(
        (slack_log[0].1, slack_log[1].1),
        (Some(429), Some(200)),
        "{slack_log:?}"
    );
    assert!(slack_log[1].2.unwrap() >= 0.95, "{slack_log:?}");
    let button = &slack[0]["blocks"][2]["elements"][0];
    assert_eq!(button["action_id"], "acknowledge");
    assert_eq!(button["value"], alert_id.to_string());

    // The webhook failed twice for each delivery and got each on the third try; every body is
    // signed with the webhook's secret.
    let hooks = shared.lock().unwrap().hooks.clone();
    let mut delivered: Vec<String> = Vec::new();
    for (headers, body) in &hooks {
        let signature = headers["x-cstrack-signature"].to_str().unwrap();
        let (t, v1) = signature.split_once(",v1=").unwrap();
        let t = t.trim_start_matches("t=");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        assert_eq!(hex::encode(mac.finalize().into_bytes()), v1);
        let body: Value = serde_json::from_slice(body).unwrap();
        delivered.push(body["type"].as_str().unwrap().to_owned());
    }
    delivered.sort();
    assert_eq!(
        delivered,
        [
            "alert.health_red",
            "alert.health_red",
            "alert.health_red",
            "event.HealthScoreRecorded",
            "event.HealthScoreRecorded",
            "event.HealthScoreRecorded"
        ]
    );
    let (status, log) = system
        .send(Method::GET, &format!("/api/v1/webhooks/{webhook}/deliveries"), None)
        .await;
    assert_eq!(status, 200);
    for delivery in log["deliveries"].as_array().unwrap() {
        assert_eq!(delivery["status"], "delivered", "{log}");
        assert_eq!(delivery["attempts"], 3, "{log}");
        let codes: Vec<&Value> = delivery["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["status_code"])
            .collect();
        assert_eq!(codes, [&json!(500), &json!(500), &json!(200)], "{log}");
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        shared.lock().unwrap().hooks.len(),
        6,
        "nothing is sent again once delivered"
    );

    // A redelivered alert (at least once from the broker) adds nothing.
    let body = json!({"alert_id": alert_id, "kind": "health_red", "csm_id": dana, "customer_id": acme});
    let added = projection_service::notify::intake(&system.pool, &alert_id.to_string(), "alert.health_red", &body)
        .await
        .unwrap();
    assert_eq!(added, 0);

    // Maria's digest: one message with the alert in it, once.
    let sender = projection_service::notify::Sender::new(
        system.pool.clone(),
        projection_service::notify::NotificationSettings {
            smtp_host: Some("127.0.0.1".into()),
            smtp_port,
            smtp_security: "none".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(sender.send_digests().await.unwrap(), 1);
    assert_eq!(sender.send_digests().await.unwrap(), 0);
    let mail = mailbox.lock().unwrap().clone();
    assert_eq!(mail.len(), 2);
    assert_eq!(mail[1].0, ["maria@example.com"]);
    assert!(mail[1].1.contains("Your daily digest: 1 alerts"), "{}", mail[1].1);
    assert!(mail[1].1.contains("Acme: health turned red (35)"), "{}", mail[1].1);

    // Slack's Acknowledge button: signed, it acknowledges as Dana; replayed or forged, refused.
    let payload = json!({"type": "block_actions", "user": {"id": "U0DANA1", "username": "dana"},
        "actions": [{"action_id": "acknowledge", "value": alert_id.to_string(), "type": "button"}]});
    let body = form(&[("payload", &payload.to_string())]);
    let now = Utc::now().timestamp();
    let signed = slack_signature(now, &body, SLACK_SIGNING_SECRET);
    let (status, answer) = slack_request(&system, "/slack/interactions", &body, now, &signed).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["text"], "Alert acknowledged by dana.");
    let (status, _) = slack_request(&system, "/slack/interactions", &body, now, &signed).await;
    assert_eq!(status, 401, "a replay is refused");
    let forged = slack_signature(now, &body, "not-the-secret");
    let (status, _) = slack_request(&system, "/slack/interactions", &body, now, &forged).await;
    assert_eq!(status, 401, "a forged signature is refused");
    let old = now - 600;
    let (status, _) = slack_request(
        &system,
        "/slack/interactions",
        &body,
        old,
        &slack_signature(old, &body, SLACK_SIGNING_SECRET),
    )
    .await;
    assert_eq!(status, 401, "an old request is refused");
    system.caught_up().await;
    let alerts = system
        .graphql(
            "query($c: UUID) { alerts(customerId: $c) { edges { node { alertId acknowledgedBy } } } }",
            json!({"c": acme}),
        )
        .await;
    let acknowledged: Vec<&Value> = alerts["alerts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|edge| edge["node"]["alertId"] == alert_id.to_string())
        .collect();
    assert_eq!(acknowledged[0]["node"]["acknowledgedBy"], "dana", "{alerts}");
    let source: String = sqlx::query_scalar(
        "SELECT metadata ->> 'source' FROM events WHERE aggregate_type = 'Alert' AND aggregate_id = $1",
    )
    .bind(alert_id.to_string())
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(source, "slack");

    // `/cstrack Acme` answers with the account's coverage and health.
    let body = form(&[("command", "/cstrack"), ("text", "acme"), ("user_id", "U0DANA1")]);
    let (status, answer) = signed_slack_request(&system, "/slack/commands", &body).await;
    assert_eq!(status, 200, "{answer}");
    let text = answer["blocks"][0]["text"]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("*Acme* · Enterprise · ARR 300000"), "{answer}");
    assert!(
        text.contains("Coverage ") && text.contains("Health 35 (red)"),
        "{answer}"
    );
    let body = form(&[("command", "/cstrack"), ("text", "acme"), ("user_id", "U0NOBODY")]);
    let (status, answer) = signed_slack_request(&system, "/slack/commands", &body).await;
    assert_eq!(status, 200);
    assert!(answer["text"].as_str().unwrap().contains("not linked"), "{answer}");

    // A partner's submitted status report is a new alert for the CSM.
    let partner_id = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await["partner_id"]);
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/partners"),
            &json!({"partner_id": partner_id}),
        )
        .await;
    let partner = token(Role::Partner, "pat", Some(partner_id));
    let report = json!({"period_start": "2026-11-01", "period_end": "2026-11-30", "overall_status": "at_risk", "summary": "Slipping"});
    let (status, answer) = system
        .send_as(
            &partner,
            Method::POST,
            &format!("/api/v1/customers/{acme}/partner-reports"),
            Some(&report),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let report_id = uuid(&answer["report_id"]);
    let (status, answer) = system
        .send_as(
            &partner,
            Method::POST,
            &format!("/api/v1/customers/{acme}/partner-reports/{report_id}/submit"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    eventually(Duration::from_secs(30), || async {
        mailbox
            .lock()
            .unwrap()
            .iter()
            .any(|(_, message)| message.contains("partner status report"))
    })
    .await
    .expect("the CSM is told of the submitted report");
    let raised: Vec<(String, Value)> =
        sqlx::query_as("SELECT message, detail FROM alerts WHERE kind = 'partner_report_submitted'")
            .fetch_all(&system.pool)
            .await
            .unwrap();
    assert_eq!(raised.len(), 1);
    assert_eq!(
        raised[0].0,
        "Acme: partner status report for 2026-11-01 to 2026-11-30 submitted (at_risk)"
    );
    assert_eq!(raised[0].1["report_id"], report_id.to_string());
    system.stop().await;
}

/// Events waiting in the webhook queue (none is taken while the projection service is down).
async fn queued_for_webhooks(channel: &lapin::Channel, system: &TestSystem) -> (u32, u32) {
    let queue = channel
        .queue_declare(
            system.topology().webhook_events_queue().as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    (queue.message_count(), queue.consumer_count())
}

/// The broker copies an event into the webhook queue only while a live webhook subscribes to its
/// type: the intake binds the queue to what the webhooks name, adds a binding for a new
/// subscription while it runs, and removes on start-up what a removed webhook or an earlier
/// version (which took every event) left bound.
#[tokio::test]
async fn only_the_events_a_webhook_subscribes_to_are_queued_for_webhooks() {
    let mut system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Quinn Queue").await;
    let acme = system
        .onboard("Acme", "SMB", "1000", csm, Utc::now() - chrono::Duration::days(30))
        .await;
    let hook = |kinds: Value| json!({"url": "http://127.0.0.1:9/hook", "kinds": kinds});
    system
        .post_ok(
            "/api/v1/webhooks",
            &hook(json!(["event.HealthScoreRecorded", "alert.*"])),
        )
        .await;
    let removed = system
        .post_ok("/api/v1/webhooks", &hook(json!(["event.ActivityLogged"])))
        .await;
    let (status, _) = system
        .send(
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", uuid(&removed["webhook_id"])),
            None,
        )
        .await;
    assert_eq!(status, 200);
    system.caught_up().await;

    let connection = events::service::amqp::connect(tests::AMQP_URL, "test-webhook-bindings")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = system.topology();
    // Down, with the queue bound to every event as an earlier version left it.
    system.kill_every_projection().await;
    channel
        .queue_bind(
            topology.webhook_events_queue().as_str().into(),
            topology.events_exchange().as_str().into(),
            events::topology::ALL_EVENTS.into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    system.relayed_everything().await;
    // Up again: its bindings are set before it consumes.
    system.start_projection().await.unwrap();
    eventually(Duration::from_secs(20), || async {
        queued_for_webhooks(&channel, &system).await.1 > 0
    })
    .await
    .expect("the intake consumes the webhook queue");
    system.kill_every_projection().await;
    let drained = queued_for_webhooks(&channel, &system).await.0;

    // Two activities and a health score: only the score is queued.
    let activity = json!({"kind": "email", "direction": "outbound", "subject": "hello", "occurred_at": Utc::now()});
    for _ in 0..2 {
        system
            .post_ok(&format!("/api/v1/customers/{acme}/activities"), &activity)
            .await;
    }
    system.record_health(acme, 70.0, Utc::now().date_naive()).await;
    system.relayed_everything().await;
    assert_eq!(
        queued_for_webhooks(&channel, &system).await.0 - drained,
        1,
        "only the health score is queued"
    );

    // A subscription made while the intake runs takes the events published from then on.
    system.start_projection().await.unwrap();
    system
        .post_ok("/api/v1/webhooks", &hook(json!(["event.ActivityLogged"])))
        .await;
    eventually(Duration::from_secs(20), || async {
        system
            .post_ok(&format!("/api/v1/customers/{acme}/activities"), &activity)
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let taken: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notification_inbox WHERE kind = 'event.ActivityLogged'")
                .fetch_one(&system.pool)
                .await
                .unwrap();
        taken > 0
    })
    .await
    .expect("the new subscription's events reach the intake");
    connection.close(0, "done".into()).await.ok();
    system.stop().await;
}

/// Requests a receiver got: the path of each.
type Hits = Arc<Mutex<Vec<String>>>;

/// A receiver on `address` that keeps the path of every request and answers `answer` (a
/// redirect to `location` when one is given).
async fn listening(address: &str, location: Option<String>) -> (String, Hits) {
    let hits: Hits = Arc::default();
    let kept = hits.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let kept = kept.clone();
        let location = location.clone();
        async move {
            kept.lock().unwrap().push(uri.path().to_owned());
            match location {
                Some(location) => (StatusCode::TEMPORARY_REDIRECT, [("location", location)]).into_response(),
                None => StatusCode::OK.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(format!("{address}:0")).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, hits)
}

/// Webhooks never call this machine, a private or link-local network or a metadata service,
/// however the address is spelled, unless the operator's allow-list names it (the test system
/// allows 127.0.0.1 alone): registration refuses such a URL, and a delivery checks again, so a
/// stored URL that now points inside, or a redirect to one, reaches nothing.
#[tokio::test]
async fn webhooks_call_no_internal_address_at_registration_delivery_or_redirect() {
    let system = TestSystem::spawn().await.unwrap();
    let internal = format!("http://{}", tests::INTERNAL_ADDRESS);
    for url in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
        "http://metadata.google.internal/computeMetadata/v1/".to_owned(),
        "http://METADATA.google.internal./computeMetadata/v1/".to_owned(),
        // 127.0.0.2 in decimal, hexadecimal and octal.
        "http://2130706434/".to_owned(),
        "http://0x7f000002/".to_owned(),
        "http://0177.0.0.2/".to_owned(),
        "http://[::1]:8081/api/v1/csms".to_owned(),
        "http://[::ffff:169.254.169.254]/".to_owned(),
        "http://localhost:8082/graphql".to_owned(),
        "http://10.0.0.5/hook".to_owned(),
        "https://192.168.1.10/hook".to_owned(),
        format!("{internal}:8081/"),
    ] {
        let (status, answer) = system
            .post("/api/v1/webhooks", &json!({"url": url, "kinds": ["alert.*"]}))
            .await;
        assert_eq!(status, 422, "{url}: {answer}");
        assert_eq!(answer["error"], "internal_address", "{url}: {answer}");
        assert!(answer["fields"]["url"].is_string(), "{url}: {answer}");
    }
    let (status, answer) = system
        .post(
            "/api/v1/webhooks",
            &json!({"url": "http://someone:secret@127.0.0.1:9/hook", "kinds": ["alert.*"]}),
        )
        .await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (422, Some("invalid_url")));
    let listed = system.send(Method::GET, "/api/v1/webhooks", None).await.1;
    assert_eq!(listed["webhooks"], json!([]), "nothing refused was kept");

    // An allowed receiver that redirects inside, and a webhook whose stored URL points inside
    // now (as a name may resolve elsewhere tomorrow): neither reaches the inside receiver.
    let (inside, inside_hits) = listening(tests::INTERNAL_ADDRESS, None).await;
    let (outside, outside_hits) = listening("127.0.0.1", Some(format!("{inside}/redirected"))).await;
    let mut hooks = Vec::new();
    for path in ["/redirects", "/moved"] {
        let (status, answer) = system
            .post(
                "/api/v1/webhooks",
                &json!({"url": format!("{outside}{path}"), "kinds": ["event.HealthScoreRecorded"]}),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
        hooks.push(uuid(&answer["webhook_id"]));
    }
    sqlx::query("UPDATE webhooks SET url = $1 WHERE webhook_id = $2")
        .bind(format!("{inside}/moved"))
        .bind(hooks[1])
        .execute(&system.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let csm = system.register_csm("Rita Redirect").await;
    let acme = system
        .onboard("Acme", "SMB", "1000", csm, Utc::now() - chrono::Duration::days(30))
        .await;
    system.record_health(acme, 80.0, Utc::now().date_naive()).await;
    let errors = |hook: uuid::Uuid| {
        let system = &system;
        async move {
            let log = system
                .send(Method::GET, &format!("/api/v1/webhooks/{hook}/deliveries"), None)
                .await
                .1;
            log["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|delivery| delivery["log"].as_array().unwrap().clone())
                .map(|attempt| attempt["error"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<String>>()
        }
    };
    eventually(Duration::from_secs(30), || async {
        errors(hooks[0]).await.len() >= 2 && errors(hooks[1]).await.len() >= 2
    })
    .await
    .expect("both deliveries are attempted and retried");
    for hook in &hooks {
        for error in errors(*hook).await {
            assert!(
                error.contains("127.0.0.2") && error.contains("loopback"),
                "the attempt says why: {error}"
            );
        }
    }
    assert_eq!(*outside_hits.lock().unwrap().first().unwrap(), "/redirects");
    assert!(
        !outside_hits.lock().unwrap().contains(&"/moved".to_owned()),
        "the moved webhook is not sent anywhere"
    );
    assert_eq!(
        *inside_hits.lock().unwrap(),
        Vec::<String>::new(),
        "nothing reached the internal address"
    );
    system.stop().await;
}

/// An admin's test delivery reaches the webhook signed, and shows in its log; each user's
/// time zone is checked against PostgreSQL's names, and their digest goes at the digest hour of
/// their own day, once that day.
#[tokio::test]
async fn a_test_delivery_reaches_the_webhook_and_digests_keep_each_users_day() {
    let system = TestSystem::spawn().await.unwrap();
    let (base, hits) = listening("127.0.0.1", None).await;
    let hook = system
        .post_ok(
            "/api/v1/webhooks",
            &json!({"url": format!("{base}/receiver"), "kinds": ["alert.health_red"]}),
        )
        .await;
    let webhook = uuid(&hook["webhook_id"]);
    let (status, answer) = system
        .send(Method::POST, &format!("/api/v1/webhooks/{webhook}/test"), None)
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["kind"], "webhook.test");
    eventually(Duration::from_secs(20), || async {
        let log = system
            .send(Method::GET, &format!("/api/v1/webhooks/{webhook}/deliveries"), None)
            .await
            .1;
        log["deliveries"][0]["status"] == "delivered"
    })
    .await
    .expect("the test delivery is delivered");
    assert_eq!(*hits.lock().unwrap(), ["/receiver"]);
    let log = system
        .send(Method::GET, &format!("/api/v1/webhooks/{webhook}/deliveries"), None)
        .await
        .1;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(log["deliveries"][0]["kind"], "webhook.test");
    assert_eq!(log["deliveries"][0]["delivery_id"], answer["delivery_id"]);
    assert_eq!(log["deliveries"][0]["log"][0]["status_code"], 200);
    // Only admins test, and only a live webhook.
    let csm = token(Role::Csm, "dana", None);
    let path = format!("/api/v1/webhooks/{webhook}/test");
    assert_eq!(system.send_as(&csm, Method::POST, &path, None).await.0, 403);
    system
        .send(Method::DELETE, &format!("/api/v1/webhooks/{webhook}"), None)
        .await;
    assert_eq!(system.send(Method::POST, &path, None).await.0, 404);

    // Time zones: a name PostgreSQL knows, or a refusal naming the field.
    for (user, zone) in [("paris", "Europe/Paris"), ("tokyo", "Asia/Tokyo")] {
        let preferences =
            json!({"email": format!("{user}@example.com"), "channels": ["email"], "mode": "digest", "time_zone": zone});
        let (status, answer) = system
            .send_as(
                &token(Role::Manager, user, None),
                Method::PUT,
                "/api/v1/notification-preferences",
                Some(&preferences),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["time_zone"], zone);
    }
    let (status, answer) = system
        .send_as(
            &token(Role::Manager, "paris", None),
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(&json!({"time_zone": "Mars/Olympus_Mons"})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(answer["fields"]["time_zone"].is_string(), "{answer}");
    assert_eq!(answer["error"], "unknown_time_zone", "{answer}");
    let kept = system
        .send_as(
            &token(Role::Manager, "paris", None),
            Method::GET,
            "/api/v1/notification-preferences",
            None,
        )
        .await
        .1;
    assert_eq!(kept["time_zone"], "Europe/Paris", "a refusal changes nothing");

    // Digests at 08:00 of each user's day.
    let (smtp_port, mailbox) = smtp_sink().await;
    let waiting = |user: &'static str| {
        let pool = system.pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO notification_deliveries (delivery_id, message_id, kind, channel, recipient, mode, payload)
                 VALUES ($1, $2, 'alert.health_red', 'email', $3, 'digest', $4)",
            )
            .bind(uuid::Uuid::now_v7())
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(user)
            .bind(json!({"message": format!("A red score for {user}"), "customer_id": uuid::Uuid::nil()}))
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    waiting("paris").await;
    waiting("tokyo").await;
    let sender = projection_service::notify::Sender::new(
        system.pool.clone(),
        projection_service::notify::NotificationSettings {
            smtp_host: Some("127.0.0.1".into()),
            smtp_port,
            smtp_security: "none".into(),
            digest_hour: 8,
            ..Default::default()
        },
    )
    .unwrap();
    let at = |instant: &str| instant.parse::<chrono::DateTime<Utc>>().unwrap();
    // 06:30 UTC: 07:30 in Paris (not yet), 15:30 in Tokyo.
    assert_eq!(sender.send_digests_due(at("2026-12-07T06:30:00Z")).await.unwrap(), 1);
    assert_eq!(mailbox.lock().unwrap()[0].0, ["tokyo@example.com"]);
    // 07:30 UTC: 08:30 in Paris.
    assert_eq!(sender.send_digests_due(at("2026-12-07T07:30:00Z")).await.unwrap(), 1);
    assert_eq!(mailbox.lock().unwrap()[1].0, ["paris@example.com"]);
    // A new alert for Tokyo waits for Tokyo's next morning, whatever restarts in between.
    waiting("tokyo").await;
    assert_eq!(sender.send_digests_due(at("2026-12-07T12:00:00Z")).await.unwrap(), 0);
    assert_eq!(sender.send_digests_due(at("2026-12-07T23:30:00Z")).await.unwrap(), 1);
    assert_eq!(mailbox.lock().unwrap()[2].0, ["tokyo@example.com"]);
    assert_eq!(mailbox.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_reminder_reaches_email_and_slack_says_why_and_slack_completes_or_snoozes_it() {
    let mut system = TestSystem::spawn().await.unwrap();
    let (smtp_port, mailbox) = smtp_sink().await;
    let (base, shared) = receivers().await;
    shared.lock().unwrap().slack_throttled = true;
    system
        .reconfigure_projection(|settings| {
            settings.notifications.smtp_host = Some("127.0.0.1".into());
            settings.notifications.smtp_port = smtp_port;
            settings.notifications.smtp_security = "none".into();
            settings.notifications.slack_bot_token = Some("xoxb-test-token".into());
            settings.notifications.slack_api_url = format!("{base}/api");
        })
        .await
        .unwrap();
    let dana = token(Role::Csm, "dana", None);
    let preferences = json!({"email": "dana@example.com", "slack_user_id": "U0DANA1",
                             "channels": ["email", "slack"], "time_zone": "Europe/Berlin"});
    let (status, answer) = system
        .send_as(
            &dana,
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(&preferences),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    // Two reminders due now; the running scheduler fires them.
    let mut reminders = Vec::new();
    for title in ["Call Acme back", "Send the QBR deck"] {
        let (status, made) = system
            .send_as(
                &dana,
                Method::POST,
                "/api/v1/reminders",
                Some(&json!({"title": title, "schedule": {"kind": "once", "at": Utc::now()}})),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        reminders.push(uuid(&made["reminder_id"]));
    }
    eventually(std::time::Duration::from_secs(30), || async {
        shared.lock().unwrap().slack.len() == 2 && mailbox.lock().unwrap().len() == 2
    })
    .await
    .expect("each reminder reaches Slack and e-mail once");
    let slack = shared.lock().unwrap().slack.clone();
    let call = slack
        .iter()
        .find(|m| m["text"] == "Reminder: Call Acme back")
        .expect("the reminder's message");
    assert_eq!(call["channel"], "U0DANA1");
    let why = call["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(why.starts_with("Why: You asked to be reminded on "), "{why}");
    assert!(why.ends_with("(Europe/Berlin)."), "{why}");
    let buttons: Vec<&str> = call["blocks"][3]["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(buttons, ["complete_reminder", "snooze_reminder", "open_customer"]);
    let mail = &mailbox.lock().unwrap()[0];
    assert_eq!(mail.0, ["dana@example.com"]);
    assert!(mail.1.contains("Why: You asked to be reminded on "), "{}", mail.1);

    // Pressing Complete on one and Snooze on the other: each becomes Dana's command.
    for (index, action) in ["complete_reminder", "snooze_reminder"].into_iter().enumerate() {
        let message = slack
            .iter()
            .find(|m| {
                m["blocks"][3]["elements"][0]["value"]
                    .as_str()
                    .unwrap()
                    .contains(&reminders[index].to_string())
            })
            .unwrap();
        let button = message["blocks"][3]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["action_id"] == action)
            .unwrap();
        let payload = json!({"type": "block_actions", "user": {"id": "U0DANA1"},
                             "actions": [{"action_id": action, "value": button["value"]}]});
        let body = form(&[("payload", &payload.to_string())]);
        let (status, answer) = signed_slack_request(&system, "/slack/interactions", &body).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["text"].as_str().unwrap().starts_with("Reminder "), "{answer}");
    }
    system.caught_up().await;
    let states = system
        .graphql_as(
            &dana,
            "{ done: reminders(status: DONE) { nodes { title history { what by reason } } }
               snoozed: reminders(status: SNOOZED) { nodes { title snoozeReason snoozedUntil } } }",
            json!({}),
        )
        .await;
    assert_eq!(states["data"]["done"]["nodes"][0]["title"], "Call Acme back");
    assert_eq!(
        states["data"]["done"]["nodes"][0]["history"][1],
        json!({"what": "completed", "by": "dana", "reason": "completed from Slack"})
    );
    let snoozed = &states["data"]["snoozed"]["nodes"][0];
    assert_eq!(snoozed["snoozeReason"], "snoozed from Slack until tomorrow 09:00");
    // 09:00 in Berlin is 07:00 or 08:00 UTC.
    let until: chrono::DateTime<Utc> = snoozed["snoozedUntil"].as_str().unwrap().parse().unwrap();
    assert!(
        until
            .with_timezone(&chrono_tz::Europe::Berlin)
            .format("%H:%M")
            .to_string()
            == "09:00",
        "{until}"
    );
}
