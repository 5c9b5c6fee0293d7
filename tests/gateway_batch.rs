//! Batch requests at the adapter level: the http-json adapter configured by
//! `examples/esms.toml` (500 recipients per request) against the simulator's batch endpoint,
//! and against wiremock for answers the simulator never gives.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use smscast::config::Config;
use smscast::gateway::{self, Gateway, OutboundSms, SubmitError};
use smscast::simulator::{Faults, SimOptions, Simulator};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TEXT: &str = "Hãy nói KHÔNG với ma túy";

/// `examples/esms.toml` pointed at `base`, with inline secrets (`api_key` as given).
fn esms(base: &str, api_key: &str, timeout: Duration) -> Arc<dyn Gateway> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/esms.toml"))
        .unwrap()
        .replace("https://rest.esms.vn", base)
        .replace(
            r#"secrets = { api_key = "ESMS_API_KEY", secret_key = "ESMS_SECRET_KEY" }"#,
            &format!(r#"secret_values = {{ api_key = "{api_key}", secret_key = "SECRET1" }}"#),
        )
        .replace("dlr_token_env = \"ESMS_DLR_TOKEN\"", "dlr_token = \"DT\"")
        .replace("https://dlr.example.gov.vn", "http://127.0.0.1:9");
    gateway::build(&Config::parse(&text).unwrap(), "esms", timeout).unwrap()
}

/// Canonical numbers and references for `n` recipients, numbered from `from`.
struct Rows {
    numbers: Vec<String>,
    refs: Vec<String>,
}

impl Rows {
    fn new(prefix: &str, from: usize, n: usize) -> Self {
        Self {
            numbers: (from..from + n)
                .map(|i| format!("{prefix}{i:0w$}", w = 11 - prefix.len()))
                .collect(),
            refs: (from..from + n).map(|i| format!("smscast-7-{i}")).collect(),
        }
    }
    fn batch(&self) -> Vec<OutboundSms<'_>> {
        self.numbers
            .iter()
            .zip(&self.refs)
            .map(|(to, reference)| OutboundSms {
                reference,
                to,
                from: "LONGAN",
                text: TEXT,
                unicode: true,
            })
            .collect()
    }
}

