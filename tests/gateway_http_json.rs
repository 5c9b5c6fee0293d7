//! The http-json adapter, configured by the shipped examples (eSMS- and SpeedSMS-style),
//! against a real HTTP server (wiremock): the exact request, success, each error class,
//! timeout; and its receipts through `dlr serve`.

mod common;

use std::time::Duration;

use smscast::config::Config;
use smscast::dlr::{DlrOptions, DlrServer, Receivers};
use smscast::gateway::{self, Gateway, OutboundSms, SubmitError};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TEXT: &str = "Hãy nói KHÔNG với ma túy";

/// An example config pointed at `base`, with inline secrets instead of environment variables.
fn example(file: &str, real_base: &str, base: &str) -> Config {
    let text = std::fs::read_to_string(format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace(real_base, base)
        .replace(
            r#"secrets = { api_key = "ESMS_API_KEY", secret_key = "ESMS_SECRET_KEY" }"#,
            r#"secret_values = { api_key = "KEY1", secret_key = "SECRET1" }"#,
        )
        .replace(
            r#"secrets = { token = "SPEEDSMS_TOKEN" }"#,
            r#"secret_values = { token = "TOK1" }"#,
        )
        .replace("dlr_token_env = \"ESMS_DLR_TOKEN\"", "dlr_token = \"DT\"")
        .replace(
            "dlr_token_env = \"SPEEDSMS_DLR_TOKEN\"",
            "dlr_token = \"DT\"",
        )
        .replace("https://dlr.example.gov.vn", "http://dlr.test");
    Config::parse(&text).unwrap()
}

fn esms(server: &MockServer, timeout: Duration) -> std::sync::Arc<dyn Gateway> {
    let c = example("esms.toml", "https://rest.esms.vn", &server.uri());
    gateway::build(&c, "esms", timeout).unwrap()
}

fn sms(unicode: bool) -> OutboundSms<'static> {
    OutboundSms {
        reference: "smscast-5-6",
        to: "84912345678",
        from: "LONGAN",
        text: TEXT,
        unicode,
    }
}

const ESMS_PATH: &str = "/MainService.svc/json/SendMultipleMessage_V4_post_json/";

