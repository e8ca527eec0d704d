//! Imports end to end: a real spreadsheet program's .xlsx and a CSV with a byte-order mark,
//! semicolons and quoted newlines; preview writes nothing; a file with errors on several rows
//! reports them all and commits nothing; commit is all or nothing and idempotent; undo at any
//! age restores the reports of before the import while keeping a later edit.

use chrono::{Duration, Utc};
use events::metadata::Role;
use reqwest::Method;
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};

async fn upload(system: &TestSystem, as_token: &str, kind: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    system.upload_import(as_token, kind, name, bytes, None).await
}

async fn event_count(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

/// Every report a CS team reads, as of one pinned day.
async fn reports(system: &TestSystem, as_of: &str) -> Value {
    system
        .graphql(
            "query($d: Date) {
               coverageReport(asOf: $d) { summary { accounts wellCovered underCovered overCovered averageScore arr } }
               engagementMetrics(asOf: $d) { customers averageScore distribution { category customers } }
               csmWorkload(asOf: $d) { csms { accounts arr utilizationPct } averageAccounts portfolioBalancePct }
               executiveSummary(asOf: $d) { current { customers totalArr arrAtRisk colours { colour accounts arr } } }
               customers { edges { node { name arr industry health { score } } } }
             }",
            json!({ "d": as_of }),
        )
        .await
}

fn row<'a>(preview: &'a Value, number: u64) -> &'a Value {
    preview["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["row"] == number)
        .unwrap_or_else(|| panic!("no row {number} in {preview}"))
}

