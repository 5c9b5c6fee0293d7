//! Carrier-run campaigns (issue 17): a carrier's share of a campaign is exported for the
//! carrier to send itself (`campaign export --carrier`), `send` sends only the other carriers'
//! numbers, and the carrier's result file comes back into the same record
//! (`results import --carrier`), so one report covers both paths. Runs on SQLite, and on
//! PostgreSQL with SMSCAST_TEST_BACKEND=postgres.

mod common;

use common::{Env, Sim};
use serde_json::{Value, json};

/// Six Viettel numbers (098), three MobiFone (090), two VinaPhone (091).
const LIST: &str = "phone\n\
    0981000001\n0981000002\n0981000003\n0981000004\n0981000005\n0981000006\n\
    0901000001\n0901000002\n0901000003\n\
    0911000001\n0911000002\n";

const VIETTEL: [&str; 6] = [
    "84981000001",
    "84981000002",
    "84981000003",
    "84981000004",
    "84981000005",
    "84981000006",
];

/// A messy result file: semicolons, Vietnamese headers, CRLF, numbers in three forms, English,
/// SMPP and Vietnamese status words, two time formats; lines 7 to 11 match nothing.
const RESULTS: &str = "Số thuê bao;Trạng thái;Thời gian\r\n\
    0981000001;DELIVRD;30/11/2026 10:00:00\r\n\
    84981000002;thành công;2026-11-30 10:01:00\r\n\
    +84981000003;UNDELIV;2026-11-30 10:02:00\r\n\
    0981000004;thất bại;\r\n\
    0981000005;pending;\r\n\
    0901000001;delivered;2026-11-30 10:00:00\r\n\
    0981999999;delivered;\r\n\
    12345;delivered;\r\n\
    0981000006;maybe;\r\n\
    0981000006;delivered;yesterday\r\n";

fn setup(name: &str) -> (Env, Sim) {
    let env = Env::new(name);
    let sim = Sim::start(&[]);
    env.config_for(&sim.url, "");
    std::fs::write(env.path("list.csv"), LIST).unwrap();
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    env.create_campaign("june", &[]);
    (env, sim)
}

fn by_state(env: &Env) -> Value {
    let r = env.json(&["report", "june", "--format", "json"]);
    let mut s = r["by_state"].clone();
    // Only the states this test is about, and every one of them.
    s.as_object_mut().unwrap().retain(|_, n| n != 0);
    s
}

fn export(env: &Env) -> Value {
    env.json(&[
        "campaign",
        "export",
        "june",
        "--carrier",
        "viettel",
        "--out",
        "vt.csv",
        "--json",
    ])
}

fn import(env: &Env, file: &str) -> Value {
    env.json(&[
        "results",
        "import",
        "june",
        file,
        "--carrier",
        "Viettel",
        "--json",
    ])
}

