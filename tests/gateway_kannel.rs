//! The Kannel adapter against a real HTTP server (wiremock): the exact request, success,
//! each error class, timeout.

use std::time::Duration;

use smscast::config::Config;
use smscast::gateway::{self, Gateway, OutboundSms, SubmitError};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PASSWORD: &str = "pa$$ word&1";
const TEXT: &str = "Tháng hành động phòng, chống ma túy: hãy nói KHÔNG với ma túy!";

fn kannel(server: &MockServer, timeout: Duration) -> std::sync::Arc<dyn Gateway> {
    let config = Config::parse(&format!(
        r#"
        [gateways.viettel]
        kind = "kannel"
        url = "{}/cgi-bin/sendsms"
        username = "smscast"
        password = "{PASSWORD}"
        from = "LONGAN"
        dlr_url = "https://dlr.example.gov.vn/"
        dlr_token = "tok/en"
        smsc = "viettel-smpp"
        "#,
        server.uri()
    ))
    .unwrap();
    gateway::build(&config, "viettel", timeout).unwrap()
}

fn sms(unicode: bool) -> OutboundSms<'static> {
    OutboundSms {
        reference: "smscast-7-42",
        to: "84912345678",
        from: "IGNORED",
        text: if unicode { TEXT } else { "Hello" },
        unicode,
    }
}

#[tokio::test]
async fn sends_the_exact_request_and_takes_our_reference_as_the_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/sendsms"))
        .and(query_param("username", "smscast"))
        .and(query_param("password", PASSWORD))
        .and(query_param("from", "LONGAN"))
        .and(query_param("to", "84912345678"))
        .and(query_param("text", TEXT))
        .and(query_param("charset", "UTF-8"))
        .and(query_param("coding", "2"))
        .and(query_param("smsc", "viettel-smpp"))
        .and(query_param("dlr-mask", "31"))
        .and(query_param(
            "dlr-url",
            "https://dlr.example.gov.vn/kannel/viettel?token=tok%2Fen&ref=smscast-7-42&status=%d&answer=%A&to=%p&at=%T",
        ))
        .respond_with(ResponseTemplate::new(202).set_body_string("0: Accepted for delivery"))
        .expect(1)
        .mount(&server)
        .await;
    let gw = kannel(&server, Duration::from_secs(5));
    let ok = gw.submit(&sms(true)).await.unwrap();
    assert_eq!(ok.gateway_id, "smscast-7-42");
    assert_eq!(ok.http_status, 202);
    assert!(!gw.dedups_by_reference());
    // The raw query really carries UTF-8 percent-encoded text, not `?`s.
    let reqs = server.received_requests().await.unwrap();
    let q = reqs[0].url.query().unwrap().to_string();
    assert!(q.contains("text=Th%C3%A1ng"), "{q}");
}

#[tokio::test]
async fn gsm_text_goes_without_coding() {
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/sendsms"))
        .respond_with(ResponseTemplate::new(202).set_body_string("3: Queued for later delivery"))
        .mount(&server)
        .await;
    let gw = kannel(&server, Duration::from_secs(5));
    gw.submit(&sms(false)).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let pairs: Vec<(String, String)> = reqs[0]
        .url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    assert!(pairs.iter().all(|(k, _)| k != "coding"), "{pairs:?}");
    assert!(pairs.contains(&("charset".into(), "UTF-8".into())));
}

async fn answer(status: u16, body: &str, header: Option<(&str, &str)>) -> SubmitError {
    let server = MockServer::start().await;
    let mut resp = ResponseTemplate::new(status).set_body_string(body);
    if let Some((k, v)) = header {
        resp = resp.insert_header(k, v);
    }
    Mock::given(path("/cgi-bin/sendsms"))
        .respond_with(resp)
        .mount(&server)
        .await;
    let err = kannel(&server, Duration::from_secs(5))
        .submit(&sms(true))
        .await
        .unwrap_err();
    assert!(
        !err.to_string().contains(PASSWORD),
        "the password leaked: {err}"
    );
    err
}

#[tokio::test]
async fn every_reply_code_has_its_class() {
    assert!(matches!(
        answer(400, "Missing receiver number, rejected", None).await,
        SubmitError::Permanent {
            http_status: Some(400),
            ..
        }
    ));
    assert!(matches!(
        answer(400, "Sender missing and no global set, rejected", None).await,
        SubmitError::Unusable { .. }
    ));
    assert!(matches!(
        answer(403, "Authorization failed for sendsms", None).await,
        SubmitError::Unusable { .. }
    ));
    // A wrong smsc gives this for every message: ours to fix, never final.
    assert!(matches!(
        answer(403, "Not routable. Do not try again.", None).await,
        SubmitError::Unusable { .. }
    ));
    match answer(
        503,
        "Temporal failure, try again later.",
        Some(("Retry-After", "7")),
    )
    .await
    {
        SubmitError::Transient { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        answer(202, "something else", None).await,
        SubmitError::InDoubt { .. }
    ));
}

#[tokio::test]
async fn a_timeout_is_in_doubt_and_a_refused_connection_is_transient() {
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/sendsms"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_string("0: Accepted for delivery")
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let err = kannel(&server, Duration::from_millis(300))
        .submit(&sms(true))
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::InDoubt { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains(PASSWORD));

    // Nobody listens on this port any more.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = Config::parse(&format!(
        "[gateways.k]\nkind = \"kannel\"\nurl = \"http://{closed}/cgi-bin/sendsms\"\nusername = \"u\"\npassword = \"{PASSWORD}\"\n"
    ))
    .unwrap();
    let err = gateway::build(&config, "k", Duration::from_secs(2))
        .unwrap()
        .submit(&sms(false))
        .await
        .unwrap_err();
    assert!(matches!(err, SubmitError::Transient { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains(PASSWORD));
}

/// A Kannel that sends a receipt per part of a long message: the dlr-url asks for the SMSC's
/// id of the part (`%F`), which tells the parts apart.
#[tokio::test]
async fn receipts_per_part_put_the_part_id_in_the_dlr_url() {
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/sendsms"))
        .and(query_param(
            "dlr-url",
            "https://dlr.example.gov.vn/kannel/viettel?token=t&ref=smscast-7-42&status=%d&part=%F&answer=%A&to=%p&at=%T",
        ))
        .respond_with(ResponseTemplate::new(202).set_body_string("0: Accepted for delivery"))
        .expect(1)
        .mount(&server)
        .await;
    let config = Config::parse(&format!(
        r#"
        [gateways.viettel]
        kind = "kannel"
        url = "{}/cgi-bin/sendsms"
        username = "smscast"
        password = "p"
        dlr_url = "https://dlr.example.gov.vn"
        dlr_token = "t"
        receipts_per_part = true
        "#,
        server.uri()
    ))
    .unwrap();
    let gw = gateway::build(&config, "viettel", Duration::from_secs(5)).unwrap();
    gw.submit(&sms(false)).await.unwrap();
}

#[test]
fn a_dlr_url_without_a_token_is_refused() {
    let err = Config::parse(
        "[gateways.k]\nkind = \"kannel\"\nurl = \"http://x\"\nusername = \"u\"\npassword = \"p\"\ndlr_url = \"http://d\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("dlr_token_env"), "{err}");
}

#[test]
fn the_shipped_example_is_valid() {
    let text = std::fs::read_to_string(format!(
        "{}/examples/kannel.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.default_gateway().unwrap(), "viettel");
    assert_eq!(c.dlr.validity_hours, 48.0);
}
