//! Carrier reality (issue 17): limits counted in SMS parts (`sms_per_second`), and test sends
//! to staff phones (`campaign test`).

mod common;

use common::{Env, Sim};

/// A list `la` of `n` VinaPhone numbers (0912000001, …).
fn list(env: &Env, n: usize) {
    let mut csv = String::from("phone\n");
    for i in 1..=n {
        csv.push_str(&format!("0912{i:06}\n"));
    }
    std::fs::write(env.path("list.csv"), csv).unwrap();
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
}

#[test]
fn a_limit_in_sms_parts_holds_at_the_gateway() {
    let env = Env::new("parts-limit");
    let sim = Sim::start(&[]);
    env.config_for(&sim.url, "sms_per_second = 60");
    list(&env, 60);
    // The shipped theme message: 184 Vietnamese characters, UCS-2, 3 parts.
    let msg = env.message();
    let out = env.ok(&[
        "campaign",
        "create",
        "june",
        "--list",
        "la",
        "--message",
        &msg,
        "--rate",
        "1000",
        "--hours",
        "00:00-24:00",
    ]);
    assert!(out.contains("× 3 segment(s)"), "{out}");
    // 60 parts a second is 20 three-part messages a second, whatever the message rate.
    assert!(out.contains("20 messages/s"), "{out}");
    assert!(out.contains("60 SMS parts/s"), "{out}");
    assert!(out.contains("about 3 s"), "{out}");
    let sent = env.run(&["send", "june", "--plain"]);
    let stderr = String::from_utf8_lossy(&sent.stderr);
    assert!(sent.status.success(), "{stderr}");
    assert!(stderr.contains("60 SMS parts/s"), "{stderr}");
    assert_eq!(sim.recipients().len(), 60);
    let arrivals = sim.arrivals();
    assert_eq!(arrivals.len(), 60);
    let parts = common::busiest_second(&arrivals) * 3;
    eprintln!("busiest second at the gateway: {parts} SMS parts");
    assert!(
        parts <= 63,
        "{parts} SMS parts in one second at the gateway; the limit is 60 (+3 burst)"
    );
}

