//! Misconfigured, broken or hostile gateways (issue 14): a configuration error never becomes a
//! final per-recipient verdict, a redirect is never followed, an answer body is never read
//! past 64 KiB, a run of identical answers pauses the campaign, throttles never end a message
//! as `failed`, `send` says (and exits 1) when the campaign could not finish, and rates are
//! checked when they are given.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Env, http_get};
use smscast::config::Config;
use smscast::gateway::{self, Gateway, OutboundSms, SubmitError};
use smscast::sample::{self, Shape};
use smscast::simulator::{Faults, SimOptions, Simulator};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

// ---------------------------------------------------------------------------------------
// The adapters, one answer at a time.

fn sms() -> OutboundSms<'static> {
    OutboundSms {
        reference: "smscast-1-2",
        to: "84912345678",
        from: "LONGAN",
        text: "Hello",
        unicode: false,
    }
}

fn twilio_at(url: &str, timeout: Duration) -> std::sync::Arc<dyn Gateway> {
    let c = Config::parse(&format!(
        "[gateways.t]\nkind = \"twilio\"\nbase_url = \"{url}\"\naccount_sid = \"ACx\"\nauth_token = \"tok\"\n"
    ))
    .unwrap();
    gateway::build(&c, "t", timeout).unwrap()
}

fn kannel_at(url: &str) -> std::sync::Arc<dyn Gateway> {
    let c = Config::parse(&format!(
        "[gateways.k]\nkind = \"kannel\"\nurl = \"{url}/cgi-bin/sendsms\"\nusername = \"u\"\npassword = \"pw-SECRET\"\nsmsc = \"wrong\"\n"
    ))
    .unwrap();
    gateway::build(&c, "k", Duration::from_secs(5)).unwrap()
}

