//! The embedded default shared by many processes: first use by several processes at once, a
//! file that is whole once they exit, one `send` per gateway at a time.

mod common;

use std::process::Stdio;

use common::Env;

fn list(env: &Env, name: &str, n: usize) -> String {
    let mut csv = String::from("phone\n");
    for i in 0..n {
        csv.push_str(&format!("09{:08}\n", 60_000_000 + i));
    }
    let path = env.path(name);
    std::fs::write(&path, csv).unwrap();
    path.display().to_string()
}

/// Four processes started together on a database that does not exist yet all succeed: one
/// creates and migrates it, the others wait for it.
#[test]
fn four_processes_start_together_on_a_fresh_database() {
    let env = Env::new("sqlite-first-use");
    if env.is_postgres() {
        return;
    }
    let files: Vec<String> = (0..4)
        .map(|i| list(&env, &format!("l{i}.csv"), 50))
        .collect();
    let children: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            env.cmd()
                .args(["subscribers", "import", f, "--list", &format!("list-{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lists = env.json(&["lists", "--json"]);
    assert_eq!(lists.as_array().unwrap().len(), 4, "{lists}");
}

/// Once every process has exited, `smscast.db` copied alone holds the whole record: no
/// write-ahead log is left to copy with it.
#[test]
fn the_file_alone_is_the_whole_record_after_exit() {
    let env = Env::new("sqlite-whole-file");
    if env.is_postgres() {
        return;
    }
    let f = list(&env, "l.csv", 20);
    env.ok(&["subscribers", "import", &f, "--list", "la"]);
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
    env.ok(&["campaign", "cancel", "june"]);
    let wal = env.path("smscast.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "a write-ahead log of {} bytes was left behind",
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0)
    );
    let copy = Env::new("sqlite-whole-file-copy");
    std::fs::copy(env.path("smscast.db"), copy.path("smscast.db")).unwrap();
    let verify = copy.ok(&["audit", "--verify"]);
    let original = env.ok(&["audit", "--verify"]);
    assert_eq!(verify, original);
    let campaigns = copy.json(&["campaign", "list", "--json"]);
    assert_eq!(campaigns[0]["state"], "cancelled", "{campaigns}");
}

/// Two `send`s of one campaign, or of two campaigns through one gateway, would each pace
/// themselves and together double the carrier's rate: the second is refused, naming the first.
#[test]
fn one_send_per_gateway_at_a_time() {
    let env = Env::new("sqlite-one-send");
    if env.is_postgres() {
        return;
    }
    let sim = common::Sim::start(&[]);
    let f = list(&env, "l.csv", 120);
    env.ok(&["subscribers", "import", &f, "--list", "la"]);
    env.config_for(&sim.url, "");
    let msg = env.message();
    for name in ["june", "july"] {
        env.ok(&[
            "campaign",
            "create",
            name,
            "--list",
            "la",
            "--message",
            &msg,
            "--rate",
            "40",
            "--cap-hours",
            "0",
            "--hours",
            "00:00-24:00",
        ]);
    }
    let first = env
        .cmd()
        .args(["send", "june", "--plain"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for(std::time::Duration::from_secs(20), "sending", || {
        sim.accepted() > 0
    });
    for name in ["june", "july"] {
        let second = env.run(&["send", name, "--plain"]);
        let err = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "{err}");
        assert!(
            err.contains("\"sim\" is in use") && err.contains("campaign \"june\""),
            "{err}"
        );
    }
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Once the first is done, the gateway is free.
    env.ok(&["send", "july", "--plain"]);
    // One message per number per campaign, and the gateway's rate held throughout: at most
    // the rate plus 5% in any one-second window at the gateway.
    assert_eq!(sim.accepted(), 240);
    let busiest = common::busiest_second(&sim.arrivals());
    assert!(busiest <= 42, "{busiest} requests in one second at 40/s");
    assert!(sim.recipients().values().all(|n| *n == 2));
}

/// `smscast backup` while a `send` writes: the copy is whole (integrity check, audit chain),
/// opens on its own, and its audit head is one the live log has.
#[test]
fn a_backup_taken_during_a_send_verifies() {
    let env = Env::new("sqlite-backup");
    if env.is_postgres() {
        let out = env.run(&["backup", "x.db"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
        return;
    }
    let sim = common::Sim::start(&[]);
    let f = list(&env, "l.csv", 30);
    env.ok(&["subscribers", "import", &f, "--list", "la"]);
    env.config_for(&sim.url, "");
    let msg = env.message();
    env.ok(&[
        "campaign",
        "create",
        "june",
        "--list",
        "la",
        "--message",
        &msg,
        "--rate",
        "10",
        "--hours",
        "00:00-24:00",
    ]);
    let send = env
        .cmd()
        .args(["send", "june", "--plain"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for(std::time::Duration::from_secs(20), "sending", || {
        sim.accepted() > 2
    });
    let copy = env.path("copy.db");
    let out = env.ok(&["backup", &copy.display().to_string()]);
    assert!(
        out.contains("integrity ok") && out.contains("audit log intact"),
        "{out}"
    );
    let head = out
        .split("head ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let live = env.json(&["audit", "--json"]);
    assert!(
        live.as_array().unwrap().iter().any(|e| e["hash"] == head),
        "the copy's head {head} is not in the live log"
    );
    // The copy is a database of its own, mid-campaign.
    let report: serde_json::Value = serde_json::from_slice(
        &env.cmd()
            .args(["--db", &format!("sqlite://{}", copy.display())])
            .args(["report", "june", "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(report["recipients"], 30, "{report}");
    // Never over an existing file.
    let again = env.run(&["backup", &copy.display().to_string()]);
    assert_eq!(again.status.code(), Some(1));
    let out = send.wait_with_output().unwrap();
    assert!(out.status.success());
}

/// A command that fails on its input before touching the record leaves no empty database.
#[test]
fn a_failed_import_leaves_no_empty_database_behind() {
    let env = Env::new("sqlite-no-empty-db");
    if env.is_postgres() {
        return;
    }
    let out = env.run(&["subscribers", "import", "missing.csv", "--list", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.csv"));
    assert!(!env.path("smscast.db").exists());
}