fn unmatched_lines(r: &Value) -> Vec<u64> {
    r["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["line"].as_u64().unwrap())
        .collect()
}

#[test]
fn export_send_and_import_give_one_exact_record() {
    let (env, sim) = setup("carrier-run");

    // The export launches the draft and hands Viettel its six numbers.
    let e = export(&env);
    assert_eq!(e["newly_handed"], 6, "{e}");
    assert_eq!(e["rows"], 6, "{e}");
    let file = std::fs::read(env.path("vt.csv")).unwrap();
    let mut csv = csv::Reader::from_reader(&file[..]);
    assert_eq!(csv.headers().unwrap(), vec!["msisdn", "text"]);
    let rows: Vec<(String, String)> = csv
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect();
    assert_eq!(
        rows.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        VIETTEL
    );
    let show = env.json(&["campaign", "show", "june", "--json"]);
    assert_eq!(show["campaign"]["state"], "running", "{show}");
    let text = show["campaign"]["message_text"].as_str().unwrap();
    assert!(!text.is_empty());
    for (_, t) in &rows {
        assert_eq!(t, text, "the text exactly as sent");
    }
    assert_eq!(by_state(&env), json!({"handed": 6, "queued": 5}));
    let table = env.ok(&["report", "june"]);
    assert!(table.contains("Handed to carrier to send"), "{table}");

    // Again: the same file, nothing changed.
    let again = export(&env);
    assert_eq!(again["newly_handed"], 0, "{again}");
    assert_eq!(again["sha256"], e["sha256"]);
    assert_eq!(std::fs::read(env.path("vt.csv")).unwrap(), file);

    // `send` sends the other carriers' numbers and never a handed one.
    env.ok(&["send", "june"]);
    let sent = sim.recipients();
    assert_eq!(sent.len(), 5, "{sent:?}");
    for n in VIETTEL {
        assert!(
            !sent.keys().any(|k| k.ends_with(&n[2..])),
            "{n} was handed to Viettel but went out through the gateway: {sent:?}"
        );
    }
    assert!(sent.values().all(|&times| times == 1), "{sent:?}");
    assert_eq!(by_state(&env), json!({"handed": 6, "submitted": 5}));

    // The carrier's results come back.
    std::fs::write(env.path("results.csv"), RESULTS).unwrap();
    let r = import(&env, "results.csv");
    assert_eq!(r["rows_read"], 10, "{r}");
    assert_eq!(r["changed"], 5, "{r}");
    assert_eq!(r["already_recorded"], 0, "{r}");
    assert_eq!(
        r["changed_to"],
        json!({"delivered": 2, "failed": 2, "unknown": 1})
    );
    assert_eq!(unmatched_lines(&r), [7, 8, 9, 10, 11], "{r}");
    let reasons: Vec<&str> = r["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].contains("not in viettel's share"), "{reasons:?}");
    assert!(reasons[1].contains("not in viettel's share"), "{reasons:?}");
    assert!(reasons[2].contains("not a mobile number"), "{reasons:?}");
    assert!(
        reasons[3].contains("unknown status \"maybe\""),
        "{reasons:?}"
    );
    assert!(reasons[4].contains("time \"yesterday\""), "{reasons:?}");
    // Numbers in the output are masked.
    assert!(!r.to_string().contains("0901000001"), "{r}");
    let expected = json!({
        "delivered": 2, "failed": 2, "unknown": 1, "handed": 1, "submitted": 5
    });
    assert_eq!(by_state(&env), expected);
    let report = env.json(&["report", "june", "--format", "json"]);
    let vt = report["by_carrier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "viettel")
        .unwrap();
    assert_eq!(vt["total"], 6, "{report}");

    // The same file again changes nothing.
    let r2 = import(&env, "results.csv");
    assert_eq!(r2["changed"], 0, "{r2}");
    assert_eq!(r2["already_recorded"], 5, "{r2}");
    assert_eq!(unmatched_lines(&r2), [7, 8, 9, 10, 11], "{r2}");
    assert_eq!(by_state(&env), expected);

    // A later file completes a pending result; a final result is never corrected.
    std::fs::write(
        env.path("later.csv"),
        "msisdn,status,time\n\
         0981000005,delivered,2026-11-30 12:00\n\
         0981000001,failed,2026-11-30 12:00\n\
         0981000006,expired,\n",
    )
    .unwrap();
    let r3 = import(&env, "later.csv");
    assert_eq!(r3["changed"], 2, "{r3}");
    assert_eq!(unmatched_lines(&r3), [3], "{r3}");
    assert!(
        r3["unmatched"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already recorded as delivered"),
        "{r3}"
    );
    assert_eq!(
        by_state(&env),
        json!({"delivered": 3, "failed": 2, "expired": 1, "submitted": 5})
    );

    // Another `send` still sends nothing to Viettel's numbers, nor twice to the others.
    env.ok(&["send", "june"]);
    assert_eq!(sim.recipients(), sent);

    // Both paths are in the audit log, with the files' hashes and counts.
    let audit = env.json(&["audit", "--json"]);
    let actions: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "carrier_export" || a["action"] == "carrier_results_import")
        .collect();
    assert_eq!(actions.len(), 5, "{audit}");
    let details: Value = serde_json::from_str(actions[2]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["changed"], 5, "{details}");
    assert_eq!(details["unmatched"], 5, "{details}");
    assert_eq!(details["sha256"].as_str().unwrap().len(), 64, "{details}");
    env.ok(&["audit", "--verify"]);
}

#[test]
fn a_result_file_that_cannot_be_read_imports_nothing() {
    let (env, _sim) = setup("carrier-run-broken");
    export(&env);
    // Good rows first, then a quote that is never closed: the file is refused whole.
    std::fs::write(
        env.path("broken.csv"),
        "msisdn,status\n0981000001,delivered\n0981000002,\"delivered\n0981000003,failed\n",
    )
    .unwrap();
    let out = env.run(&[
        "results",
        "import",
        "june",
        "broken.csv",
        "--carrier",
        "viettel",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(by_state(&env), json!({"handed": 6, "queued": 5}));

    // Results from another carrier's name match none of Viettel's share.
    std::fs::write(env.path("r.csv"), "msisdn,status\n0981000001,delivered\n").unwrap();
    let r = env.json(&[
        "results",
        "import",
        "june",
        "r.csv",
        "--carrier",
        "mobifone",
        "--json",
    ]);
    assert_eq!(r["changed"], 0, "{r}");
    assert_eq!(unmatched_lines(&r), [2], "{r}");
    assert_eq!(by_state(&env), json!({"handed": 6, "queued": 5}));
}

#[test]
fn a_cancelled_campaign_is_not_handed_over_and_txt_lists_numbers() {
    let (env, _sim) = setup("carrier-run-cancel");
    let e = env.json(&[
        "campaign",
        "export",
        "june",
        "--carrier",
        "vinaphone",
        "--out",
        "vn.txt",
        "--format",
        "txt",
        "--json",
    ]);
    assert_eq!(e["rows"], 2, "{e}");
    assert_eq!(
        std::fs::read_to_string(env.path("vn.txt")).unwrap(),
        "84911000001\n84911000002\n"
    );
    env.ok(&["campaign", "cancel", "june"]);
    let out = env.run(&[
        "campaign",
        "export",
        "june",
        "--carrier",
        "viettel",
        "--out",
        "vt.csv",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cancelled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.path("vt.csv").exists());
    assert_eq!(by_state(&env), json!({"handed": 2, "queued": 9}));
}

#[test]
fn a_result_file_without_a_header_is_read_by_position() {
    let (env, _sim) = setup("carrier-run-noheader");
    export(&env);
    // Tab separated, no header: number, status, time.
    std::fs::write(
        env.path("r.tsv"),
        "0981000001\tDELIVRD\t2026-11-30 10:00\n0981000002\tchưa rõ\t\n0981000003\tREJECTD\t\n",
    )
    .unwrap();
    let r = import(&env, "r.tsv");
    assert_eq!(r["status_column"], "column 2", "{r}");
    assert_eq!(r["time_column"], "column 3", "{r}");
    assert_eq!(
        r["changed_to"],
        json!({"delivered": 1, "unknown": 1, "failed": 1}),
        "{r}"
    );
    assert_eq!(
        by_state(&env),
        json!({"delivered": 1, "unknown": 1, "failed": 1, "handed": 3, "queued": 5})
    );
}

#[test]
fn a_personalised_text_is_exported_as_each_person_gets_it() {
    let env = Env::new("carrier-run-personal");
    let sim = Sim::start(&["--keep-bodies"]);
    env.config_for(&sim.url, "");
    std::fs::write(
        env.path("ok.csv"),
        "phone,district,xa\n0912345678,Đức Hòa,Hựu Thạnh\n0983456789,TP Tân An,Phường 1\n",
    )
    .unwrap();
    std::fs::write(
        env.path("msg.txt"),
        "{{Long An}} {xa}, {district}: nói không với ma túy",
    )
    .unwrap();
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
    // A folder that does not exist: refused before anything is handed over.
    let out = env.run(&[
        "campaign",
        "export",
        "c2",
        "--carrier",
        "viettel",
        "--out",
        "no/such/dir/vt.csv",
    ]);
    assert!(!out.status.success());
    let show = env.json(&["campaign", "show", "c2", "--json"]);
    assert_eq!(show["campaign"]["state"], "draft", "{show}");

    env.ok(&[
        "campaign",
        "export",
        "c2",
        "--carrier",
        "viettel",
        "--out",
        "vt.csv",
    ]);
    assert_eq!(
        std::fs::read_to_string(env.path("vt.csv")).unwrap(),
        "msisdn,text\n84983456789,\"{Long An} Phường 1, Tân An: nói không với ma túy\"\n"
    );
    env.ok(&["send", "c2"]);
    let bodies: Value =
        serde_json::from_str(&common::http_get(&format!("{}/stats/messages", sim.url))).unwrap();
    assert_eq!(
        bodies,
        json!({"84912345678": "{Long An} Hựu Thạnh, Đức Hòa: nói không với ma túy"})
    );
}
