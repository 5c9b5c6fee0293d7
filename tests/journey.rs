//! The whole journey, as a user runs it: import, create, send to the simulator, report —
//! checked against the simulator's own books, not against smscast's.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Env, Sim, signal, wait_for};
use smscast::sample::{self, Shape};

const MESSY: &str = "\
phone,district,name
0912345678,Đức Hòa,A
+84 983 456 789,duc hoa,B
84983456789,Tân An,C
0168 123 4567,Bến Lức,D
8.49123E+10,Tân An,E
0272 3823 456,Tân An,F
abc,Tân An,G
,Tân An,H
0901234567,Huyện Cần Giuộc,I
";

#[test]
fn import_counts_every_row_exactly() {
    let env = Env::new("import");
    std::fs::write(env.path("list.csv"), MESSY).unwrap();
    let s = env.json(&[
        "subscribers",
        "import",
        "list.csv",
        "--list",
        "la",
        "--json",
        "--rejects",
        "rejects.csv",
    ]);
    assert_eq!(s["rows_read"], 9);
    assert_eq!(s["imported"], 4);
    assert_eq!(s["already_present"], 0);
    assert_eq!(s["duplicates_in_file"], 1);
    assert_eq!(s["legacy_converted"], 1);
    assert_eq!(s["rejected"], 4);
    assert_eq!(
        s["rejected_by_reason"],
        serde_json::json!({"empty": 1, "landline": 1, "not_a_number": 1, "scientific_notation": 1})
    );
    assert_eq!(
        s["by_carrier"],
        serde_json::json!({"mobifone": 1, "viettel": 2, "vinaphone": 1})
    );
    let rejects = std::fs::read_to_string(env.path("rejects.csv")).unwrap();
    let lines: Vec<&str> = rejects
        .lines()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(lines, ["line", "6", "7", "8", "9"], "{rejects}");

    // The same file again: said so, nothing added twice.
    let again = env.json(&[
        "subscribers",
        "import",
        "list.csv",
        "--list",
        "la",
        "--json",
    ]);
    assert_eq!(again["imported"], 0);
    assert_eq!(again["already_present"], 4);
    assert!(again["previous_import"].is_object(), "{again}");
    let lists = env.json(&["lists", "--json"]);
    assert_eq!(lists[0]["members"], 4);
}

/// Imports a generated list and creates a campaign on a simulator; returns the valid numbers.
fn prepare(env: &Env, sim: &Sim, rows: u64, rate: &str) -> Vec<String> {
    let truth = sample::write_csv(&env.path("list.csv"), rows, 7, Shape::default()).unwrap();
    env.config_for(&sim.url, "");
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
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
        rate,
    ]);
    assert_eq!(truth.numbers.len() as u64, truth.valid_unique);
    truth.numbers
}

fn assert_each_once(sim: &Sim, numbers: &[String]) {
    let got = sim.recipients();
    let want: HashSet<&str> = numbers.iter().map(String::as_str).collect();
    let have: HashSet<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        have, want,
        "the gateway's recipients differ from the list's valid numbers"
    );
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "{} recipients got more than one message",
        twice.len()
    );
}