async fn sim(faults: Faults, latency: Duration) -> Simulator {
    Simulator::start(
        "127.0.0.1:0",
        SimOptions {
            faults,
            latency,
            keep_bodies: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn get(sim: &Simulator, what: &str) -> serde_json::Value {
    reqwest::get(format!("{}{what}", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The simulator took `recipients` numbers in `requests` requests, each number exactly once.
async fn everyone_once(sim: &Simulator, requests: u64, recipients: usize) {
    let stats = get(sim, "/stats").await;
    assert_eq!(stats["requests"], requests);
    assert_eq!(stats["accepted"], recipients as u64);
    let books = get(sim, "/stats/recipients").await;
    let books = books.as_object().unwrap();
    assert_eq!(books.len(), recipients);
    assert!(books.values().all(|n| n == 1), "everyone exactly once");
}

#[tokio::test]
async fn five_hundred_recipients_go_in_one_request_each_accepted_once_with_its_own_id() {
    let sim = sim(Faults::default(), Duration::ZERO).await;
    let gw = esms(&sim.base_url(), "KEY1", Duration::from_secs(30));
    assert_eq!(gw.batch_size(), 500);
    let rows = Rows::new("8491", 0, 500);
    let results = gw.submit_batch(&rows.batch()).await;
    assert_eq!(results.len(), 500);
    let ids: HashSet<String> = results
        .iter()
        .map(|r| r.as_ref().unwrap().gateway_id.clone())
        .collect();
    assert_eq!(ids.len(), 500, "distinct gateway ids");
    everyone_once(&sim, 1, 500).await;
    let recipients = get(&sim, "/stats/recipients").await;
    assert!(rows.numbers.iter().all(|n| recipients[n] == 1));
    assert_eq!(
        get(&sim, "/stats/arrivals").await.as_array().unwrap().len(),
        500
    );
    assert_eq!(get(&sim, "/stats/messages").await[&rows.numbers[3]], TEXT);
}

#[tokio::test]
async fn each_recipients_error_is_its_own_and_ported_numbers_are_not_ours() {
    let sim = sim(
        Faults {
            reject_suffixes: vec!["13".into()],
            ported: vec!["849200".into()],
            ..Default::default()
        },
        Duration::ZERO,
    )
    .await;
    let gw = esms(&sim.base_url(), "KEY1", Duration::from_secs(30));
    // 84910000010..=84910000014, then two ported numbers, then 84910000015.
    let mut rows = Rows::new("8491", 10, 5);
    let ported = Rows::new("849200", 1, 2);
    rows.numbers.extend(ported.numbers);
    rows.refs
        .extend(ported.refs.iter().map(|r| format!("{r}-p")));
    let last = Rows::new("8491", 15, 1);
    rows.numbers.extend(last.numbers);
    rows.refs.extend(last.refs);
    let results = gw.submit_batch(&rows.batch()).await;
    assert_eq!(results.len(), 8);
    for (i, r) in results.iter().enumerate() {
        match i {
            3 => assert!(
                matches!(r, Err(SubmitError::Permanent { code: Some(c), .. }) if c == "105"),
                "{i}: {r:?}"
            ),
            5 | 6 => assert!(
                matches!(r, Err(SubmitError::NotOurs { code: Some(c), .. }) if c == "133"),
                "{i}: {r:?}"
            ),
            _ => assert!(r.is_ok(), "{i}: {r:?}"),
        }
    }
    assert_eq!(get(&sim, "/stats").await["accepted"], 5);
}

#[tokio::test]
async fn a_resent_batch_counts_each_recipient_once_and_keeps_the_ids() {
    let sim = sim(Faults::default(), Duration::ZERO).await;
    let gw = esms(&sim.base_url(), "KEY1", Duration::from_secs(30));
    let rows = Rows::new("8491", 0, 50);
    let ids =
        |rs: Verdicts| -> Vec<String> { rs.into_iter().map(|r| r.unwrap().gateway_id).collect() };
    let first = ids(gw.submit_batch(&rows.batch()).await);
    let again = ids(gw.submit_batch(&rows.batch()).await);
    assert_eq!(first, again);
    let stats = get(&sim, "/stats").await;
    assert_eq!(stats["requests"], 2);
    assert_eq!(stats["accepted"], 50);
    assert_eq!(stats["deduplicated"], 50);
    assert_eq!(stats["duplicates"], 0);
    let recipients = get(&sim, "/stats/recipients").await;
    assert!(recipients.as_object().unwrap().values().all(|n| n == 1));
}

#[tokio::test]
async fn personalised_texts_go_in_one_request_per_text_and_keep_the_order() {
    let sim = sim(Faults::default(), Duration::ZERO).await;
    let gw = esms(&sim.base_url(), "KEY1", Duration::from_secs(30));
    let rows = Rows::new("8491", 0, 4);
    let texts = ["A", "B", "A", "B"];
    let batch: Vec<OutboundSms<'_>> = rows
        .batch()
        .into_iter()
        .zip(texts)
        .map(|(sms, text)| OutboundSms { text, ..sms })
        .collect();
    let results = gw.submit_batch(&batch).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(get(&sim, "/stats").await["requests"], 2);
    let bodies = get(&sim, "/stats/messages").await;
    for (n, t) in rows.numbers.iter().zip(texts) {
        assert_eq!(bodies[n], t, "{n}");
    }
}

type Verdicts = Vec<Result<gateway::Accepted, SubmitError>>;

/// A batch of `n` through the esms example to a simulator with these faults: the verdicts,
/// and the simulator's `/stats`.
async fn batch_of(
    n: usize,
    faults: Faults,
    api_key: &str,
    timeout: Duration,
) -> (Verdicts, serde_json::Value) {
    let sim = sim(faults, Duration::ZERO).await;
    let gw = esms(&sim.base_url(), api_key, timeout);
    let results = gw.submit_batch(&Rows::new("8491", 0, n).batch()).await;
    assert_eq!(results.len(), n, "one verdict per recipient");
    (results, get(&sim, "/stats").await)
}

#[tokio::test]
async fn a_batch_that_times_out_is_in_doubt_for_everyone() {
    let hang = Faults {
        hang: 1.0,
        hang_for: Duration::from_secs(10),
        ..Default::default()
    };
    let (results, stats) = batch_of(20, hang, "KEY1", Duration::from_secs(1)).await;
    for r in &results {
        assert!(matches!(r, Err(SubmitError::InDoubt { .. })), "{r:?}");
    }
    // And rightly so: the gateway took them all.
    assert_eq!(stats["accepted"], 20);
}

#[tokio::test]
async fn refused_credentials_make_everyone_unusable_and_nothing_is_sent() {
    let (results, stats) = batch_of(10, Faults::default(), "", Duration::from_secs(30)).await;
    for r in &results {
        let Err(SubmitError::Unusable { http_status, .. }) = r else {
            panic!("{r:?}")
        };
        assert_eq!(*http_status, Some(401));
    }
    assert_eq!(stats["accepted"], 0);
}

#[tokio::test]
async fn a_throttled_batch_is_transient_for_everyone_with_the_wait_asked() {
    let throttle = Faults {
        throttle: 1.0,
        retry_after_secs: Some(7),
        ..Default::default()
    };
    let (results, stats) = batch_of(10, throttle, "KEY1", Duration::from_secs(30)).await;
    for r in &results {
        let Err(SubmitError::Transient { retry_after, .. }) = r else {
            panic!("{r:?}")
        };
        assert_eq!(*retry_after, Some(Duration::from_secs(7)));
    }
    assert_eq!(stats["accepted"], 0);
}

async fn answering(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batch/send"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn results_find_their_recipients_in_any_order_and_the_unmentioned_are_in_doubt() {
    // Results in reverse order, the second recipient missing, one result for nobody we sent.
    let body = serde_json::json!({"CodeResult": "100", "SMSID": "B1", "Results": [
        {"Phone": "0910000003", "RequestId": "smscast-7-3", "CodeResult": "105", "ErrorMessage": "bad"},
        {"Phone": "0910000002", "RequestId": "smscast-7-2", "CodeResult": "100", "SMSID": "S2"},
        {"Phone": "0999999999", "RequestId": "smscast-9-9", "CodeResult": "100", "SMSID": "S9"},
        {"Phone": "0910000000", "RequestId": "smscast-7-0", "CodeResult": "100", "SMSID": "S0"},
    ]});
    let server = answering(200, &body.to_string()).await;
    let gw = esms(&server.uri(), "KEY1", Duration::from_secs(5));
    let results = gw.submit_batch(&Rows::new("8491", 0, 4).batch()).await;
    assert_eq!(results[0].as_ref().unwrap().gateway_id, "S0");
    assert!(
        matches!(&results[1], Err(SubmitError::InDoubt { reason, .. }) if reason.contains("do not mention")),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().unwrap().gateway_id, "S2");
    assert!(matches!(&results[3], Err(SubmitError::Permanent { .. })));
}

#[tokio::test]
async fn an_unreadable_answer_to_a_batch_is_in_doubt_and_an_error_code_is_everyones() {
    let server = answering(200, "<html>maintenance</html>").await;
    let gw = esms(&server.uri(), "KEY1", Duration::from_secs(5));
    let results = gw.submit_batch(&Rows::new("8491", 0, 3).batch()).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(SubmitError::InDoubt { .. }))),
        "{results:?}"
    );
    // A batch-level code: the brandname refused (unusable) for the whole request.
    let server = answering(200, r#"{"CodeResult": "104", "ErrorMessage": "brandname"}"#).await;
    let gw = esms(&server.uri(), "KEY1", Duration::from_secs(5));
    let results = gw.submit_batch(&Rows::new("8491", 0, 3).batch()).await;
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(SubmitError::Unusable { .. }))),
        "{results:?}"
    );
}

#[tokio::test]
async fn a_numbers_only_batch_gives_each_recipient_the_batch_id_and_its_number() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/send"))
        .and(wiremock::matchers::body_json(serde_json::json!({
            "to": ["84910000000", "84910000001", "84910000002"],
            "content": TEXT,
            "sender": "LONGAN",
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "code": "00", "data": {"tranId": 42, "invalidPhone": ["84910000001"]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = Config::parse(&format!(
        r#"[gateways.speedsms]
kind = "http-json"
url = "{}/send"
code_path = "code"
success_codes = ["00"]
message_id_path = "data.tranId"
batch_size = 500
[gateways.speedsms.template]
to = ["{{to}}"]
[gateways.speedsms.batch]
list_field = "to"
item = "{{to}}"
rejected_path = "data.invalidPhone"
requests_per_second = 1
[gateways.speedsms.batch.template]
content = "{{text}}"
sender = "{{from}}"
"#,
        server.uri()
    ))
    .unwrap();
    let gw = gateway::build(&c, "speedsms", Duration::from_secs(5)).unwrap();
    assert_eq!(gw.requests_per_second(), Some(1.0));
    let results = gw.submit_batch(&Rows::new("8491", 0, 3).batch()).await;
    assert_eq!(results[0].as_ref().unwrap().gateway_id, "42:84910000000");
    assert!(matches!(&results[1], Err(SubmitError::Permanent { .. })));
    assert_eq!(results[2].as_ref().unwrap().gateway_id, "42:84910000002");
}

#[tokio::test]
async fn a_gateway_without_batches_sends_one_request_per_recipient() {
    let sim = sim(Faults::default(), Duration::ZERO).await;
    let c = Config::parse(&format!(
        "[gateways.t]\nkind = \"twilio\"\naccount_sid = \"AC1\"\nauth_token = \"tok\"\nfrom = \"+1\"\nbase_url = \"{}\"\n",
        sim.base_url()
    ));
    let gw = gateway::build(&c.unwrap(), "t", Duration::from_secs(5)).unwrap();
    assert_eq!(gw.batch_size(), 1);
    let results = gw.submit_batch(&Rows::new("8491", 0, 3).batch()).await;
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(get(&sim, "/stats").await["requests"], 3);
}

#[tokio::test]
async fn twenty_thousand_recipients_in_batches_of_500_reach_the_gateway_exactly_once() {
    let sim = sim(Faults::default(), Duration::ZERO).await;
    let gw = esms(&sim.base_url(), "KEY1", Duration::from_secs(60));
    let rows: Vec<Rows> = (0..40).map(|b| Rows::new("8491", b * 500, 500)).collect();
    // Four requests at a time, as a dispatcher with concurrency 4 would send them.
    let rows = Arc::new(rows);
    for four in (0..40).collect::<Vec<usize>>().chunks(4) {
        let mut sent = tokio::task::JoinSet::new();
        for &b in four {
            let (gw, rows) = (gw.clone(), rows.clone());
            sent.spawn(async move { gw.submit_batch(&rows[b].batch()).await });
        }
        while let Some(results) = sent.join_next().await {
            assert!(results.unwrap().iter().all(Result::is_ok));
        }
    }
    everyone_once(&sim, 40, 20_000).await;
}

#[tokio::test]
async fn a_redirect_or_an_oversized_answer_to_a_batch_is_everyones() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("Location", "http://127.0.0.1:9/elsewhere"),
        )
        .mount(&server)
        .await;
    let gw = esms(&server.uri(), "KEY1", Duration::from_secs(5));
    let results = gw.submit_batch(&Rows::new("8491", 0, 3).batch()).await;
    for r in &results {
        assert!(
            matches!(
                r,
                Err(SubmitError::Unusable {
                    http_status: Some(307),
                    ..
                })
            ),
            "{r:?}"
        );
    }
    let huge = format!(
        "{{\"CodeResult\": \"100\", \"pad\": \"{}\"}}",
        "x".repeat(100_000)
    );
    let server = answering(200, &huge).await;
    let gw = esms(&server.uri(), "KEY1", Duration::from_secs(5));
    let results = gw.submit_batch(&Rows::new("8491", 0, 3).batch()).await;
    assert_eq!(results.len(), 3);
    for r in &results {
        assert!(matches!(r, Err(SubmitError::InDoubt { .. })), "{r:?}");
    }
}