fn esms_at(url: &str) -> std::sync::Arc<dyn Gateway> {
    let text =
        std::fs::read_to_string(format!("{}/examples/esms.toml", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .replace("https://rest.esms.vn", url)
            .replace(
                r#"secrets = { api_key = "ESMS_API_KEY", secret_key = "ESMS_SECRET_KEY" }"#,
                r#"secret_values = { api_key = "KEY1", secret_key = "SECRET1" }"#,
            )
            .replace("dlr_token_env = \"ESMS_DLR_TOKEN\"", "dlr_token = \"DT\"");
    gateway::build(
        &Config::parse(&text).unwrap(),
        "esms",
        Duration::from_secs(5),
    )
    .unwrap()
}

async fn answering(resp: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(resp).mount(&server).await;
    server
}

fn json(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn is_unusable(r: &Result<gateway::Accepted, SubmitError>) -> bool {
    matches!(r, Err(SubmitError::Unusable { .. }))
}

#[tokio::test]
async fn twilio_answers_about_configuration_are_unusable_never_permanent() {
    let cases = [
        json(404, serde_json::json!({"message": "Not Found"})),
        ResponseTemplate::new(404).set_body_string("<html>no such page</html>"),
        ResponseTemplate::new(405),
        ResponseTemplate::new(413),
        ResponseTemplate::new(415),
        json(
            400,
            serde_json::json!({"code": 21999, "message": "Something new"}),
        ),
        ResponseTemplate::new(400).set_body_string("Bad Request"),
        json(
            400,
            serde_json::json!({"code": 21408, "message": "Permission to send an SMS has not been enabled for the region"}),
        ),
    ];
    for resp in cases {
        let server = answering(resp.clone()).await;
        let r = twilio_at(&server.uri(), Duration::from_secs(5))
            .submit(&sms())
            .await;
        assert!(is_unusable(&r), "{resp:?} → {r:?}");
    }
    // 408: the gateway gave up reading our request; try again.
    let server = answering(ResponseTemplate::new(408)).await;
    let r = twilio_at(&server.uri(), Duration::from_secs(5))
        .submit(&sms())
        .await;
    assert!(matches!(r, Err(SubmitError::Transient { .. })), "{r:?}");
    // An answer about this recipient stays permanent.
    let server = answering(json(
        400,
        serde_json::json!({"code": 21211, "message": "The 'To' number is not a valid phone number."}),
    ))
    .await;
    let r = twilio_at(&server.uri(), Duration::from_secs(5))
        .submit(&sms())
        .await;
    assert!(matches!(r, Err(SubmitError::Permanent { .. })), "{r:?}");
}

#[tokio::test]
async fn kannel_not_routable_and_unknown_4xx_are_unusable() {
    for resp in [
        ResponseTemplate::new(403).set_body_string("Not routable. Do not try again."),
        ResponseTemplate::new(404).set_body_string("Not found"),
        ResponseTemplate::new(418).set_body_string("I'm a teapot"),
        ResponseTemplate::new(422).set_body_string("Unprocessable"),
    ] {
        let server = answering(resp.clone()).await;
        let r = kannel_at(&server.uri()).submit(&sms()).await;
        assert!(is_unusable(&r), "{resp:?} → {r:?}");
        assert!(!format!("{r:?}").contains("pw-SECRET"), "{r:?}");
    }
    // A number the gateway will not take stays this recipient's problem.
    let server =
        answering(ResponseTemplate::new(403).set_body_string("Number is blacklisted")).await;
    let r = kannel_at(&server.uri()).submit(&sms()).await;
    assert!(matches!(r, Err(SubmitError::Permanent { .. })), "{r:?}");
}

#[tokio::test]
async fn http_json_unlisted_codes_are_in_doubt_on_2xx_and_unusable_otherwise() {
    let code = |c: &str| serde_json::json!({"CodeResult": c, "ErrorMessage": "msg"});
    // 2xx with a code nobody listed: the gateway may have taken it.
    let server = answering(json(200, code("555"))).await;
    let r = esms_at(&server.uri()).submit(&sms()).await;
    assert!(matches!(r, Err(SubmitError::InDoubt { .. })), "{r:?}");
    for resp in [
        json(400, code("555")),
        json(404, serde_json::json!({})),
        ResponseTemplate::new(405),
    ] {
        let server = answering(resp.clone()).await;
        let r = esms_at(&server.uri()).submit(&sms()).await;
        assert!(is_unusable(&r), "{resp:?} → {r:?}");
    }
    // Listed per-recipient codes stay permanent.
    let server = answering(json(200, code("105"))).await;
    let r = esms_at(&server.uri()).submit(&sms()).await;
    assert!(matches!(r, Err(SubmitError::Permanent { .. })), "{r:?}");
}

#[tokio::test]
async fn redirects_are_never_followed_by_any_adapter() {
    let elsewhere = answering(
        json(201, serde_json::json!({"sid": "SMstolen"})), // would look like a success
    )
    .await;
    for status in [301, 302, 303, 307, 308] {
        let server = answering(
            ResponseTemplate::new(status)
                .insert_header("Location", format!("{}/stolen", elsewhere.uri())),
        )
        .await;
        let twilio = twilio_at(&server.uri(), Duration::from_secs(5))
            .submit(&sms())
            .await;
        assert!(is_unusable(&twilio), "twilio {status}: {twilio:?}");
        let kannel = kannel_at(&server.uri()).submit(&sms()).await;
        assert!(is_unusable(&kannel), "kannel {status}: {kannel:?}");
        assert!(!format!("{kannel:?}").contains("pw-SECRET"));
        let esms = esms_at(&server.uri()).submit(&sms()).await;
        assert!(is_unusable(&esms), "http-json {status}: {esms:?}");
    }
    let got = elsewhere.received_requests().await.unwrap();
    assert!(
        got.is_empty(),
        "{} requests reached the other host",
        got.len()
    );
}

/// A raw HTTP server that answers every connection with `head`, then `len` bytes of padding
/// in 64 KiB writes, then holds the connection open. Returns its address and a counter of the
/// bytes it managed to write.
fn streaming_server(
    head: &'static str,
    len: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let w = written.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { return };
            let w = w.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf);
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < len {
                    if s.write_all(&chunk).is_err() {
                        return;
                    }
                    sent += chunk.len();
                    w.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_secs(30));
            });
        }
    });
    (format!("http://{addr}"), written)
}