#[tokio::test]
async fn esms_style_request_and_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ESMS_PATH))
        .and(body_json(serde_json::json!({
            "ApiKey": "KEY1",
            "SecretKey": "SECRET1",
            "Phone": "0912345678",
            "Content": TEXT,
            "Brandname": "LONGAN",
            "SmsType": "2",
            "IsUnicode": "1",
            "RequestId": "smscast-5-6",
            "CallbackUrl": "http://dlr.test/http-json/esms?token=DT&ref=smscast-5-6",
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"CodeResult": "100", "CountRegenerate": 0, "SMSID": "E-77"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let gw = esms(&server, Duration::from_secs(5));
    assert!(gw.dedups_by_reference());
    let ok = gw.submit(&sms(true)).await.unwrap();
    assert_eq!(ok.gateway_id, "E-77");
}

async fn esms_answer(status: u16, body: serde_json::Value) -> Result<String, SubmitError> {
    let server = MockServer::start().await;
    Mock::given(path(ESMS_PATH))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    let r = esms(&server, Duration::from_secs(5))
        .submit(&sms(false))
        .await;
    if let Err(e) = &r {
        let s = format!("{e:?}");
        assert!(!s.contains("SECRET1") && !s.contains("KEY1"), "{s}");
    }
    r.map(|a| a.gateway_id)
}

#[tokio::test]
async fn esms_style_codes_have_their_class() {
    let code = |c: &str| serde_json::json!({"CodeResult": c, "ErrorMessage": "msg"});
    // A repeated request id: submitted before, so accepted (under our reference).
    assert_eq!(esms_answer(200, code("124")).await.unwrap(), "smscast-5-6");
    assert!(matches!(
        esms_answer(200, code("101")).await,
        Err(SubmitError::Unusable { .. })
    ));
    assert!(matches!(
        esms_answer(200, code("105")).await,
        Err(SubmitError::Permanent { .. })
    ));
    assert!(matches!(
        esms_answer(200, code("99")).await,
        Err(SubmitError::Transient { .. })
    ));
    // A 2xx with a code nobody listed: the gateway may have taken it.
    assert!(matches!(
        esms_answer(200, code("555")).await,
        Err(SubmitError::InDoubt { .. })
    ));
    assert!(matches!(
        esms_answer(200, serde_json::json!({"nothing": 1})).await,
        Err(SubmitError::InDoubt { .. })
    ));
    assert!(matches!(
        esms_answer(502, serde_json::json!({})).await,
        Err(SubmitError::Transient { .. })
    ));
}

#[tokio::test]
async fn speedsms_style_basic_auth_list_and_rate_limit() {
    let server = MockServer::start().await;
    let c = example("speedsms.toml", "https://api.speedsms.vn", &server.uri());
    let gw = gateway::build(&c, "speedsms", Duration::from_secs(5)).unwrap();
    Mock::given(method("POST"))
        .and(path("/index.php/sms/send"))
        .and(header("authorization", "Basic VE9LMTp4")) // TOK1:x
        .and(body_json(serde_json::json!({
            "to": ["84912345678"], "content": TEXT, "sms_type": 3, "sender": "LONGAN"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"status": "success", "code": "00", "data": {"tranId": 9001}}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    assert_eq!(gw.submit(&sms(true)).await.unwrap().gateway_id, "9001");
    Mock::given(path("/index.php/sms/send"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-Rate-Limit-Reset", "42")
                .set_body_string("Too many requests"),
        )
        .mount(&server)
        .await;
    match gw.submit(&sms(true)).await {
        Err(SubmitError::Transient { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(42)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_timeout_is_in_doubt() {
    let server = MockServer::start().await;
    Mock::given(path(ESMS_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"CodeResult": "100"}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let err = esms(&server, Duration::from_millis(300))
        .submit(&sms(true))
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::InDoubt { .. }), "{err:?}");
}

#[tokio::test]
async fn esms_style_receipts_by_get_are_authenticated_and_applied() {
    let dir = common::TempDir::new("httpjson");
    let store = common::open_store(&dir).await;
    let config = example("esms.toml", "https://rest.esms.vn", "http://127.0.0.1:9");
    let server = DlrServer::start(
        store.clone(),
        Receivers::from_config(&config).unwrap(),
        "127.0.0.1:0",
        DlrOptions {
            upkeep_every: Duration::from_secs(3600),
            validity: Duration::from_secs(3600),
            unmatched_after: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let campaign = common::seed(&*store, &common::numbers(2), "Xin chào", "esms").await;
    let rows = common::submit_all(&*store, &campaign, "esms", 0, |r| format!("E-{r}")).await;
    let http = reqwest::Client::new();
    let url = format!("{}/http-json/esms", server.base_url());
    let get = |q: Vec<(&'static str, String)>| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.get(&url)
                .query(&q)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // The callback URL we handed out carries token and reference.
    let (id0, ref0) = rows[0].clone();
    let q = |token: &str, r: &str, st: &str| {
        vec![
            ("token", token.to_string()),
            ("ref", r.to_string()),
            ("SMSID", format!("E-{r}")),
            ("SendStatus", st.to_string()),
        ]
    };
    assert_eq!(get(q("nope", &ref0, "2")).await, 401);
    assert_eq!(get(vec![("token", "DT".into())]).await, 400);
    assert_eq!(get(q("DT", &ref0, "2")).await, 200);
    // Matched by the gateway's id alone (no ref).
    let (id1, ref1) = rows[1].clone();
    assert_eq!(
        get(vec![
            ("token", "DT".into()),
            ("SMSID", format!("E-{ref1}")),
            ("SendStatus", "3".into())
        ])
        .await,
        200
    );
    let s = common::states(&common::db_url(&dir), campaign.id).await;
    assert_eq!(s[&id0], "delivered");
    assert_eq!(s[&id1], "failed");
    server.stop().await;
}
