//! The auditors' report, checked figure by figure against a campaign with a known mix of
//! outcomes: sent through the real binary to the simulator (permanent rejects for numbers
//! ending in 13, opt-outs suppressed), then receipts and times written into the record
//! directly (the receipt server is not there yet), so that every figure is known in advance.

mod common;

use std::collections::BTreeMap;

use common::{Env, Sim};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// 12 subscribers: (number, district, what happens to it).
const LIST: &str = "\
phone,district
0981000001,Tân An
0981000002,Tân An
0981000003,Đức Hòa
0981000004,Đức Hòa
0981000013,Tân An
0911000001,Tân An
0911000002,Bến Lức
0911000013,Bến Lức
0901000001,Đức Hòa
0901000002,Đức Hòa
0921000001,
0981000005,Bến Lức
";

/// 2022-06-26 08:00 Vietnam time.
const T0: i64 = 1_656_205_200_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// (msisdn, submitted_ms, final state, final_ms, last_error, submit latency ms)
#[allow(clippy::type_complexity)]
const OUTCOMES: &[(&str, i64, &str, Option<i64>, Option<&str>, i64)] = &[
    ("84981000001", T0, "delivered", Some(T0 + 1000), None, 5),
    (
        "84981000002",
        T0 + 60_000,
        "delivered",
        Some(T0 + 63_000),
        None,
        5,
    ),
    (
        "84981000003",
        T0 + HOUR,
        "delivered",
        Some(T0 + HOUR + 5000),
        None,
        12,
    ),
    (
        "84981000004",
        T0 + HOUR + 1,
        "failed",
        Some(T0 + HOUR + 7001),
        Some("receipt: undelivered"),
        30,
    ),
    (
        "84911000001",
        T0 + DAY,
        "delivered",
        Some(T0 + DAY + 2000),
        None,
        31,
    ),
    (
        "84911000002",
        T0 + DAY + 60_000,
        "expired",
        Some(T0 + DAY + 120_000),
        None,
        90,
    ),
    (
        "84901000001",
        T0 + DAY + 120_000,
        "submitted",
        None,
        None,
        200,
    ),
    (
        "84921000001",
        T0 + DAY + HOUR,
        "submitted",
        None,
        None,
        1000,
    ),
];

const REJECT_REASON: &str = "rejected for this recipient (HTTP 400, code 21211): The 'To' number is not a valid phone number.";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A bound value of a statement in [`sql`]: typed, so that a NULL has a type on PostgreSQL.
enum P {
    I(Option<i64>),
    T(Option<&'static str>),
}

/// Runs `statements` on the test's database, outside smscast (what a receipt server or an
/// intruder would do), on SQLite or PostgreSQL, whichever the test runs on (`$n` placeholders
/// serve both). With `answer`, the last statement must return one text: it is returned.
fn run_sql(env: &Env, statements: &[(&str, Vec<P>)], answer: bool) -> Option<String> {
    macro_rules! run_on {
        ($connect:expr) => {{
            let pool = $connect
                .max_connections(1)
                .connect(&env.db_url())
                .await
                .unwrap();
            let mut last = None;
            for (i, (q, params)) in statements.iter().enumerate() {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(q.to_string()));
                for p in params {
                    query = match p {
                        P::I(v) => query.bind(*v),
                        P::T(v) => query.bind(*v),
                    };
                }
                if answer && i + 1 == statements.len() {
                    let row = query.fetch_one(&pool).await.unwrap();
                    last = Some(row.try_get::<String, _>(0).expect("one text, not NULL"));
                } else {
                    query.execute(&pool).await.unwrap();
                }
            }
            pool.close().await;
            last
        }};
    }
    block_on(async {
        if env.is_postgres() {
            run_on!(sqlx::postgres::PgPoolOptions::new())
        } else {
            run_on!(sqlx::sqlite::SqlitePoolOptions::new())
        }
    })
}

fn sql(env: &Env, statements: &[(&str, Vec<P>)]) {
    run_sql(env, statements, false);
}

/// The one text `q` returns.
fn text(env: &Env, q: &str) -> String {
    run_sql(env, &[(q, vec![])], true).expect("an answer")
}

fn count(env: &Env, q: &str) -> i64 {
    text(env, &format!("SELECT CAST(({q}) AS TEXT)"))
        .parse()
        .unwrap()
}

/// The campaign "june" with the known outcomes above, and prices configured.
fn known_campaign(name: &str) -> Env {
    let env = Env::new(name);
    let sim = Sim::start(&["--reject-suffix", "13"]);
    std::fs::write(env.path("list.csv"), LIST).unwrap();
    env.config_for(
        &sim.url,
        "[prices]\ncurrency = \"VND\"\nviettel = 800\nvinaphone = 750\ndefault = 900\n",
    );
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    env.ok(&["subscribers", "optout", "0901000002", "0981000005"]);
    let msg = env.message();
    env.ok(&[
        "campaign",
        "create",
        "june",
        "--list",
        "la",
        "--message",
        &msg,
        "--hours",
        "00:00-24:00",
        "--rate",
        "1000",
    ]);
    env.ok(&["send", "june"]);
    let mut statements = Vec::new();
    for (msisdn, submitted, state, fin, error, latency) in OUTCOMES {
        statements.push((
            "UPDATE deliveries SET submitted_ms = $1, state = $2, final_ms = $3, last_error = $4
             WHERE msisdn = $5",
            vec![
                P::I(Some(*submitted)),
                P::T(Some(state)),
                P::I(*fin),
                P::T(*error),
                P::T(Some(msisdn)),
            ],
        ));
        statements.push((
            "UPDATE attempts SET latency_ms = $1
             WHERE delivery_id = (SELECT id FROM deliveries WHERE msisdn = $2)",
            vec![P::I(Some(*latency)), P::T(Some(msisdn))],
        ));
    }
    sql(&env, &statements);
    env
}

