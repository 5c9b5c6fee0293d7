//! Messages as staff see them before launch, and personalised messages as recipients get them.

mod common;

use common::{Env, Sim, http_get};

#[test]
fn message_check_shows_encoding_segments_and_the_folded_cost() {
    let env = Env::new("msgcheck");
    let shipped = |name: &str| format!("{}/messages/{name}", env!("CARGO_MANIFEST_DIR"));
    let a = env.json(&[
        "message",
        "check",
        &shipped("action-month-2022.toml"),
        "--json",
    ]);
    assert_eq!(a["encoding"], "UCS-2");
    assert_eq!(a["characters"], 184);
    assert_eq!(a["segments"], 3);
    assert_eq!(a["parts"].as_array().unwrap().len(), 3);
    let joined: String = a["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(joined, a["text"].as_str().unwrap());
    assert!(
        a["offending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["character"] == "ư")
    );

    let f = env.json(&[
        "message",
        "check",
        &shipped("action-month-2022.toml"),
        "--no-diacritics",
        "--json",
    ]);
    assert_eq!(f["encoding"], "GSM-7");
    assert_eq!(f["segments"], 2);
    assert_eq!(f["folded"], true);
    assert!(f["offending"].as_array().unwrap().is_empty());

    let d = env.json(&[
        "message",
        "check",
        &shipped("national-day-2022-06-26.toml"),
        "--json",
    ]);
    assert_eq!(d["encoding"], "UCS-2");
    assert_eq!(d["segments"], 2);

    // A smart quote and an emoji are named with their positions; folding fixes the quote only.
    std::fs::write(env.path("m.txt"), "Kính gửi “bà con” 😀").unwrap();
    let m = env.json(&["message", "check", "m.txt", "--no-diacritics", "--json"]);
    assert_eq!(m["encoding"], "UCS-2");
    let off = m["offending"].as_array().unwrap();
    assert_eq!(off.len(), 1, "{off:?}");
    assert_eq!(off[0]["name"], "emoji");
    assert_eq!(off[0]["position"], 19);
    // Creating a --no-diacritics campaign with a character that cannot fold is refused.
    env.config_for("http://127.0.0.1:9", "");
    std::fs::write(env.path("l.csv"), "phone\n0912345678\n").unwrap();
    env.ok(&["subscribers", "import", "l.csv", "--list", "l"]);
    let out = env.run(&[
        "campaign",
        "create",
        "c",
        "--list",
        "l",
        "--message",
        "m.txt",
        "--no-diacritics",
        "--sender",
        "LONGAN",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("emoji"));
}

#[test]
fn personalised_messages_are_filled_per_recipient_and_holes_are_refused() {
    let env = Env::new("placeholders");
    let sim = Sim::start(&["--keep-bodies"]);
    env.config_for(&sim.url, "");
    std::fs::write(
        env.path("ok.csv"),
        "phone,district,xa\n0912345678,Đức Hòa,Hựu Thạnh\n0983456789,TP Tân An,Phường 1\n",
    )
    .unwrap();
    std::fs::write(
        env.path("hole.csv"),
        "phone,district,xa\n0912345678,Đức Hòa,Hựu Thạnh\n0901234567,Bến Lức,\n",
    )
    .unwrap();
    std::fs::write(
        env.path("msg.txt"),
        "{{Long An}} {xa}, {district}: nói không với ma túy",
    )
    .unwrap();
    env.ok(&["subscribers", "import", "hole.csv", "--list", "hole"]);
    let out = env.run(&[
        "campaign",
        "create",
        "c1",
        "--list",
        "hole",
        "--message",
        "msg.txt",
        "--sender",
        "LONGAN",
        "--hours",
        "00:00-24:00",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 have no value for {xa}") && err.contains("8490****567"),
        "{err}"
    );

    env.ok(&["subscribers", "import", "ok.csv", "--list", "ok"]);
    env.ok(&[
        "campaign",
        "create",
        "c2",
        "--list",
        "ok",
        "--message",
        "msg.txt",
        "--sender",
        "LONGAN",
        "--hours",
        "00:00-24:00",
    ]);
    env.ok(&["send", "c2"]);
    let bodies: serde_json::Value =
        serde_json::from_str(&http_get(&format!("{}/stats/messages", sim.url))).unwrap();
    assert_eq!(
        bodies["84912345678"],
        "{Long An} Hựu Thạnh, Đức Hòa: nói không với ma túy"
    );
    assert_eq!(
        bodies["84983456789"],
        "{Long An} Phường 1, Tân An: nói không với ma túy"
    );
    let r = env.json(&["report", "c2", "--json"]);
    assert_eq!(r["by_state"]["submitted"], 2);
}
