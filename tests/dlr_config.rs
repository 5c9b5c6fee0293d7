//! A configuration that cannot lose receipts silently: callback URLs that do not reach
//! `dlr serve`'s routes are refused when the configuration loads, naming the URL to use; and
//! the README's configuration section, copied from README.md as it is, loads and takes a
//! signed receipt.

mod common;

use std::time::Duration;

use smscast::config::Config;
use smscast::dlr::{DlrOptions, DlrServer, Receivers, auth};

/// The ```toml blocks of README.md's "Configuration" and "Gateways" sections, verbatim.
fn readme_config_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("## Configuration")
        .expect("README.md has a Configuration section");
    let end = readme[start..]
        .find("### Delivery receipts")
        .map_or(readme.len(), |e| start + e);
    let section = &readme[start..end];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find("```toml\n") {
        let body = &rest[i + "```toml\n".len()..];
        let j = body.find("\n```").expect("closed block");
        blocks.push(body[..j + 1].to_string());
        rest = &body[j..];
    }
    assert!(
        !blocks.is_empty(),
        "no ```toml block in the Configuration section"
    );
    blocks
}

fn twilio(status_callback: &str) -> String {
    format!(
        "[gateways.aggregator]\nkind = \"twilio\"\nbase_url = \"https://api.example.com\"\naccount_sid = \"AC1\"\nauth_token_env = \"T\"\nstatus_callback = \"{status_callback}\"\n"
    )
}

fn kannel(dlr_url: &str) -> String {
    format!(
        "[gateways.viettel]\nkind = \"kannel\"\nurl = \"http://127.0.0.1:13013/cgi-bin/sendsms\"\nusername = \"u\"\npassword_env = \"P\"\ndlr_url = \"{dlr_url}\"\ndlr_token_env = \"D\"\n"
    )
}

#[test]
fn a_status_callback_that_misses_the_twilio_route_is_refused_naming_the_url() {
    // The README's old example: every receipt was lost.
    for wrong in [
        "https://dlr.example.gov.vn/twilio",
        "https://dlr.example.gov.vn/",
        "https://dlr.example.gov.vn/twilio/other",
        "https://dlr.example.gov.vn/dlr/twilio/aggregator",
        "https://dlr.example.gov.vn/twilio/aggregator/",
    ] {
        let err = format!("{:#}", Config::parse(&twilio(wrong)).unwrap_err());
        assert!(
            err.contains("https://dlr.example.gov.vn/twilio/aggregator\""),
            "{wrong}: {err}"
        );
        assert!(err.contains("status_callback"), "{err}");
    }
    for not_a_url in [
        "dlr.example.gov.vn/twilio/aggregator",
        "ftp://x/twilio/aggregator",
    ] {
        let err = format!("{:#}", Config::parse(&twilio(not_a_url)).unwrap_err());
        assert!(err.contains("/twilio/aggregator"), "{not_a_url}: {err}");
    }
    // Right: with a port, with a query of its own.
    for right in [
        "https://dlr.example.gov.vn/twilio/aggregator",
        "http://127.0.0.1:8788/twilio/aggregator",
        "https://dlr.example.gov.vn/twilio/aggregator?src=x",
    ] {
        Config::parse(&twilio(right)).unwrap_or_else(|e| panic!("{right}: {e:#}"));
    }
}

#[test]
fn a_dlr_url_that_misses_the_receipt_routes_is_refused_naming_the_url() {
    for wrong in [
        "https://dlr.example.gov.vn/kannel/viettel",
        "https://dlr.example.gov.vn/dlr",
        "https://dlr.example.gov.vn/?x=1",
    ] {
        let err = format!("{:#}", Config::parse(&kannel(wrong)).unwrap_err());
        assert!(
            err.contains("dlr_url = \"https://dlr.example.gov.vn\""),
            "{wrong}: {err}"
        );
        assert!(err.contains("/kannel/viettel"), "{err}");
    }
    assert!(Config::parse(&kannel("127.0.0.1:8788")).is_err());
    for right in [
        "https://dlr.example.gov.vn",
        "https://dlr.example.gov.vn/",
        "http://127.0.0.1:8788",
    ] {
        Config::parse(&kannel(right)).unwrap_or_else(|e| panic!("{right}: {e:#}"));
    }
}

#[test]
fn the_binary_refuses_to_start_with_a_status_callback_that_loses_receipts() {
    let env = common::Env::new("badcallback");
    std::fs::write(
        env.path("smscast.toml"),
        twilio("https://dlr.example.gov.vn/twilio"),
    )
    .unwrap();
    let out = env
        .cmd()
        .env("T", "x")
        .args(["dlr", "serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("status_callback = \"https://dlr.example.gov.vn/twilio/aggregator\""),
        "{err}"
    );
}

#[tokio::test]
async fn the_readme_configuration_loads_as_written_and_takes_a_signed_receipt() {
    let blocks = readme_config_blocks();
    let mut configs = Vec::new();
    for block in &blocks {
        configs.push(
            Config::parse(block)
                .unwrap_or_else(|e| panic!("README block does not load: {e:#}\n{block}")),
        );
    }
    // The first block is the whole smscast.toml of the section: its Twilio gateway's
    // receipts reach `dlr serve` and pass its signature check.
    let config = &configs[0];
    let smscast::config::GatewayConfig::Twilio(t) = &config.gateways["aggregator"] else {
        panic!("the README's example gateway is a twilio one");
    };
    let callback = t
        .status_callback
        .clone()
        .expect("the README shows a status_callback");
    let token_var = t.auth_token_env.clone().unwrap();
    // SAFETY: set before any thread of this test reads the environment; no other test in
    // this file reads this variable.
    unsafe { std::env::set_var(&token_var, "readme-token") };
    let dir = common::TempDir::new("readme");
    let store = common::open_store(&dir).await;
    let server = DlrServer::start(
        store.clone(),
        Receivers::from_config(config).unwrap(),
        "127.0.0.1:0",
        DlrOptions {
            upkeep_every: Duration::from_secs(3600),
            validity: Duration::from_secs(3600),
            unmatched_after: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    // The public URL's path is the one `dlr serve` answers.
    let path = callback.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    let form = [("MessageSid", "SM1"), ("MessageStatus", "delivered")];
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = auth::twilio_signature(
        "readme-token",
        &format!("{callback}?ref=smscast-1-1"),
        &params,
    );
    let r = reqwest::Client::new()
        .post(format!("{}{path}?ref=smscast-1-1", server.base_url()))
        .header("X-Twilio-Signature", sig)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    assert_eq!(store.receipt_counts().await.unwrap().total, 1);
    server.stop().await;
}