fn as_map(v: &Value) -> BTreeMap<String, i64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .collect()
}

fn states(pairs: &[(&str, i64)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    )
}

#[test]
fn json_and_csv_reports_give_every_figure_exactly() {
    let env = known_campaign("report-figures");
    let r = env.json(&["report", "june", "--format", "json"]);

    assert_eq!(r["schema"], "smscast.report/1");
    let c = &r["campaign"];
    assert_eq!(c["name"], "june");
    assert_eq!(c["list"], "la");
    assert_eq!(c["encoding"], "UCS-2");
    assert_eq!(c["segments"], 3);
    assert_eq!(c["sender"], "LONGAN");
    assert!(
        c["message_text"]
            .as_str()
            .unwrap()
            .starts_with("Hưởng ứng Tháng hành động phòng, chống ma túy 2022")
    );
    assert_eq!(c["first_submit_at"], "2022-06-26 08:00 +07:00");
    assert_eq!(c["last_submit_at"], "2022-06-27 09:00 +07:00");
    assert_eq!(r["first_submit_at"], "2022-06-26 08:00 +07:00");
    assert_eq!(r["last_submit_at"], "2022-06-27 09:00 +07:00");

    assert_eq!(r["recipients"], 12);
    let mut want_states: BTreeMap<String, i64> = [
        "queued",
        "claimed",
        "sending",
        "submitted",
        "delivered",
        "failed",
        "expired",
        "rejected",
        "unknown",
        "suppressed",
        "handed",
    ]
    .iter()
    .map(|s| (s.to_string(), 0))
    .collect();
    for (s, n) in [
        ("delivered", 4),
        ("failed", 1),
        ("expired", 1),
        ("submitted", 2),
        ("rejected", 2),
        ("suppressed", 2),
    ] {
        want_states.insert(s.into(), n);
    }
    assert_eq!(as_map(&r["by_state"]), want_states);
    assert_eq!(r["accepted"], 6);
    assert_eq!(r["sms_parts"], 18);
    assert_eq!(r["possible_duplicates"], 0);

    assert_eq!(
        r["by_carrier"],
        json!([
            {"name": "viettel", "total": 6, "states": states(&[("delivered", 3), ("failed", 1), ("rejected", 1), ("suppressed", 1)])},
            {"name": "vinaphone", "total": 3, "states": states(&[("delivered", 1), ("expired", 1), ("rejected", 1)])},
            {"name": "mobifone", "total": 2, "states": states(&[("submitted", 1), ("suppressed", 1)])},
            {"name": "vietnamobile", "total": 1, "states": states(&[("submitted", 1)])},
        ])
    );
    assert_eq!(
        r["by_district"],
        json!([
            {"name": "Tân An", "total": 4, "states": states(&[("delivered", 3), ("rejected", 1)])},
            {"name": "Đức Hòa", "total": 4, "states": states(&[("delivered", 1), ("failed", 1), ("submitted", 1), ("suppressed", 1)])},
            {"name": "Bến Lức", "total": 3, "states": states(&[("expired", 1), ("rejected", 1), ("suppressed", 1)])},
            {"name": "(unknown)", "total": 1, "states": states(&[("submitted", 1)])},
        ])
    );
    assert_eq!(
        r["by_day"],
        json!([
            {"day": "2022-06-26", "submitted": 4, "delivered": 3, "failed": 1},
            {"day": "2022-06-27", "submitted": 4, "delivered": 1, "failed": 1},
        ])
    );
    assert_eq!(
        r["by_hour"],
        json!([
            {"hour": "2022-06-26 08:00", "submitted": 2, "delivered": 2, "failed": 0},
            {"hour": "2022-06-26 09:00", "submitted": 2, "delivered": 1, "failed": 1},
            {"hour": "2022-06-27 08:00", "submitted": 3, "delivered": 1, "failed": 1},
            {"hour": "2022-06-27 09:00", "submitted": 1, "delivered": 0, "failed": 0},
        ])
    );
    assert_eq!(
        r["errors"],
        json!([
            {"reason": REJECT_REASON, "count": 2, "states": {"rejected": 2}},
            {"reason": "(no reason recorded)", "count": 1, "states": {"expired": 1}},
            {"reason": "receipt: undelivered", "count": 1, "states": {"failed": 1}},
        ])
    );
    assert_eq!(
        r["error_codes"],
        json!([{"outcome": "rejected", "http_status": 400, "code": "21211", "count": 2}])
    );
    assert_eq!(r["attempts"], json!({"rejected": 2, "submitted": 8}));
    // Latencies 5 5 12 30 31 90 200 1000: nearest-rank percentiles.
    assert_eq!(
        r["submit_latency_ms"],
        json!({"p50": 30, "p90": 1000, "p95": 1000, "p99": 1000, "max": 1000})
    );
    // Receipt delays 1000 2000 3000 5000 7000 60000.
    assert_eq!(r["receipts"], 6);
    assert_eq!(
        r["receipt_delay_ms"],
        json!({"p50": 3000, "p90": 60000, "p95": 60000, "p99": 60000, "max": 60000})
    );
    // Parts = messages accepted at some point × 3 segments; prices per part per carrier.
    assert_eq!(
        r["cost"],
        json!({
            "currency": "VND",
            "total": 19500.0,
            "by_carrier": [
                {"carrier": "viettel", "parts": 12, "price_per_part": 800.0, "cost": 9600.0},
                {"carrier": "vinaphone", "parts": 6, "price_per_part": 750.0, "cost": 4500.0},
                {"carrier": "mobifone", "parts": 3, "price_per_part": 900.0, "cost": 2700.0},
                {"carrier": "vietnamobile", "parts": 3, "price_per_part": 900.0, "cost": 2700.0},
            ],
            "note": null,
        })
    );
    assert_eq!(r["campaigns"].as_array().unwrap().len(), 1);
    assert_eq!(r["campaigns"][0]["recipients"], 12);
    assert_eq!(r["campaigns"][0]["accepted"], 6);
    assert_eq!(r["campaigns"][0]["sms_parts"], 18);
    let head = env.ok(&["audit", "--verify"]);
    assert!(
        head.contains(r["audit_head"].as_str().unwrap()),
        "{head} / {}",
        r["audit_head"]
    );
    assert!(r.get("revealed").is_none(), "numbers only with --reveal");

    // The CSV export: the same figures, one per row.
    let out = env.ok(&["report", "june", "--format", "csv"]);
    let mut rd = csv::Reader::from_reader(out.as_bytes());
    assert_eq!(
        rd.headers().unwrap().iter().collect::<Vec<_>>(),
        ["section", "item", "detail", "value"]
    );
    let rows: Vec<[String; 4]> = rd
        .records()
        .map(|r| {
            let r = r.unwrap();
            [0, 1, 2, 3].map(|i| r[i].to_string())
        })
        .collect();
    let section = |name: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r[0] == name)
            .map(|r| format!("{}|{}|{}", r[1], r[2], r[3]))
            .collect()
    };
    assert_eq!(
        section("total"),
        [
            "recipients||12",
            "accepted||6",
            "sms_parts||18",
            "possible_duplicates||0",
            "receipts||6"
        ]
    );
    assert_eq!(
        section("state"),
        [
            "claimed||0",
            "delivered||4",
            "expired||1",
            "failed||1",
            "handed||0",
            "queued||0",
            "rejected||2",
            "sending||0",
            "submitted||2",
            "suppressed||2",
            "unknown||0"
        ]
    );
    assert_eq!(
        section("carrier"),
        [
            "viettel|total|6",
            "viettel|delivered|3",
            "viettel|failed|1",
            "viettel|rejected|1",
            "viettel|suppressed|1",
            "vinaphone|total|3",
            "vinaphone|delivered|1",
            "vinaphone|expired|1",
            "vinaphone|rejected|1",
            "mobifone|total|2",
            "mobifone|submitted|1",
            "mobifone|suppressed|1",
            "vietnamobile|total|1",
            "vietnamobile|submitted|1",
        ]
    );
    assert_eq!(
        section("district"),
        [
            "Tân An|total|4",
            "Tân An|delivered|3",
            "Tân An|rejected|1",
            "Đức Hòa|total|4",
            "Đức Hòa|delivered|1",
            "Đức Hòa|failed|1",
            "Đức Hòa|submitted|1",
            "Đức Hòa|suppressed|1",
            "Bến Lức|total|3",
            "Bến Lức|expired|1",
            "Bến Lức|rejected|1",
            "Bến Lức|suppressed|1",
            "(unknown)|total|1",
            "(unknown)|submitted|1",
        ]
    );
    assert_eq!(
        section("day"),
        [
            "2022-06-26|submitted|4",
            "2022-06-26|delivered|3",
            "2022-06-26|failed|1",
            "2022-06-27|submitted|4",
            "2022-06-27|delivered|1",
            "2022-06-27|failed|1",
        ]
    );
    assert_eq!(
        section("hour"),
        [
            "2022-06-26 08:00|submitted|2",
            "2022-06-26 08:00|delivered|2",
            "2022-06-26 08:00|failed|0",
            "2022-06-26 09:00|submitted|2",
            "2022-06-26 09:00|delivered|1",
            "2022-06-26 09:00|failed|1",
            "2022-06-27 08:00|submitted|3",
            "2022-06-27 08:00|delivered|1",
            "2022-06-27 08:00|failed|1",
            "2022-06-27 09:00|submitted|1",
            "2022-06-27 09:00|delivered|0",
            "2022-06-27 09:00|failed|0",
        ]
    );
    assert_eq!(
        section("error"),
        [
            format!("{REJECT_REASON}|total|2"),
            format!("{REJECT_REASON}|rejected|2"),
            "(no reason recorded)|total|1".into(),
            "(no reason recorded)|expired|1".into(),
            "receipt: undelivered|total|1".into(),
            "receipt: undelivered|failed|1".into(),
        ]
    );
    assert_eq!(section("error_code"), ["rejected|HTTP 400 / 21211|2"]);
    assert_eq!(section("attempts"), ["rejected||2", "submitted||8"]);
    assert_eq!(
        section("submit_latency_ms"),
        [
            "max||1000",
            "p50||30",
            "p90||1000",
            "p95||1000",
            "p99||1000"
        ]
    );
    assert_eq!(
        section("receipt_delay_ms"),
        [
            "max||60000",
            "p50||3000",
            "p90||60000",
            "p95||60000",
            "p99||60000"
        ]
    );
    assert_eq!(
        section("cost"),
        [
            "viettel|parts|12",
            "viettel|price_per_part|800",
            "viettel|cost|9600",
            "vinaphone|parts|6",
            "vinaphone|price_per_part|750",
            "vinaphone|cost|4500",
            "mobifone|parts|3",
            "mobifone|price_per_part|900",
            "mobifone|cost|2700",
            "vietnamobile|parts|3",
            "vietnamobile|price_per_part|900",
            "vietnamobile|cost|2700",
            "total|cost|19500",
            "total|currency|VND",
        ]
    );
    let campaign = section("campaign");
    assert!(
        campaign.contains(&format!("{}|name|june", c["id"])),
        "{campaign:?}"
    );
    assert!(campaign.contains(&format!("{}|recipients|12", c["id"])));
    assert!(campaign.contains(&format!("{}|segments|3", c["id"])));
    assert!(
        campaign.contains(&format!(
            "{}|message_text|{}",
            c["id"],
            c["message_text"].as_str().unwrap()
        )),
        "the message as sent"
    );
    assert_eq!(
        section("audit_head"),
        [format!("||{}", r["audit_head"].as_str().unwrap())]
    );
    assert!(section("revealed").is_empty());

    // Vietnamese labels, with diacritics, for the provincial authorities.
    let vi = env.ok(&["report", "june", "--format", "csv", "--lang", "vi"]);
    assert!(vi.starts_with('\u{feff}'), "BOM for spreadsheets");
    assert!(vi.contains("Phần,Mục,Chi tiết,Giá trị"), "{vi}");
    assert!(vi.contains("Nhà mạng,Viettel,Tổng cộng,6"), "{vi}");
    assert!(vi.contains("Trạng thái,Bị từ chối,,2"), "{vi}");
    assert!(
        vi.contains("Trạng thái,Đã gửi (chờ xác nhận đến máy),,2"),
        "{vi}"
    );
    // Campaign states and error reasons in Vietnamese, the gateway's own words beside.
    assert!(vi.contains(",Trạng thái,đã hoàn thành"), "{vi}");
    assert!(
        vi.contains("Nguyên nhân,Hết thời hạn mà tin chưa đến được máy (không ghi nhận nguyên nhân),Tổng cộng,1"),
        "{vi}"
    );
    assert!(
        vi.contains(&format!(
            "\"Số thuê bao không hợp lệ hoặc không nhận được tin — nguyên văn của cổng gửi tin: {REJECT_REASON}\",Tổng cộng,2"
        )),
        "{vi}"
    );
    let table = env.ok(&["report", "june", "--lang", "vi"]);
    for label in [
        "Báo cáo kết quả gửi tin nhắn",
        "Thuê bao",
        "Nhà mạng",
        "Theo huyện/thị xã/thành phố",
        "Đã gửi",
        "Bị từ chối",
    ] {
        assert!(table.contains(label), "{label} missing from\n{table}");
    }
}