#[test]
fn sms_per_second_is_checked_when_given() {
    let env = Env::new("parts-checked");
    let sim = Sim::start(&[]);
    list(&env, 3);
    let msg = env.message();
    env.config_for(&sim.url, "");
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
    ]);
    for bad in ["0", "-1", "nan", "inf", "1e300", "1e-9", "1000001"] {
        env.config_for(&sim.url, &format!("sms_per_second = {bad}"));
        let create = ["campaign", "create", "x", "--list", "la", "--message", &msg];
        for args in [&["send", "june"][..], &create[..]] {
            let out = env.run(args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?} with {bad}: {stderr}");
            assert!(
                stderr.contains("sms_per_second") && stderr.contains("between"),
                "{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    assert_eq!(sim.accepted(), 0);
}

#[test]
fn a_test_send_reaches_exactly_the_staff_phones_and_leaves_the_campaign_a_draft() {
    let env = Env::new("test-send");
    let sim = Sim::start(&["--keep-bodies"]);
    env.config_for(&sim.url, "");
    std::fs::write(
        env.path("list.csv"),
        "phone,district,xa\n0912345678,Đức Hòa,Hựu Thạnh\n0983456789,TP Tân An,Phường 1\n",
    )
    .unwrap();
    std::fs::write(
        env.path("msg.txt"),
        "{{Long An}} {xa}, {district}: nói không với ma túy",
    )
    .unwrap();
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    env.ok(&[
        "campaign",
        "create",
        "june",
        "--list",
        "la",
        "--message",
        "msg.txt",
        "--sender",
        "LONGAN",
        "--hours",
        "00:00-24:00",
    ]);
    let bodies = || -> serde_json::Value {
        serde_json::from_str(&common::http_get(&format!("{}/stats/messages", sim.url))).unwrap()
    };

    // Two staff phones, written two ways (and one twice): personalised as the first member.
    let out = env.ok(&[
        "campaign",
        "test",
        "june",
        "--to",
        "0977000001,+84977000002,84977000001",
    ]);
    assert!(
        out.contains("8497****001") && out.contains("submitted"),
        "{out}"
    );
    assert!(!out.contains("84977000001"), "numbers are masked: {out}");
    let reached = sim.recipients();
    let mut numbers: Vec<&String> = reached.keys().collect();
    numbers.sort();
    assert_eq!(numbers, ["84977000001", "84977000002"]);
    assert!(reached.values().all(|n| *n == 1), "{reached:?}");
    let b = bodies();
    assert_eq!(
        b["84977000001"],
        "{Long An} Hựu Thạnh, Đức Hòa: nói không với ma túy"
    );
    assert_eq!(b["84977000002"], b["84977000001"]);

    // --as another member of the list.
    env.ok(&[
        "campaign",
        "test",
        "june",
        "--to",
        "0977000003",
        "--as",
        "0983456789",
    ]);
    assert_eq!(
        bodies()["84977000003"],
        "{Long An} Phường 1, Tân An: nói không với ma túy"
    );
    assert_eq!(sim.accepted(), 3);

    // Refused before anything goes out: a bad number, a non-member for --as, too many numbers.
    let many = (10..=20)
        .map(|i| format!("09770000{i:02}"))
        .collect::<Vec<_>>()
        .join(",");
    for (args, why) in [
        (
            &["campaign", "test", "june", "--to", "0977000004,12345"][..],
            "\"12345\" is not a Vietnamese mobile number",
        ),
        (
            &[
                "campaign",
                "test",
                "june",
                "--to",
                "0977000004",
                "--as",
                "0977000009",
            ][..],
            "not in list \"la\"",
        ),
        (
            &["campaign", "test", "june", "--to", &many][..],
            "at most 10 staff phones",
        ),
    ] {
        let out = env.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    assert_eq!(sim.accepted(), 3);

    // The campaign is untouched: a draft with no deliveries.
    let show = env.json(&["campaign", "show", "june", "--json"]);
    assert_eq!(show["campaign"]["state"], "draft", "{show}");
    assert_eq!(show["states"], serde_json::json!({}), "{show}");

    // Audited as a test, each outcome recorded, numbers masked.
    let audit = env.ok(&["audit", "--json"]);
    assert!(!audit.contains("84977000001"), "{audit}");
    let entries: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let results: Vec<&serde_json::Value> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "test_send_result")
        .collect();
    assert_eq!(results.len(), 2, "{audit}");
    let details: serde_json::Value =
        serde_json::from_str(results[0]["details"].as_str().unwrap()).unwrap();
    let first = &details["results"];
    assert_eq!(first.as_array().unwrap().len(), 2, "{audit}");
    assert_eq!(first[0]["to"], "8497****001");
    assert_eq!(first[0]["outcome"], "submitted");
    assert!(
        first[0]["gateway_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    // The real send reaches the list, and only the list: the tests held nobody back.
    env.ok(&["send", "june"]);
    assert_eq!(sim.accepted(), 5);
    assert_eq!(
        env.json(&["report", "june", "--json"])["by_state"]["submitted"],
        2
    );

    // A completed campaign takes no test.
    let out = env.run(&["campaign", "test", "june", "--to", "0977000001"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("completed"), "{stderr}");
    assert_eq!(sim.accepted(), 5);
}

#[test]
fn a_personalised_text_is_charged_its_own_parts() {
    let env = Env::new("parts-personal");
    let sim = Sim::start(&["--keep-bodies"]);
    env.config_for(&sim.url, "sms_per_second = 60");
    let rows = |xa: &str| {
        let mut csv = String::from("phone,xa\n");
        for i in 1..=45 {
            csv.push_str(&format!("0912{i:06},{xa}\n"));
        }
        csv
    };
    // When the campaign is created the list holds one short text: one part, so the campaign
    // says 1.
    std::fs::write(env.path("short.csv"), "phone,xa\n0913000001,Xã 1\n").unwrap();
    env.ok(&["subscribers", "import", "short.csv", "--list", "la"]);
    std::fs::write(env.path("msg.txt"), "Long An {xa}: nói không với ma túy").unwrap();
    env.ok(&[
        "campaign",
        "create",
        "june",
        "--list",
        "la",
        "--message",
        "msg.txt",
        "--sender",
        "LONGAN",
        "--rate",
        "1000",
        "--hours",
        "00:00-24:00",
    ]);
    // Members with long values join the list before the send: each of their texts is 3
    // parts, and each must count 3 (the campaign's own figure, 1, would let 180 parts a
    // second out).
    let long = "Ấp Bình Hòa Bắc xã Hựu Thạnh huyện Đức Hòa tỉnh Long An ".repeat(2);
    std::fs::write(env.path("long.csv"), rows(long.trim())).unwrap();
    env.ok(&["subscribers", "import", "long.csv", "--list", "la"]);
    env.ok(&["send", "june"]);
    let bodies: std::collections::HashMap<String, String> =
        serde_json::from_str(&common::http_get(&format!("{}/stats/messages", sim.url))).unwrap();
    let long_ones: Vec<&String> = bodies
        .iter()
        .filter(|(n, _)| n.starts_with("84912"))
        .map(|(_, t)| t)
        .collect();
    assert_eq!(long_ones.len(), 45, "{bodies:?}");
    for text in long_ones {
        let units: usize = text.encode_utf16().count();
        assert!(
            (135..=201).contains(&units),
            "not 3 UCS-2 parts: {units} units"
        );
    }
    // Every message counts 3 here, the short one too at most: an upper bound.
    let parts = common::busiest_second(&sim.arrivals()) * 3;
    eprintln!("busiest second at the gateway: {parts} SMS parts");
    assert!(
        parts <= 63,
        "{parts} SMS parts in one second at the gateway"
    );
}