#[test]
fn campaign_reaches_every_valid_subscriber_exactly_once() {
    let env = Env::new("send");
    let sim = Sim::start(&["--latency-ms", "2"]);
    let numbers = prepare(&env, &sim, 1500, "2000");
    env.ok(&["send", "june"]);
    assert_each_once(&sim, &numbers);

    let r = env.json(&["report", "june", "--format", "json"]);
    assert_eq!(r["schema"], "smscast.report/1");
    assert_eq!(r["recipients"], numbers.len());
    assert_eq!(r["by_state"]["submitted"], sim.accepted());
    let sum: u64 = r["by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(sum, numbers.len() as u64, "states add up to the recipients");
    assert_eq!(r["campaign"]["state"], "completed");
    assert_eq!(r["campaign"]["encoding"], "UCS-2");
    assert_eq!(r["sms_parts"], sim.accepted() * 3);

    // Sending a completed campaign again sends nothing.
    env.ok(&["send", "june"]);
    assert_eq!(sim.stats()["requests"], numbers.len());
}

#[test]
fn ctrl_c_stops_cleanly_and_send_resumes_without_duplicates() {
    let env = Env::new("sigint");
    let sim = Sim::start(&["--latency-ms", "5"]);
    let numbers = prepare(&env, &sim, 2000, "400");
    let child = env
        .cmd()
        .args(["send", "june"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(60), "300 accepted messages", || {
        sim.accepted() >= 300
    });
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = sim.accepted();
    assert!(accepted < numbers.len() as u64, "stopped before the end");

    // Everything the gateway took is on the record; nothing is left in flight.
    let r = env.json(&["report", "june", "--json"]);
    assert_eq!(r["by_state"]["submitted"], accepted);
    assert_eq!(r["by_state"]["sending"], 0);
    assert_eq!(r["by_state"]["claimed"], 0);
    assert_eq!(r["by_state"]["unknown"], 0);

    env.ok(&["send", "june"]);
    assert_each_once(&sim, &numbers);
    let r = env.json(&["report", "june", "--json"]);
    assert_eq!(r["by_state"]["submitted"], numbers.len());
    assert_eq!(r["possible_duplicates"], 0);
}

#[test]
fn mistakes_get_clear_errors_and_exit_codes() {
    let env = Env::new("errors");
    let out = env.run(&["send", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("campaign list"),
        "{err}"
    );

    let out = env.run(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));

    env.config_for("http://127.0.0.1:9", "");
    let msg = env.message();
    let out = env.run(&[
        "campaign",
        "create",
        "x",
        "--list",
        "missing",
        "--message",
        &msg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("subscribers import"));

    let out = env.run(&[
        "campaign",
        "create",
        "x",
        "--list",
        "missing",
        "--message",
        &msg,
        "--hours",
        "21:00-07:00",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("HH:MM-HH:MM"));
}

#[test]
fn audit_log_records_the_journey_and_detects_tampering() {
    let env = Env::new("audit");
    std::fs::write(env.path("list.csv"), MESSY).unwrap();
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    env.config_for("http://127.0.0.1:9", "");
    let msg = env.message();
    env.ok(&[
        "campaign",
        "create",
        "june",
        "--list",
        "la",
        "--message",
        &msg,
    ]);
    // A draft has not started: it cannot be paused (the store refuses; nothing is logged).
    let refused = env.run(&["campaign", "pause", "june"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot pause"));
    env.ok(&["campaign", "cancel", "june"]);
    let again = env.run(&["campaign", "resume", "june"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("is cancelled"));
    let log = env.json(&["audit", "--json"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["import", "create", "cancel"]);
    assert!(env.ok(&["audit", "--verify"]).contains("intact"));

    // Alter one row behind smscast's back.
    let db = env.path("smscast.db");
    let conn = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE audit_log SET actor = 'someone' WHERE id = 2")
        .status();
    match conn {
        Ok(s) if s.success() => {
            let out = env.run(&["audit", "--verify"]);
            assert_eq!(out.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&out.stdout).contains("entry 2"));
        }
        _ => eprintln!("sqlite3 not installed: skipping the tampering half of this test"),
    }
}

#[test]
fn an_opt_out_added_mid_campaign_is_honoured() {
    let env = Env::new("optout-mid");
    let sim = Sim::start(&[]);
    let numbers = prepare(&env, &sim, 400, "60");
    // Deliveries go out in subscriber order, which follows the number: the largest goes last.
    let last = numbers.iter().max().unwrap().clone();
    let child = env
        .cmd()
        .args(["send", "june", "--plain"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "30 accepted", || {
        sim.accepted() >= 30
    });
    env.ok(&["subscribers", "optout", &last]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let got = sim.recipients();
    assert!(!got.contains_key(&last), "the opted-out number was sent to");
    assert_eq!(got.len(), numbers.len() - 1);
    let r = env.json(&["report", "june", "--json"]);
    assert_eq!(r["by_state"]["suppressed"], 1);
    assert_eq!(r["by_state"]["submitted"], numbers.len() - 1);
}