#[test]
fn filters_answer_the_auditors_questions() {
    let env = known_campaign("report-filters");
    let r = env.json(&["report", "june", "--json", "--carrier", "Viettel"]);
    assert_eq!(r["recipients"], 6);
    assert_eq!(r["filter"]["carrier"], "viettel");
    assert_eq!(r["by_carrier"].as_array().unwrap().len(), 1);
    assert_eq!(r["attempts"], json!({"rejected": 1, "submitted": 4}));
    assert_eq!(r["cost"]["total"], 9600.0);

    let r = env.json(&["report", "june", "--json", "--state", "rejected,failed"]);
    assert_eq!(r["recipients"], 3);
    assert_eq!(r["by_state"]["rejected"], 2);
    assert_eq!(r["by_state"]["failed"], 1);
    assert_eq!(r["by_state"]["delivered"], 0);

    let r = env.json(&["report", "june", "--json", "--district", "Đức Hòa"]);
    assert_eq!(r["recipients"], 4);
    assert_eq!(
        r["submit_latency_ms"],
        json!({"p50": 30, "p90": 200, "p95": 200, "p99": 200, "max": 200})
    );

    // A period: what was sent on 27 June (Vietnam time), across all campaigns.
    let r = env.json(&[
        "report",
        "--all",
        "--since",
        "2022-06-27",
        "--until",
        "2022-06-27",
        "--json",
    ]);
    assert_eq!(r["campaign"], Value::Null);
    assert_eq!(r["filter"]["all_campaigns"], true);
    assert_eq!(r["filter"]["since"], "2022-06-27 00:00 +07:00");
    assert_eq!(r["filter"]["until"], "2022-06-28 00:00 +07:00");
    assert_eq!(r["recipients"], 4);
    assert_eq!(r["by_day"].as_array().unwrap().len(), 1);
    assert_eq!(r["campaigns"][0]["name"], "june");
    assert_eq!(r["campaigns"][0]["recipients"], 4);
    let r = env.json(&["report", "--all", "--until", "2022-06-25", "--json"]);
    assert_eq!(r["recipients"], 0);

    let out = env.run(&["report", "june", "--state", "lost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("delivered"));
    let out = env.run(&["report", "june", "--carrier", "acme"]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.run(&["report"]);
    assert_eq!(out.status.code(), Some(2), "a campaign or --all");
}

#[test]
fn html_report_is_one_self_contained_page_with_charts() {
    let env = known_campaign("report-html");
    for (lang, labels) in [
        (
            "en",
            &[
                "SMS campaign results report",
                "By carrier",
                "District/Town/City",
            ][..],
        ),
        (
            "vi",
            &[
                "Báo cáo kết quả gửi tin nhắn",
                "Nhà mạng",
                "Huyện/Thị xã/Thành phố",
                "Thuê bao",
                "Đã gửi",
                "Bị từ chối",
            ][..],
        ),
    ] {
        let file = env.path(&format!("report-{lang}.html"));
        env.ok(&[
            "report",
            "june",
            "--format",
            "html",
            "--lang",
            lang,
            "--out",
            file.to_str().unwrap(),
        ]);
        let html = std::fs::read_to_string(&file).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(&format!("<html lang=\"{lang}\">")));
        for label in labels {
            assert!(html.contains(label), "{label} missing ({lang})");
        }
        // Self-contained: nothing fetched, nothing run.
        let lower = html.to_lowercase();
        for bad in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "url(http",
            "@import",
            "<script",
            "<link",
            "<img",
            "<iframe",
        ] {
            assert!(!lower.contains(bad), "{bad} in the {lang} page");
        }
        assert!(!lower.contains("http://") && !lower.contains("https://"));
        // The three charts, drawn inline, with the figures.
        for id in ["chart-time", "chart-carrier", "chart-district"] {
            assert!(html.contains(&format!("<svg id=\"{id}\"")), "{id}");
        }
        assert_eq!(html.matches("<svg").count(), 3);
        let carrier_chart = &html[html.find("<svg id=\"chart-carrier\"").unwrap()..];
        let carrier_chart = &carrier_chart[..carrier_chart.find("</svg>").unwrap()];
        for name in ["Viettel", "VinaPhone", "MobiFone", "Vietnamobile"] {
            assert!(carrier_chart.contains(name), "{name} bar");
        }
        // One bar segment per state group: delivered / not delivered (failed, expired,
        // rejected, in doubt) / awaiting a receipt / opted out.
        assert_eq!(carrier_chart.matches("<rect").count(), 3 + 2 + 2 + 1);
        let time_chart = &html[html.find("<svg id=\"chart-time\"").unwrap()..];
        let time_chart = &time_chart[..time_chart.find("</svg>").unwrap()];
        for hour in [
            "2022-06-26 08:00",
            "2022-06-26 09:00",
            "2022-06-27 08:00",
            "2022-06-27 09:00",
        ] {
            assert!(time_chart.contains(hour), "{hour} on the time axis");
        }
        assert!(html.contains("19 500 VND"), "cost total");
        assert!(html.contains("@media print"));
        assert!(html.contains("Hưởng ứng Tháng hành động phòng, chống ma túy 2022"));
        assert!(
            !html.contains("84981000013"),
            "numbers are never in the page without --reveal"
        );
    }
}

fn sha256_file(path: &std::path::Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| hex::encode(Sha256::digest(&b)))
}

