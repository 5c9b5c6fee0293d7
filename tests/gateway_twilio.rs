//! The Twilio adapter against a real HTTP server (wiremock): the exact request, success,
//! each error class (Twilio's codes, 429 + Retry-After), timeout.

use std::time::Duration;

use base64::Engine;
use smscast::config::Config;
use smscast::gateway::{self, Gateway, OutboundSms, SubmitError};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "twilio-auth-token";
const TEXT: &str = "Tháng hành động phòng, chống ma túy";
const SEND: &str = "/2010-04-01/Accounts/AC123/Messages.json";

fn twilio(server: &MockServer, timeout: Duration, extra: &str) -> std::sync::Arc<dyn Gateway> {
    let config = Config::parse(&format!(
        r#"
        [gateways.agg]
        kind = "twilio"
        base_url = "{}"
        account_sid = "AC123"
        auth_token = "{TOKEN}"
        from = "LONGAN"
        status_callback = "https://dlr.example.gov.vn/twilio/agg"
        {extra}
        "#,
        server.uri()
    ))
    .unwrap();
    gateway::build(&config, "agg", timeout).unwrap()
}

fn sms() -> OutboundSms<'static> {
    OutboundSms {
        reference: "smscast-3-99",
        to: "84912345678",
        from: "IGNORED",
        text: TEXT,
        unicode: true,
    }
}

#[tokio::test]
async fn sends_the_exact_request() {
    let server = MockServer::start().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("AC123:{TOKEN}"));
    Mock::given(method("POST"))
        .and(path(SEND))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": "SM0001", "status": "queued"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ok = twilio(&server, Duration::from_secs(5), "")
        .submit(&sms())
        .await
        .unwrap();
    assert_eq!(ok.gateway_id, "SM0001");
    assert_eq!(ok.http_status, 201);
    let req = &server.received_requests().await.unwrap()[0];
    let form: Vec<(String, String)> = form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("To"), Some("+84912345678"));
    assert_eq!(get("From"), Some("LONGAN"));
    assert_eq!(get("Body"), Some(TEXT));
    assert_eq!(
        get("StatusCallback"),
        Some("https://dlr.example.gov.vn/twilio/agg?ref=smscast-3-99")
    );
}

#[tokio::test]
async fn an_idempotency_header_carries_the_reference() {
    let server = MockServer::start().await;
    Mock::given(path(SEND))
        .and(header("Idempotency-Key", "smscast-3-99"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM2"})))
        .expect(1)
        .mount(&server)
        .await;
    let gw = twilio(
        &server,
        Duration::from_secs(5),
        "idempotency_header = \"Idempotency-Key\"",
    );
    assert!(gw.dedups_by_reference());
    gw.submit(&sms()).await.unwrap();
}

async fn answer(status: u16, body: serde_json::Value, retry_after: Option<&str>) -> SubmitError {
    let server = MockServer::start().await;
    let mut resp = ResponseTemplate::new(status).set_body_json(body);
    if let Some(r) = retry_after {
        resp = resp.insert_header("Retry-After", r);
    }
    Mock::given(path(SEND))
        .respond_with(resp)
        .mount(&server)
        .await;
    let err = twilio(&server, Duration::from_secs(5), "")
        .submit(&sms())
        .await
        .unwrap_err();
    assert!(!format!("{err:?}").contains(TOKEN), "token leaked: {err:?}");
    err
}

fn e(code: i64, message: &str) -> serde_json::Value {
    serde_json::json!({"code": code, "message": message, "status": 400})
}

#[tokio::test]
async fn twilio_error_codes_have_their_class() {
    match answer(
        400,
        e(21211, "The 'To' number is not a valid phone number."),
        None,
    )
    .await
    {
        SubmitError::Permanent { code, .. } => assert_eq!(code.as_deref(), Some("21211")),
        other => panic!("{other:?}"),
    }
    match answer(
        400,
        e(21610, "Attempt to send to unsubscribed recipient"),
        None,
    )
    .await
    {
        SubmitError::Permanent { reason, .. } => assert!(reason.contains("opted out"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match answer(400, e(20429, "Too Many Requests"), Some("3")).await {
        SubmitError::Transient { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("{other:?}"),
    }
    match answer(429, e(20429, "Too Many Requests"), Some("2")).await {
        SubmitError::Transient {
            retry_after,
            http_status,
            ..
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
            assert_eq!(http_status, Some(429));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        answer(401, e(20003, "Authenticate"), None).await,
        SubmitError::Unusable { .. }
    ));
    assert!(matches!(
        answer(
            400,
            e(21606, "The From phone number is not a valid sender"),
            None
        )
        .await,
        SubmitError::Unusable { .. }
    ));
    assert!(matches!(
        answer(503, e(20503, "Service unavailable"), None).await,
        SubmitError::Transient { .. }
    ));
    // A code about our request, not the recipient (and not in any list): never final.
    assert!(matches!(
        answer(400, e(21602, "Message body is required"), None).await,
        SubmitError::Unusable { .. }
    ));
    // Accepted, but no sid to know it by: in doubt, never "failed".
    assert!(matches!(
        answer(201, serde_json::json!({"status": "queued"}), None).await,
        SubmitError::InDoubt { .. }
    ));
}

#[tokio::test]
async fn a_timeout_is_in_doubt() {
    let server = MockServer::start().await;
    Mock::given(path(SEND))
        .and(body_string_contains("To="))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": "SM1"}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let err = twilio(&server, Duration::from_millis(300), "")
        .submit(&sms())
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::InDoubt { .. }), "{err:?}");
}

#[test]
fn a_malformed_base_url_is_refused_at_start_without_echoing_it() {
    let config = Config::parse(&format!(
        r#"
        [gateways.agg]
        kind = "twilio"
        base_url = "https://AC123:{TOKEN}@[not-an-address"
        account_sid = "AC123"
        auth_token = "{TOKEN}"
        "#
    ))
    .unwrap();
    let err = gateway::build(&config, "agg", Duration::from_secs(5))
        .err()
        .expect("a malformed base_url must be refused before any message");
    let msg = format!("{err:#}");
    assert!(msg.contains("base_url"), "{msg}");
    assert!(msg.contains("agg"), "{msg}");
    assert!(
        !msg.contains(TOKEN),
        "the address may carry credentials: {msg}"
    );
}