#[tokio::test]
async fn answer_bodies_are_read_no_further_than_64_kib() {
    // 2xx, no length, 16 MB then silence: in doubt at once, not after the timeout with the
    // whole body in memory.
    let (url, written) = streaming_server(
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"sid\": \"SM1\", \"pad\": \"",
        16 << 20,
    );
    let started = Instant::now();
    let r = twilio_at(&url, Duration::from_secs(4)).submit(&sms()).await;
    assert!(matches!(r, Err(SubmitError::InDoubt { .. })), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}: the body was read to the end",
        started.elapsed()
    );
    let reason = r.unwrap_err().to_string();
    assert!(reason.contains("64 KiB"), "{reason}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        written.load(std::sync::atomic::Ordering::Relaxed) < 12 << 20,
        "the client kept reading"
    );

    // A declared length past the cap is not read at all.
    let (url, _) = streaming_server(
        "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n",
        1 << 20,
    );
    let started = Instant::now();
    let r = kannel_at(&url).submit(&sms()).await;
    assert!(matches!(r, Err(SubmitError::InDoubt { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // An error status with a huge body goes by its status alone.
    let (url, _) = streaming_server(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n",
        16 << 20,
    );
    let started = Instant::now();
    let r = twilio_at(&url, Duration::from_secs(4)).submit(&sms()).await;
    assert!(matches!(r, Err(SubmitError::Transient { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------
// The real binary against a misbehaving simulator (run in this process).

/// The simulator on its own runtime, with a fault mix.
struct FaultySim {
    _rt: tokio::runtime::Runtime,
    url: String,
}

impl FaultySim {
    fn start(faults: Faults) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt
            .block_on(Simulator::start(
                "127.0.0.1:0",
                SimOptions {
                    faults,
                    ..Default::default()
                },
            ))
            .unwrap();
        let url = sim.base_url();
        // Serves until the runtime is dropped with the test.
        std::mem::forget(sim);
        Self { _rt: rt, url }
    }

    fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&http_get(&format!("{}/stats", self.url))).unwrap()
    }
}

/// A list of `rows` numbers and a campaign `june` through the simulator at `url`.
fn campaign(env: &Env, url: &str, rows: u64, create_extra: &[&str]) -> u64 {
    let truth = sample::write_csv(
        &env.path("list.csv"),
        rows,
        14,
        Shape {
            bad_share: 0.0,
            duplicate_share: 0.0,
            messy: false,
        },
    )
    .unwrap();
    env.config_for(url, "");
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    let msg = env.message();
    let mut args = vec![
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
        "500",
    ];
    args.extend_from_slice(create_extra);
    env.ok(&args);
    truth.numbers.len() as u64
}

fn report(env: &Env) -> serde_json::Value {
    env.json(&["report", "june", "--json"])
}

fn state(r: &serde_json::Value, s: &str) -> u64 {
    r["by_state"][s].as_u64().unwrap_or(0)
}

fn send(env: &Env, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["send", "june", "--plain", "--concurrency", "4"];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn a_gateway_answering_404_or_an_unknown_code_to_everything_burns_nobody() {
    for (tag, answer) in [("404", (404, None)), ("unknown", (400, Some(21999)))] {
        let env = Env::new(&format!("burn-{tag}"));
        let sim = FaultySim::start(Faults {
            answer_all: Some(answer),
            ..Default::default()
        });
        let n = campaign(&env, &sim.url, 120, &[]);
        let out = send(&env, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let r = report(&env);
        assert_eq!(
            state(&r, "rejected"),
            0,
            "{tag}: {}\n{stderr}",
            r["by_state"]
        );
        assert_eq!(state(&r, "failed"), 0, "{tag}: {}", r["by_state"]);
        assert_eq!(state(&r, "queued"), n, "{tag}: everyone still to send");
        assert_eq!(r["campaign"]["state"], "paused", "{tag}: {}", r["campaign"]);
        let reason = r["campaign"]["state_reason"].as_str().unwrap_or_default();
        assert!(reason.contains(&answer.0.to_string()), "{tag}: {reason}");
        assert!(
            sim.stats()["requests"].as_u64().unwrap() <= 4 + 1,
            "{tag}: {}",
            sim.stats()
        );
    }
}

#[test]
fn redirects_reach_no_other_host_and_pause_the_campaign() {
    for status in [307, 302] {
        let env = Env::new(&format!("redirect-{status}"));
        let other = FaultySim::start(Faults::default());
        let sim = FaultySim::start(Faults {
            redirect_all: Some((status, other.url.clone())),
            ..Default::default()
        });
        let n = campaign(&env, &sim.url, 30, &[]);
        let out = send(&env, &[]);
        let r = report(&env);
        assert_eq!(
            other.stats()["requests"],
            0,
            "{status}: the other host got the numbers"
        );
        assert_eq!(state(&r, "submitted"), 0, "{status}: {}", r["by_state"]);
        assert_eq!(state(&r, "queued"), n, "{status}: {}", r["by_state"]);
        assert_eq!(r["campaign"]["state"], "paused");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("redirect"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
#[test]
fn a_run_of_identical_rejections_pauses_after_about_20_with_the_answer_quoted() {
    let env = Env::new("same-answer");
    // Every number "invalid": a per-recipient code, but the same for everyone.
    let sim = FaultySim::start(Faults {
        reject_suffixes: vec![String::new()],
        ..Default::default()
    });
    let n = campaign(&env, &sim.url, 300, &[]);
    let out = send(&env, &[]);
    let r = report(&env);
    let rejected = state(&r, "rejected");
    assert!(
        (20..=20 + 4 + 1).contains(&rejected),
        "{rejected} rejected: {}\n{}",
        r["by_state"],
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&r, "queued") + rejected, n);
    assert_eq!(r["campaign"]["state"], "paused");
    let reason = r["campaign"]["state_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("400") && reason.contains("21211"),
        "the answer is quoted: {reason}"
    );
}

#[test]
fn a_huge_answer_is_in_doubt_and_the_run_of_them_pauses() {
    let env = Env::new("huge");
    let sim = FaultySim::start(Faults {
        huge_body: Some(4 << 20),
        ..Default::default()
    });
    let n = campaign(&env, &sim.url, 100, &[]);
    send(&env, &[]);
    let r = report(&env);
    let unknown = state(&r, "unknown");
    assert_eq!(state(&r, "submitted"), 0, "{}", r["by_state"]);
    assert!((1..=20 + 4 + 1).contains(&unknown), "{}", r["by_state"]);
    assert_eq!(state(&r, "queued") + unknown, n);
    assert_eq!(r["campaign"]["state"], "paused");
}

#[test]
fn throttles_never_end_a_message_as_failed_and_a_gateway_that_only_throttles_pauses() {
    let env = Env::new("throttle");
    let sim = FaultySim::start(Faults {
        throttle: 1.0,
        ..Default::default()
    });
    let n = campaign(&env, &sim.url, 40, &["--max-attempts", "2"]);
    let started = Instant::now();
    let out = send(&env, &[]);
    let r = report(&env);
    assert_eq!(
        state(&r, "failed"),
        0,
        "{}\n{}",
        r["by_state"],
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&r, "queued"), n);
    assert_eq!(
        r["campaign"]["state"], "paused",
        "bounded: the breaker pauses"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
#[test]
fn send_exits_1_when_the_campaign_could_not_finish() {
    // Bad credentials: the gateway refuses us, the campaign pauses.
    let env = Env::new("exit-unusable");
    let sim = FaultySim::start(Faults {
        answer_all: Some((401, Some(20003))),
        ..Default::default()
    });
    campaign(&env, &sim.url, 20, &[]);
    let out = send(&env, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("paused") && stderr.contains("401"),
        "{stderr}"
    );

    // The send-by date has passed.
    let env = Env::new("exit-deadline");
    let sim = FaultySim::start(Faults::default());
    campaign(&env, &sim.url, 20, &[]);
    // `campaign create` refuses a past date: this campaign's date passed since (30 June 2022).
    common::set_send_by(&env, "june", 1_656_608_400_000);
    let out = send(&env, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("send-by date has passed"), "{stderr}");
    assert_eq!(sim.stats()["requests"], 0);
}
#[test]
fn rates_are_checked_when_given() {
    let env = Env::new("rates");
    let sim = FaultySim::start(Faults::default());
    campaign(&env, &sim.url, 5, &[]);
    let msg = env.message();
    for bad in ["0", "-1", "NaN", "inf", "1e300", "1e-9", "1000001"] {
        let flag = format!("--rate={bad}");
        let out = env.run(&[
            "campaign",
            "create",
            "x",
            "--list",
            "la",
            "--message",
            &msg,
            &flag,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "campaign create --rate {bad}: {stderr}"
        );
        assert!(
            stderr.contains("--rate") && stderr.contains("between"),
            "{stderr}"
        );
        let out = env.run(&["send", "june", &flag]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "send --rate {bad}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(sim.stats()["requests"], 0);
    // A gateway rate out of range in the configuration is refused before anything is sent.
    env.config_for(&sim.url, "rate = 1e300");
    let out = env.run(&["send", "june"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rate"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(sim.stats()["requests"], 0);
}