#[tokio::test]
async fn imports_preview_commit_once_and_undo_to_the_reports_of_before() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    let (status, answer) = system
        .post(
            "/api/v1/custom-fields",
            &json!({"key": "segment", "label": "Segment", "field_type": "single_select", "options": ["Strategic", "Growth"]}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let acme = system
        .onboard("Acme", "Enterprise", "100000", csm, Utc::now() - Duration::days(60))
        .await;
    let today = Utc::now().date_naive();
    let yesterday = (today - Duration::days(1)).to_string();
    system.record_health(acme, 80.0, today - Duration::days(10)).await;
    system.caught_up().await;
    let as_of = today.to_string();
    let before = reports(&system, &as_of).await;
    let acme_sfid: String = system
        .graphql(
            "query($id: UUID!) { customer(id: $id) { salesforceId } }",
            json!({"id": acme}),
        )
        .await["customer"]["salesforceId"]
        .as_str()
        .unwrap()
        .to_owned();

    // A file with errors on several rows: all are reported, nothing is appended.
    let events_before = event_count(&system).await;
    let bad = format!(
        "name,salesforce id,tier,arr,csm,contract start,renewal date\n\
         Bad One,0015g00000BadAAAA1,Platinum,100,dana@example.com,2025-01-01,2026-01-01\n\
         Bad Two,0015g00000BadAAAA2,SMB,lots,dana@example.com,2025-01-01,2026-01-01\n\
         Bad Three,0015g00000BadAAAA3,SMB,100,nobody@example.com,2025-01-01,2024-01-01\n\
         Fine,0015g00000FineAAA1,SMB,100,dana@example.com,2025-01-01,2026-01-01\n"
    );
    let (status, preview) = upload(&system, &system.admin, "customers", "bad.csv", bad.into_bytes()).await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(
        preview["counts"],
        json!({"rows": 4, "create": 1, "update": 0, "unchanged": 0, "error": 3})
    );
    assert_eq!(row(&preview, 2)["errors"][0]["column"], "tier");
    assert_eq!(row(&preview, 3)["errors"][0]["column"], "arr");
    assert_eq!(row(&preview, 4)["errors"][0]["column"], "csm");
    assert_eq!(row(&preview, 5)["action"], "create");
    let bad_id = preview["import_id"].as_str().unwrap().to_owned();
    // The errors as a workbook, beside the original cells, read back by openpyxl.
    let response = system
        .http
        .get(format!("{}/api/v1/imports/{bad_id}/errors.xlsx", system.command_url))
        .bearer_auth(&system.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let book = tests::openpyxl(&response.bytes().await.unwrap());
    let errors = &book["Errors"]["rows"];
    assert_eq!((&errors[0][0], &errors[0][1]), (&json!("Sheet"), &json!("Row")));
    assert_eq!(errors[0][9], "Errors");
    assert_eq!(errors.as_array().unwrap().len(), 4, "{book}");
    assert_eq!(errors[1][2], "Bad One");
    assert_eq!(errors[3][1], 4);
    assert!(errors[1][9].as_str().unwrap().starts_with("tier: "), "{book}");
    assert_eq!(book["Errors"]["freeze"], "A2");
    assert_eq!(book["Errors"]["bold_header"], true);
    let (status, refused) = system
        .post(&format!("/api/v1/imports/{bad_id}/commit"), &json!({}))
        .await;
    assert_eq!(
        (status.as_u16(), refused["error"].as_str()),
        (422, Some("import_has_errors")),
        "{refused}"
    );
    assert_eq!(event_count(&system).await, events_before);

    // CSV with a byte-order mark, semicolons and a quoted newline: one update, one create.
    let csv = format!(
        "\u{feff}Account Name;SFDC ID;Tier;Annual Recurring Revenue;CSM Email;Industry;Contract Start;Renewal Date;Segment\n\
         Acme;{acme_sfid};Enterprise;\"$150,000.00\";dana@example.com;\"Retail\nOnline\";{start};{renewal};Strategic\n\
         NewCo;0015g00000NewCAAA1;SMB;12%;dana@example.com;;2025-02-01;2027-02-01;Growth\n",
        start = today - Duration::days(200),
        renewal = today + Duration::days(100),
    );
    let (status, preview) = upload(&system, &system.admin, "customers", "book.csv", csv.into_bytes()).await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(preview["mapping"]["arr"], "Annual Recurring Revenue");
    assert_eq!(preview["mapping"]["salesforce_id"], "SFDC ID");
    assert_eq!(preview["mapping"]["cf.segment"], "Segment");
    // "12%" is a percentage, not an amount: the row is refused until the file is fixed.
    assert_eq!(
        row(&preview, 3)["errors"][0]["column"],
        "Annual Recurring Revenue",
        "{preview}"
    );
    let csv = format!(
        "\u{feff}Account Name;SFDC ID;Tier;Annual Recurring Revenue;CSM Email;Industry;Contract Start;Renewal Date;Segment\n\
         Acme;{acme_sfid};Enterprise;\"$150,000.00\";dana@example.com;\"Retail\nOnline\";{start};{renewal};Strategic\n\
         NewCo;0015g00000NewCAAA1;SMB;\"1.200,50\";dana@example.com;;2025-02-01;2027-02-01;Growth\n",
        start = today - Duration::days(200),
        renewal = today + Duration::days(100),
    );
    let (_, preview) = upload(&system, &system.admin, "customers", "book.csv", csv.into_bytes()).await;
    assert_eq!(
        preview["counts"],
        json!({"rows": 2, "create": 1, "update": 1, "unchanged": 0, "error": 0}),
        "{preview}"
    );
    let changes: Vec<&str> = row(&preview, 2)["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        ["arr", "industry", "contract_start", "renewal_date", "cf.segment"],
        "{preview}"
    );
    assert_eq!(event_count(&system).await, events_before, "a preview writes nothing");
    let import_id = preview["import_id"].as_str().unwrap().to_owned();
    let (status, committed) = system
        .post(&format!("/api/v1/imports/{import_id}/commit"), &json!({}))
        .await;
    assert_eq!(status, 200, "{committed}");
    assert_eq!(committed["status"], "committed");
    let after_commit = event_count(&system).await;
    assert_eq!(after_commit - events_before, committed["events"].as_i64().unwrap());
    let (status, again) = system
        .post(&format!("/api/v1/imports/{import_id}/commit"), &json!({}))
        .await;
    assert_eq!((status.as_u16(), again["status"].as_str()), (200, Some("committed")));
    assert_eq!(
        event_count(&system).await,
        after_commit,
        "committing twice appends nothing"
    );
    let sources: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT metadata ->> 'source', metadata ->> 'correlation_id' FROM events WHERE metadata ->> 'import_id' = $1",
    )
    .bind(&import_id)
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert_eq!(sources, [("import".to_owned(), import_id.clone())]);

    // Health scores come in through an import of their own.
    let health = format!("Salesforce ID,Health Score,Date,Source\n{acme_sfid},35,{yesterday},gainsight\n");
    let (_, preview) = upload(
        &system,
        &system.admin,
        "health_scores",
        "health.csv",
        health.into_bytes(),
    )
    .await;
    let health_import = preview["import_id"].as_str().unwrap().to_owned();
    let (status, _) = system
        .post(&format!("/api/v1/imports/{health_import}/commit"), &json!({}))
        .await;
    assert_eq!(status, 200);

    // Someone edits Acme's industry after the import; the undo keeps that.
    let (status, answer) = system
        .send(
            Method::PATCH,
            &format!("/api/v1/customers/{acme}"),
            Some(&json!({"industry": "Manufacturing"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system.caught_up().await;
    let imported = reports(&system, &as_of).await;
    assert_ne!(imported, before);

    let (status, undone) = system
        .post(&format!("/api/v1/imports/{health_import}/undo"), &json!({}))
        .await;
    assert_eq!(
        (status.as_u16(), undone["status"].as_str()),
        (200, Some("undone")),
        "{undone}"
    );
    let (status, undone) = system
        .post(&format!("/api/v1/imports/{import_id}/undo"), &json!({}))
        .await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["undo"]["retracted"]["customers"], 1, "{undone}");
    assert_eq!(
        undone["undo"]["kept"],
        json!([{"customer_id": acme, "field": "industry", "reason": "changed again after the import; the later value stays"}])
    );
    system.caught_up().await;
    let mut after = reports(&system, &as_of).await;
    // The later edit stays; everything else is as before the import.
    assert_eq!(after["customers"]["edges"][0]["node"]["industry"], "Manufacturing");
    after["customers"]["edges"][0]["node"]["industry"] = before["customers"]["edges"][0]["node"]["industry"].clone();
    assert_eq!(after, before);
    // The events batches appended chain like any others.
    let auditor = token(Role::Auditor, "audrey", None);
    let verified = system
        .graphql_as(
            &auditor,
            "query($c: UUID!) { verifyCustomerHistory(customerId: $c) { intact events brokenAtSequence } }",
            json!({"c": acme}),
        )
        .await;
    assert_eq!(verified["data"]["verifyCustomerHistory"]["intact"], true, "{verified}");
    let (status, history) = system.send(Method::GET, "/api/v1/imports", None).await;
    assert_eq!(status, 200);
    let statuses: Vec<&str> = history["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|import| import["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["undone", "undone", "uploaded", "uploaded"]);
    system.stop().await;
}

#[tokio::test]
async fn a_spreadsheet_programs_workbook_imports_with_typed_cells_and_roles_are_checked() {
    let system = TestSystem::spawn().await.unwrap();
    system.register_csm("Dana").await;
    let (status, _) = system
        .post(
            "/api/v1/custom-fields",
            &json!({"key": "segment", "label": "Segment", "field_type": "single_select", "options": ["Strategic", "Growth"]}),
        )
        .await;
    assert_eq!(status, 201);
    // Written by LibreOffice Calc: real date cells, a number cell and a currency text.
    let workbook = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/customers.xlsx")).unwrap();

    let (status, answer) = upload(
        &system,
        &token(Role::Readonly, "rory", None),
        "customers",
        "customers.xlsx",
        workbook.clone(),
    )
    .await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("forbidden")));
    // A CSM may upload, but onboarding is for management: every row says so, nothing commits.
    let csm = token(Role::Csm, "casey", None);
    let (status, preview) = upload(&system, &csm, "customers", "customers.xlsx", workbook.clone()).await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(preview["counts"]["error"], 2, "{preview}");
    assert_eq!(row(&preview, 2)["errors"][0]["code"], "forbidden");

    let (status, preview) = upload(&system, &system.admin, "customers", "customers.xlsx", workbook).await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(preview["counts"]["create"], 2, "{preview}");
    let import_id = preview["import_id"].as_str().unwrap().to_owned();
    let (status, _) = system
        .post(&format!("/api/v1/imports/{import_id}/commit"), &json!({}))
        .await;
    assert_eq!(status, 200);
    system.caught_up().await;
    let list = system
        .graphql(
            "{ customers { edges { node { customerId name arr contractStart renewalDate customFields { key value } } } } }",
            json!({}),
        )
        .await;
    let nodes: Vec<&Value> = list["customers"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| &edge["node"])
        .collect();
    assert_eq!(nodes[0]["name"], "Globex");
    assert_eq!(nodes[0]["arr"], "12000.00");
    assert_eq!(nodes[1]["name"], "Initech");
    assert_eq!(nodes[1]["arr"], "250000.00");
    assert_eq!(nodes[1]["contractStart"], "2025-01-15");
    assert_eq!(nodes[1]["renewalDate"], "2027-01-15");
    assert_eq!(
        nodes[1]["customFields"],
        json!([{"key": "segment", "value": "Strategic"}])
    );
    let initech = uuid(&nodes[1]["customerId"]);

    // A workbook whose sheets share a header row is one import of all their rows; a sheet
    // with other headers is left out and named.
    use events::service::workbook::{self, Cell, Kind};
    let sheet = |name: &str, days: &[i64]| workbook::Table {
        name: name.into(),
        columns: ["SFDC ID", "Type", "Direction", "Date", "Subject"]
            .iter()
            .map(|title| workbook::column(title, if *title == "Date" { Kind::Date } else { Kind::Text }))
            .collect(),
        rows: days
            .iter()
            .map(|days| {
                vec![
                    Cell::text("0015g00000InitAAA1"),
                    Cell::text("Meeting"),
                    Cell::text("outbound"),
                    Cell::Date(Utc::now().date_naive() - Duration::days(*days)),
                    Cell::text(format!("touch {days}")),
                ]
            })
            .collect(),
    };
    let about = [("Prepared by".to_owned(), "Dana".to_owned())];
    let book = workbook::xlsx(
        "Activities",
        &about,
        &[sheet("January", &[30, 29, 28]), sheet("February", &[3, 2])],
    )
    .unwrap();
    let (status, preview) = upload(&system, &system.admin, "activities", "activities.xlsx", book).await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(preview["ignored_sheets"], json!(["About"]));
    assert_eq!(preview["counts"]["create"], 5, "{preview}");
    assert_eq!(preview["rows"][3]["sheet"], "February");
    assert_eq!(preview["rows"][3]["row"], 2);
    let import_id = preview["import_id"].as_str().unwrap().to_owned();
    let (status, _) = system
        .post(&format!("/api/v1/imports/{import_id}/commit"), &json!({}))
        .await;
    assert_eq!(status, 200);
    system.caught_up().await;
    let timeline = system
        .graphql(
            "query($id: UUID!) { customerTimeline(customerId: $id, first: 10, kinds: [\"activity\"]) { edges { node { summary } } } }",
            json!({"id": initech}),
        )
        .await;
    assert_eq!(
        timeline["customerTimeline"]["edges"].as_array().unwrap().len(),
        5,
        "{timeline}"
    );

    // Over 10,000 data rows in a sheet is refused before anything is planned.
    let mut big = String::from("Salesforce ID,Health Score,Date\n");
    for _ in 0..10_001 {
        big.push_str("0015g00000InitAAA1,50,2026-01-01\n");
    }
    let (status, answer) = upload(&system, &system.admin, "health_scores", "big.csv", big.into_bytes()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("unreadable_file")),
        "{answer}"
    );
    assert!(answer["message"].as_str().unwrap().contains("10000"), "{answer}");
    system.stop().await;
}

/// Uploads and commits a CSV import as the admin; answers its id and its preview.
async fn commit_csv(system: &TestSystem, kind: &str, csv: String) -> (String, Value) {
    let (status, preview) = upload(system, &system.admin, kind, &format!("{kind}.csv"), csv.into_bytes()).await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(preview["counts"]["error"], 0, "{preview}");
    let import_id = preview["import_id"].as_str().unwrap().to_owned();
    let (status, committed) = system
        .post(&format!("/api/v1/imports/{import_id}/commit"), &json!({}))
        .await;
    assert_eq!(status, 200, "{committed}");
    (import_id, preview)
}

/// A move-in made of four files (customers, stakeholders, activities, health scores) is undone
/// whole whatever the order of the undos: an undone import's rows, and the undo's own events,
/// count as never having happened, so the last undo retracts the customers the earlier ones had
/// to keep, and the reports are those of before the move-in. The ids the preview shows for new
/// rows are the ids the commit creates.
#[tokio::test]
async fn a_move_in_of_four_imports_undone_in_any_order_leaves_the_reports_of_before() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    let acme = system
        .onboard("Acme", "Enterprise", "100000", csm, Utc::now() - Duration::days(60))
        .await;
    let today = Utc::now().date_naive();
    system.record_health(acme, 80.0, today - Duration::days(10)).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/stakeholders"),
            &json!({"name": "Priya", "role": "Director", "level": "champion", "email": "priya@acme.example"}),
        )
        .await;
    system.caught_up().await;
    let as_of = today.to_string();
    let people = || async {
        system
            .graphql(
                "query($id: UUID!) { customer(id: $id) { stakeholders { name role level email } } }",
                json!({"id": acme}),
            )
            .await["customer"]["stakeholders"]
            .clone()
    };
    let people_before = people().await;
    let before = reports(&system, &as_of).await;
    let acme_sfid = system
        .graphql(
            "query($id: UUID!) { customer(id: $id) { salesforceId } }",
            json!({"id": acme}),
        )
        .await["customer"]["salesforceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let yesterday = today - Duration::days(1);

    for (round, newest_first) in [(1, true), (2, false)] {
        let sfid = |n: u32| format!("0015g00000Mv{round}{n}AAAA");
        let mut customers = format!(
            "name,salesforce id,tier,arr,csm,contract start,renewal date\n\
             Acme,{acme_sfid},Enterprise,175000,dana@example.com,{start},{renewal}\n",
            start = today - Duration::days(300),
            renewal = today + Duration::days(65),
        );
        // Priya, already Acme's, is promoted by the file: an update.
        let mut stakeholders =
            format!("customer,name,role,level,email\n{acme_sfid},Priya,VP Operations,executive,priya@acme.example\n");
        let mut activities = String::from("customer,kind,direction,occurred at,subject,participants\n");
        let mut health = String::from("customer,score,measured at,source\n");
        for n in 1..=3 {
            customers.push_str(&format!(
                "Moved {round}.{n},{},SMB,{}000,dana@example.com,2025-01-01,2027-01-01\n",
                sfid(n),
                10 * n
            ));
        }
        for (n, customer) in (1..=3).map(|n| (n, sfid(n))).chain([(9, acme_sfid.clone())]) {
            let email = format!("person{round}{n}@example.com");
            stakeholders.push_str(&format!("{customer},Person {n},Director,executive,{email}\n"));
            activities.push_str(&format!(
                "{customer},meeting,outbound,{yesterday},Kick-off {n},{email}\n"
            ));
            health.push_str(&format!("{customer},{},{yesterday},gainsight\n", 30 + n));
        }
        let (customers_import, preview) = commit_csv(&system, "customers", customers).await;
        let previewed: Vec<String> = preview["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["action"] == "create")
            .map(|row| {
                assert_eq!(row["created_id"], row["customer_id"], "{row}");
                row["created_id"].as_str().unwrap().to_owned()
            })
            .collect();
        let mut created: Vec<String> = sqlx::query_scalar(
            "SELECT aggregate_id FROM events WHERE event_type = 'CustomerOnboarded' AND metadata ->> 'import_id' = $1",
        )
        .bind(&customers_import)
        .fetch_all(&system.pool)
        .await
        .unwrap();
        created.sort();
        let mut previewed_sorted = previewed.clone();
        previewed_sorted.sort();
        assert_eq!(
            created, previewed_sorted,
            "the preview showed the ids the commit created"
        );
        let (stakeholders_import, preview) = commit_csv(&system, "stakeholders", stakeholders).await;
        let person: String = sqlx::query_scalar(
            "SELECT payload -> 'StakeholderAdded' ->> 'stakeholder_id' FROM events
              WHERE event_type = 'StakeholderAdded' AND metadata ->> 'import_id' = $1 AND metadata ->> 'import_row' = '3'",
        )
        .bind(&stakeholders_import)
        .fetch_one(&system.pool)
        .await
        .unwrap();
        assert_eq!(row(&preview, 2)["action"], "update", "{preview}");
        assert_eq!(row(&preview, 3)["created_id"], json!(person));
        system.caught_up().await;
        assert_ne!(people().await, people_before, "round {round}: Priya was promoted");
        let (activities_import, _) = commit_csv(&system, "activities", activities).await;
        let (health_import, _) = commit_csv(&system, "health_scores", health).await;
        system.caught_up().await;
        assert_ne!(
            reports(&system, &as_of).await,
            before,
            "round {round}: the move-in shows"
        );

        let mut order = vec![customers_import, stakeholders_import, activities_import, health_import];
        if newest_first {
            order.reverse();
        }
        let mut retracted_customers = 0;
        for import in &order {
            let (status, undone) = system.post(&format!("/api/v1/imports/{import}/undo"), &json!({})).await;
            assert_eq!(
                (status.as_u16(), undone["status"].as_str()),
                (200, Some("undone")),
                "{undone}"
            );
            retracted_customers += undone["undo"]["retracted"]["customers"].as_i64().unwrap();
        }
        assert_eq!(
            retracted_customers, 3,
            "round {round}: every moved-in customer is retracted"
        );
        system.caught_up().await;
        assert_eq!(
            reports(&system, &as_of).await,
            before,
            "round {round}: the reports of before the move-in"
        );
        assert_eq!(people().await, people_before, "round {round}: Priya's role is back");
    }
    system.stop().await;
}