/// Every row of every table of a PostgreSQL database, digested: equal before and after only
/// if nothing was written.
fn pg_fingerprint(env: &Env) -> String {
    const TABLES: &[&str] = &[
        "attempts",
        "audit_log",
        "campaigns",
        "deliveries",
        "imports",
        "list_members",
        "lists",
        "opt_outs",
        "rate_budget",
        "receipts",
        "settings",
        "subscribers",
        "workers",
    ];
    let rows = TABLES
        .iter()
        .map(|t| format!("SELECT '{t}' || CAST(r AS TEXT) AS line FROM {t} r"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let q = format!("SELECT md5(string_agg(line, '|' ORDER BY line)) FROM ({rows}) x");
    text(env, &q)
}

#[test]
fn auditors_commands_never_write() {
    let env = known_campaign("report-readonly");
    let db = env.path("smscast.db");
    let wal = env.path("smscast.db-wal");
    let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // SQLite: fold the WAL into the main file, so that any write would show in its bytes.
    // PostgreSQL: a digest of every row.
    let before = if env.is_postgres() {
        pg_fingerprint(&env)
    } else {
        sql(&env, &[("PRAGMA wal_checkpoint(TRUNCATE)", vec![])]);
        assert_eq!(wal_len(), 0);
        sha256_file(&db).unwrap()
    };
    let mtime = std::fs::metadata(&db).and_then(|m| m.modified()).ok();
    let audit_rows = count(&env, "SELECT COUNT(*) FROM audit_log");

    for args in [
        &["report", "june"][..],
        &["report", "june", "--format", "json"],
        &["report", "june", "--format", "csv", "--lang", "vi"],
        &["report", "june", "--format", "html"],
        &[
            "report",
            "--all",
            "--since",
            "2022-06-01",
            "--carrier",
            "viettel",
        ],
        &["lookup", "0981000013"],
        &["lookup", "0981000013", "--json"],
        &["audit"],
        &["audit", "--verify"],
    ] {
        env.ok(args);
        assert_eq!(wal_len(), 0, "{args:?} wrote to the WAL");
    }
    if env.is_postgres() {
        assert_eq!(pg_fingerprint(&env), before, "the database changed");
    } else {
        assert_eq!(sha256_file(&db).unwrap(), before, "the database changed");
        assert_eq!(
            std::fs::metadata(&db).and_then(|m| m.modified()).ok(),
            mtime
        );
    }
    assert_eq!(count(&env, "SELECT COUNT(*) FROM audit_log"), audit_rows);
}

/// `?mode=ro` is what makes an auditor's session read-only, so a mode that is mistyped must
/// never give a session that writes: `RO` in capitals is read-only too, a mode smscast does not
/// know is refused with what to write instead, and on SQLite (whose connection options smscast
/// sets itself) a parameter it would ignore is refused rather than silently dropped.
#[test]
fn a_database_url_that_asks_for_an_unknown_mode_is_refused_never_writable() {
    let env = Env::new("report-url-mode");
    std::fs::write(env.path("list.csv"), LIST).unwrap();
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    let opt_outs = |env: &Env| count(env, "SELECT COUNT(*) FROM opt_outs");
    let before = opt_outs(&env);
    let url = env.db_url();
    let with = |param: &str| format!("{url}{}{param}", if url.contains('?') { '&' } else { '?' });
    let run = |url: &str, args: &[&str]| {
        env.cmd()
            .env("SMSCAST_DATABASE_URL", url)
            .args(args)
            .output()
            .unwrap()
    };

    // Capitals: still an auditor's read-only session.
    let ro = with("mode=RO");
    let out = run(&ro, &["subscribers", "optout", "0981000004"]);
    assert!(
        !out.status.success(),
        "an opt-out was written through mode=RO"
    );
    assert_eq!(opt_outs(&env), before);
    let out = run(&ro, &["campaign", "list"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("unrecognized"),
        "the mode is smscast's, not the driver's: {err}"
    );

    // A mode smscast does not know: refused before anything is read or written, saying what
    // to write instead.
    for mode in ["mode=readonly", "mode=r", "MODE=ro-please"] {
        let bad = with(mode);
        for args in [
            &["subscribers", "optout", "0981000004"][..],
            &["campaign", "list"],
        ] {
            let out = run(&bad, args);
            assert_eq!(out.status.code(), Some(1), "{mode} {args:?}");
            assert!(out.stdout.is_empty(), "{mode} {args:?} printed something");
            let err = String::from_utf8_lossy(&out.stderr);
            let value = mode.split_once('=').unwrap().1;
            assert!(
                err.contains(&format!("mode={value}")) && err.contains("?mode=ro"),
                "{mode}: {err}"
            );
        }
        assert_eq!(opt_outs(&env), before, "{mode}");
    }

    // SQLite: a parameter the store would drop is named, not ignored; its value (which may be
    // a secret) is not repeated.
    if !env.is_postgres() {
        let out = run(&with("immutable=1&key=hunter2"), &["campaign", "list"]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("immutable") && !err.contains("hunter2"),
            "{err}"
        );
    }
}

#[test]
fn numbers_are_masked_and_reveal_is_an_audited_operators_act() {
    let env = known_campaign("report-reveal");
    let audit_len = |env: &Env| env.json(&["audit", "--json"]).as_array().unwrap().len();

    // Masked by default, everywhere.
    let out = env.ok(&["lookup", "0981000013"]);
    assert!(out.contains("8498****013"), "{out}");
    assert!(!out.contains("84981000013"));
    assert!(
        out.contains("rejected"),
        "the attempt and its outcome: {out}"
    );
    let j = env.json(&["lookup", "0981000013", "--json"]);
    assert_eq!(j["number"], "8498****013");
    assert_eq!(j["revealed"], false);

    // --reveal needs a reason.
    let out = env.run(&["lookup", "0981000013", "--reveal"]);
    assert_eq!(out.status.code(), Some(2));

    // On a read-only connection: refused with the reason, nothing printed, nothing written.
    let n = audit_len(&env);
    let url = env.db_url();
    let ro = format!("{url}{}mode=ro", if url.contains('?') { '&' } else { '?' });
    for args in [
        &[
            "lookup",
            "0981000013",
            "--reveal",
            "--reason",
            "complaint 117",
        ][..],
        &[
            "report",
            "june",
            "--reveal",
            "--reason",
            "complaint 117",
            "--format",
            "json",
        ],
    ] {
        let out = env
            .cmd()
            .env("SMSCAST_DATABASE_URL", &ro)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed something");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("read-only")
                && err.contains("audit log")
                && err.contains("Nothing was shown"),
            "{err}"
        );
    }
    // Read-only commands still work on that connection.
    let out = env
        .cmd()
        .env("SMSCAST_DATABASE_URL", &ro)
        .args(["lookup", "0981000013"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(audit_len(&env), n);

    // An operator with write access: the audit entry first, then the number.
    let out = env.ok(&[
        "lookup",
        "0981000013",
        "--reveal",
        "--reason",
        "complaint 117",
    ]);
    assert!(out.contains("84981000013"), "{out}");
    let log = env.json(&["audit", "--json"]);
    let last = log.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "reveal");
    assert_eq!(last["actor"], "tester");
    assert_eq!(last["subject"], "number 8498****013");
    assert!(!last["details"].as_str().unwrap().contains("84981000013"));
    assert!(last["details"].as_str().unwrap().contains("complaint 117"));

    let r = env.json(&[
        "report",
        "june",
        "--json",
        "--reveal",
        "--reason",
        "province audit",
    ]);
    let rv = &r["revealed"];
    assert_eq!(rv["by"], "tester");
    assert_eq!(rv["reason"], "province audit");
    let numbers: Vec<&str> = rv["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["number"].as_str().unwrap())
        .collect();
    // In delivery order; an import stores each batch in number order.
    assert_eq!(
        numbers,
        ["84911000002", "84911000013", "84981000004", "84981000013"]
    );
    let log = env.json(&["audit", "--json"]);
    let last = log.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "reveal");
    assert_eq!(last["id"], rv["audit_entry"]);
    assert!(last["details"].as_str().unwrap().contains("\"numbers\":4"));
    assert!(env.ok(&["audit", "--verify"]).contains("intact"));
}

/// The text of a .docx: `word/document.xml`, one line per paragraph, and its table rows (cell
/// texts), read with the `zip` crate as Word would.
fn docx_text(path: &std::path::Path) -> (String, Vec<Vec<String>>, String) {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut xml = String::new();
    zip.by_name("word/document.xml")
        .expect("a Word document")
        .read_to_string(&mut xml)
        .unwrap();
    let mut styles = String::new();
    zip.by_name("word/styles.xml")
        .unwrap()
        .read_to_string(&mut styles)
        .unwrap();
    fn plain(xml: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        let mut tag = String::new();
        for c in xml.chars() {
            match c {
                '<' => {
                    in_tag = true;
                    tag.clear();
                }
                '>' => {
                    in_tag = false;
                    if tag.starts_with("/w:p") && tag.len() == 4 {
                        out.push('\n');
                    }
                }
                c if in_tag => tag.push(c),
                c => out.push(c),
            }
        }
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    }
    let rows = xml
        .split("<w:tr>")
        .skip(1)
        .map(|tr| {
            let tr = &tr[..tr.find("</w:tr>").unwrap()];
            tr.split("<w:tc>")
                .skip(1)
                .map(|tc| plain(tc).trim().to_string())
                .collect()
        })
        .collect();
    (plain(&xml), rows, xml + &styles)
}

#[test]
fn official_report_is_a_decree_30_document_with_the_json_figures() {
    let env = known_campaign("report-docx");
    let config = env.path("smscast.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(
        "[report]\ntitle = \"Kế hoạch thực hiện Tháng hành động phòng, chống ma túy năm 2022\"\n\
         signer = \"Nguyễn Văn A\"\nsigner_title = \"KT. GIÁM ĐỐC\\nPHÓ GIÁM ĐỐC\"\n\
         recipients = [\"Công an tỉnh (báo cáo);\", \"Lưu: VT.\"]\n",
    );
    std::fs::write(&config, toml).unwrap();
    let r = env.json(&["report", "june", "--format", "json"]);
    let file = env.path("bao-cao.docx");
    env.ok(&[
        "report",
        "june",
        "--format",
        "docx",
        "--lang",
        "vi",
        "--out",
        file.to_str().unwrap(),
    ]);
    let (text, rows, xml) = docx_text(&file);

    // The Decree 30/2020 parts, in order.
    let order = [
        "UBND TỈNH LONG AN",
        "SỞ THÔNG TIN VÀ TRUYỀN THÔNG",
        "Số:",
        "/BC-STTTT",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Long An, ngày … tháng … năm 20…",
        "BÁO CÁO",
        "Kết quả gửi tin nhắn tuyên truyền “june” theo Kế hoạch thực hiện Tháng hành động",
        "I. KẾT QUẢ THỰC HIỆN",
        "Hưởng ứng Tháng hành động phòng, chống ma túy 2022",
        "Nơi nhận:",
        "- Công an tỉnh (báo cáo);",
        "KT. GIÁM ĐỐC",
        "PHÓ GIÁM ĐỐC",
        "Nguyễn Văn A",
        r["audit_head"].as_str().unwrap(),
    ];
    let mut at = 0;
    for part in order {
        let i = text[at..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} missing or out of order in\n{text}"));
        at += i + part.len();
    }
    // A4, the decree's margins, Times New Roman.
    assert!(xml.contains("w:w=\"11906\" w:h=\"16838\""), "A4");
    for m in [
        "w:top=\"1134\"",
        "w:bottom=\"1134\"",
        "w:left=\"1701\"",
        "w:right=\"851\"",
    ] {
        assert!(xml.contains(m), "margin {m}");
    }
    assert!(xml.contains("w:ascii=\"Times New Roman\""));
    // No jargon.
    for bad in [
        "HTTP",
        "p50",
        "p99",
        "ms)",
        "21211",
        "submitted",
        "suppressed",
    ] {
        assert!(
            !text.contains(bad),
            "{bad:?} in the official report:\n{text}"
        );
    }

    // The figures equal the JSON report's.
    let n = |v: &Value| v.as_i64().unwrap();
    let st = as_map(&r["by_state"]);
    assert!(text.contains(&format!(
        "Đối tượng nhận tin: {} thuê bao di động trong danh sách “la”; trong đó {} thuê bao đã đăng ký từ chối nhận tin",
        n(&r["recipients"]),
        st["suppressed"]
    )));
    assert!(text.contains(&format!(
        "Đã đến máy người nhận: {} thuê bao",
        st["delivered"]
    )));
    assert!(text.contains(&format!(
        "Không thành công: {} thuê bao",
        st["failed"] + st["expired"] + st["rejected"]
    )));
    // Table 1: one row per state present, adding up to the recipients.
    let state_rows: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r.len() == 4 && r[0].parse::<usize>().is_ok() && r[3].contains(','))
        .collect();
    let sum: i64 = state_rows
        .iter()
        .map(|r| r[2].parse::<i64>().unwrap())
        .sum();
    assert_eq!(sum, n(&r["recipients"]));
    assert_eq!(
        state_rows.len(),
        st.values().filter(|v| **v > 0).count(),
        "{state_rows:?}"
    );
    // Tables 2 and 3: each carrier and district with its total and delivered count.
    for (key, name_of) in [
        (
            "by_carrier",
            &(|s: &str| carrier_display(s)) as &dyn Fn(&str) -> String,
        ),
        ("by_district", &|s: &str| {
            if s == "(unknown)" {
                "(chưa xác định)".to_string()
            } else {
                s.to_string()
            }
        }),
    ] {
        for b in r[key].as_array().unwrap() {
            let name = name_of(b["name"].as_str().unwrap());
            let row = rows
                .iter()
                .find(|row| row.len() > 3 && row[1] == name)
                .unwrap_or_else(|| panic!("{key} {name} missing: {rows:?}"));
            assert_eq!(row[2], b["total"].to_string(), "{key} {name}");
            let delivered = b["states"]["delivered"].as_i64().unwrap_or(0);
            assert_eq!(row[3], delivered.to_string(), "{key} {name} delivered");
        }
    }
    // Why: a Vietnamese summary beside the gateway's own words, without the codes.
    let reject = rows
        .iter()
        .find(|row| row.len() == 4 && row[1].starts_with("Số thuê bao không hợp lệ"))
        .expect("the rejection reason");
    assert_eq!(reject[2], "“The 'To' number is not a valid phone number.”");
    assert_eq!(reject[3], st["rejected"].to_string());
    // Cost, Vietnamese style.
    assert_eq!(r["cost"]["total"].as_f64(), Some(19_500.0));
    assert!(text.contains("tổng chi phí: 19.500 đồng"), "{text}");

    // English: the same structure.
    let file = env.path("report.docx");
    env.ok(&[
        "report",
        "june",
        "--format",
        "docx",
        "--lang",
        "en",
        "--out",
        file.to_str().unwrap(),
    ]);
    let (text, _, _) = docx_text(&file);
    for part in [
        "SOCIALIST REPUBLIC OF VIET NAM",
        "Independence - Freedom - Happiness",
        "REPORT",
        "“june”",
        "Recipients:",
        "I. RESULTS",
        r["audit_head"].as_str().unwrap(),
    ] {
        assert!(text.contains(part), "{part} missing in\n{text}");
    }
    assert!(text.contains(&format!(
        "Delivered to the phone: {} subscribers",
        st["delivered"]
    )));

    // Writing a document needs a file.
    let out = env.run(&["report", "june", "--format", "docx"]);
    assert!(!out.status.success());
}

fn carrier_display(code: &str) -> String {
    match code {
        "viettel" => "Viettel",
        "vinaphone" => "VinaPhone",
        "mobifone" => "MobiFone",
        "vietnamobile" => "Vietnamobile",
        other => other,
    }
    .to_string()
}

#[test]
fn time_chart_legend_counts_what_the_day_and_hour_tables_count() {
    let env = known_campaign("report-legend");
    let r = env.json(&["report", "june", "--format", "json"]);
    // The tables' "not delivered" is failed or expired after acceptance (by receipt): the
    // rejected and in-doubt messages were never accepted and are not on the time axis.
    let st = as_map(&r["by_state"]);
    let day_failed: i64 = r["by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["failed"].as_i64().unwrap())
        .sum();
    assert_eq!(day_failed, st["failed"] + st["expired"]);
    for (lang, column) in [
        ("en", "Not delivered (failed or expired)"),
        ("vi", "Không đến được máy (lỗi, hết hạn)"),
    ] {
        let file = env.path(&format!("legend-{lang}.html"));
        env.ok(&[
            "report",
            "june",
            "--format",
            "html",
            "--lang",
            lang,
            "--out",
            file.to_str().unwrap(),
        ]);
        let html = std::fs::read_to_string(&file).unwrap();
        let chart = html.find("<svg id=\"chart-time\"").unwrap();
        let legend = &html[html[..chart].rfind("<div class=\"legend\">").unwrap()..chart];
        assert!(legend.contains(column), "{lang}: {legend}");
        for never_accepted in ["rejected", "in doubt", "bị từ chối", "chưa rõ"] {
            assert!(
                !legend.contains(never_accepted),
                "{lang}: {never_accepted} in the time legend {legend}"
            );
        }
        let by_day = &html[html.find("<svg id=\"chart-time\"").unwrap()..];
        assert!(
            by_day.contains(&format!("<th>{column}</th>")),
            "{lang}: the day table's column"
        );
        let table = env.ok(&["report", "june", "--lang", lang]);
        assert!(table.contains(column), "{lang}: the table's column");
    }
}
