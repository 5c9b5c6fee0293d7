//! Rough edges a new user hit following the README (issue 18), each as the user met it: the
//! real binary, its exit code and what it printed.

mod common;

use common::Env;

/// Five subscribers (one row repeated with another district) and a config with one gateway
/// that is never called.
fn small_list(env: &Env, extra_config: &str) {
    std::fs::write(
        env.path("list.csv"),
        "phone,district\n0961234567,Đức Hòa\n0961234568,Tân An\n0961234567,Tân An\n0912345678,Bến Lức\n0901234567,Tân An\n0961234569,Tân An\n",
    )
    .unwrap();
    env.config_for("http://127.0.0.1:9", extra_config);
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A plain-text message file (no sender of its own).
fn text_file(env: &Env, name: &str, text: &str) -> String {
    let p = env.path(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn day_from_now(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
        .format("%Y-%m-%d")
        .to_string()
}

// --- Spreadsheet safety -------------------------------------------------------------------

#[test]
fn rejects_file_neutralises_cells_a_spreadsheet_would_run() {
    let env = Env::new("rejects-injection");
    std::fs::write(
        env.path("list.csv"),
        "phone,district\n=1+2,Tân An\n@SUM(A1),Tân An\n-2+3,Tân An\n+1 202 555 0123,Tân An\n0912345678,Tân An\n",
    )
    .unwrap();
    env.ok(&[
        "subscribers",
        "import",
        "list.csv",
        "--list",
        "la",
        "--rejects",
        "rejects.csv",
    ]);
    let mut r = csv::Reader::from_path(env.path("rejects.csv")).unwrap();
    let raws: Vec<String> = r.records().map(|rec| rec.unwrap()[1].to_string()).collect();
    assert_eq!(
        raws,
        ["'=1+2", "'@SUM(A1)", "'-2+3", "'+1 202 555 0123"],
        "every cell a spreadsheet would read as a formula starts with '"
    );
}

#[test]
fn report_csv_neutralises_cells_a_spreadsheet_would_run() {
    let env = Env::new("report-injection");
    small_list(&env, "");
    let msg = text_file(&env, "m.txt", "=HYPERLINK(\"http://x\",\"bam\") hello");
    env.ok(&[
        "campaign",
        "create",
        "c1",
        "--list",
        "la",
        "--message",
        &msg,
        "--sender",
        "LONGAN",
    ]);
    let csv_out = env.ok(&["report", "c1", "--format", "csv"]);
    let mut r = csv::Reader::from_reader(csv_out.as_bytes());
    let mut found = false;
    for rec in r.records() {
        let rec = rec.unwrap();
        for cell in rec.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "unsafe cell {cell:?} in {rec:?}"
            );
        }
        if &rec[2] == "message_text" {
            assert_eq!(&rec[3], "'=HYPERLINK(\"http://x\",\"bam\") hello");
            found = true;
        }
    }
    assert!(found, "{csv_out}");
}

// --- Secrets --------------------------------------------------------------------------------

#[test]
fn a_database_password_never_appears_in_messages() {
    let env = Env::new("secrets");
    for (url, secret) in [
        ("postgress://u:SECRET1@localhost/x", "SECRET1"),
        ("sqlite://u:SECRET2@/nonexistent/dir/x.db", "SECRET2"),
        ("mysql://u:SECRET3@db/x", "SECRET3"),
    ] {
        for args in [&["lists"][..], &["subscribers", "optout", "0912345678"][..]] {
            let out = env.cmd().arg("--db").arg(url).args(args).output().unwrap();
            assert!(!out.status.success(), "{url} {args:?}");
            let (o, e) = (stdout(&out), stderr(&out));
            assert!(
                !o.contains(secret) && !e.contains(secret),
                "{url} {args:?}: the password is printed:\n{o}{e}"
            );
            assert!(e.contains("****"), "{url} {args:?}: {e}");
        }
    }
}

#[test]
fn a_mistyped_database_scheme_is_named() {
    let env = Env::new("scheme");
    let out = env
        .cmd()
        .args(["--db", "postgress://u:SECRET@localhost/x", "lists"])
        .output()
        .unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("postgress") && e.contains("postgres://"), "{e}");
    assert!(!env.dir.join("postgress:").exists());
}

#[test]
fn a_database_path_that_is_a_folder_is_named_with_the_file_to_use() {
    let env = Env::new("db-folder");
    let folder = env.dir.join("data");
    std::fs::create_dir_all(&folder).unwrap();
    let f = folder.display().to_string();
    for db in [f.clone(), format!("sqlite://{f}"), format!("{f}/")] {
        for args in [&["lists"][..], &["subscribers", "optout", "0912345678"][..]] {
            let out = env.cmd().arg("--db").arg(&db).args(args).output().unwrap();
            let e = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{db} {args:?}: {e}");
            assert!(
                e.contains("is a folder") && e.contains("smscast.db"),
                "{db} {args:?}: {e}"
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(&folder).unwrap().count(),
        0,
        "nothing made in it"
    );
}

// --- Import summary -----------------------------------------------------------------------

#[test]
fn import_counts_by_carrier_and_district_leave_out_repeated_rows() {
    let env = Env::new("import-dups");
    std::fs::write(
        env.path("list.csv"),
        "phone,district\n0961234567,Đức Hòa\n0961234568,Tân An\n+84 96 123 4567,Tân An\n84961234567,Bến Lức\n0912345678,Tân An\n",
    )
    .unwrap();
    let s = env.json(&[
        "subscribers",
        "import",
        "list.csv",
        "--list",
        "la",
        "--json",
    ]);
    assert_eq!(s["imported"], 3);
    assert_eq!(s["duplicates_in_file"], 2);
    assert_eq!(
        s["by_carrier"],
        serde_json::json!({"viettel": 2, "vinaphone": 1})
    );
    // The first row of a number is the one kept: 0961234567 lives in Đức Hòa.
    assert_eq!(
        s["by_district"],
        serde_json::json!({"Đức Hòa": 1, "Tân An": 2})
    );
    let lists = env.json(&["lists", "--json"]);
    assert_eq!(lists[0]["members"], 3);

    // The text summary agrees with what is stored; a second import counts what is there.
    let text = env.ok(&["subscribers", "import", "list.csv", "--list", "lb"]);
    assert!(
        text.contains("by carrier: viettel 2, vinaphone 1"),
        "{text}"
    );
    assert!(text.contains("by district: Tân An 2, Đức Hòa 1"), "{text}");
    let again = env.json(&[
        "subscribers",
        "import",
        "list.csv",
        "--list",
        "la",
        "--json",
    ]);
    assert_eq!(again["already_present"], 3);
    assert_eq!(
        again["by_carrier"],
        serde_json::json!({"viettel": 2, "vinaphone": 1})
    );
}

// --- Opt-outs -------------------------------------------------------------------------------

#[test]
fn optout_of_a_missing_file_is_an_error_and_records_nothing() {
    let env = Env::new("optout-missing");
    small_list(&env, "");
    let out = env.run(&["subscribers", "optout", "0912345678", "missing.csv"]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("missing.csv") && e.contains("no such file"),
        "{e}"
    );
    assert!(!e.contains("letters"), "{e}");
    // Nothing was recorded: the number is added now, not "already there".
    let ok = env.ok(&["subscribers", "optout", "0912345678"]);
    assert!(ok.starts_with("1 number(s) added"), "{ok}");
}

// --- Campaign dates -------------------------------------------------------------------------

#[test]
fn a_send_by_date_in_the_past_is_refused_and_show_gives_the_dates() {
    let env = Env::new("dates");
    small_list(&env, "");
    let msg = env.message();
    let out = env.run(&[
        "campaign",
        "create",
        "old",
        "--list",
        "la",
        "--message",
        &msg,
        "--from",
        "2022-06-01",
        "--until",
        "2022-06-30",
    ]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("2022-06-30") && e.contains("past"), "{e}");
    assert!(env.json(&["campaign", "list", "--json"]) == serde_json::json!([]));

    let (from, until) = (day_from_now(1), day_from_now(30));
    env.ok(&[
        "campaign",
        "create",
        "new",
        "--list",
        "la",
        "--message",
        &msg,
        "--from",
        &from,
        "--until",
        &until,
    ]);
    let show = env.ok(&["campaign", "show", "new"]);
    assert!(
        show.contains(&format!("not before: {from} 00:00 +07:00")),
        "{show}"
    );
    assert!(
        show.contains(&format!("send by:    {until} 24:00 +07:00")),
        "{show}"
    );
    // Without dates, show says so.
    env.ok(&[
        "campaign",
        "create",
        "open",
        "--list",
        "la",
        "--message",
        &msg,
    ]);
    let show = env.ok(&["campaign", "show", "open"]);
    assert!(
        show.contains("dates:      any day (no --from/--until)"),
        "{show}"
    );
}

// --- Reconcile ------------------------------------------------------------------------------

#[test]
fn reconcile_without_a_choice_says_both_and_how_many() {
    let env = Env::new("reconcile");
    small_list(&env, "");
    let msg = env.message();
    env.ok(&["campaign", "create", "c", "--list", "la", "--message", &msg]);
    let out = env.run(&["reconcile", "c"]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("choose --resend or --give-up (0 in doubt)"),
        "{e}"
    );
}

// --- Message checks and notices ---------------------------------------------------------------

#[test]
fn message_check_fails_on_an_invalid_brandname() {
    let env = Env::new("brand");
    let p = env.path("m.toml");
    std::fs::write(
        &p,
        "id = \"x\"\ntitle = \"x\"\nsender = \"LONG AN!\"\ntext = \"Hello\"\n",
    )
    .unwrap();
    let out = env.run(&["message", "check", "m.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("not allowed"), "{}", stdout(&out));
    let out = env.run(&["message", "check", "m.toml", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["sender_problem"].is_string());
}

#[test]
fn campaign_create_gives_notices_for_emoji_and_night_hours() {
    let env = Env::new("notices");
    small_list(&env, "");
    let msg = text_file(&env, "m.txt", "Phong chong ma tuy 😀");
    let run = env.run(&[
        "campaign",
        "create",
        "c",
        "--list",
        "la",
        "--message",
        &msg,
        "--sender",
        "LONGAN",
        "--hours",
        "07:00-23:00",
    ]);
    assert!(run.status.success());
    // Notices go to stderr, beside the result on stdout.
    let out = stderr(&run);
    assert!(out.contains("notice: ") && out.contains("UCS-2"), "{out}");
    assert!(out.contains("😀"), "{out}");
    assert!(out.contains("cost ×"), "{out}");
    assert!(
        out.contains("Decree 91/2020") && out.contains("22:00"),
        "{out}"
    );

    // Daytime hours and GSM-7 text: no notice.
    let plain = text_file(&env, "p.txt", "Phong chong ma tuy");
    let run = env.run(&[
        "campaign",
        "create",
        "d",
        "--list",
        "la",
        "--message",
        &plain,
        "--sender",
        "LONGAN",
    ]);
    assert!(run.status.success());
    assert!(!stderr(&run).contains("notice"), "{}", stderr(&run));
}

#[test]
fn a_plain_text_message_takes_the_gateways_sender() {
    let env = Env::new("from");
    small_list(&env, "from = \"LONGAN\"");
    let msg = text_file(&env, "m.txt", "Phong chong ma tuy");
    env.ok(&["campaign", "create", "c", "--list", "la", "--message", &msg]);
    let show = env.json(&["campaign", "show", "c", "--json"]);
    assert_eq!(show["campaign"]["sender"], "LONGAN");
}

#[test]
fn a_literal_brace_is_counted_as_sent() {
    let env = Env::new("brace");
    small_list(&env, "");
    // 159 characters as sent, `{` at 152: 160 septets, one SMS (libphonenumber-independent
    // counters — Twilio's segments calculator, split-sms — agree).
    let sent = format!("{}{{{}", "a".repeat(151), "b".repeat(7));
    assert_eq!(sent.chars().count(), 159);
    let written = sent.replace('{', "{{");
    let msg = text_file(&env, "m.txt", &written);
    let c = env.json(&["message", "check", &msg, "--json", "--list", "la"]);
    assert_eq!(c["text"], sent.as_str());
    assert_eq!(c["units"], 160);
    assert_eq!(c["segments"], 1);
    assert_eq!(c["characters"], 159);
    assert_eq!(c["sms_total"], 5);
    env.ok(&[
        "campaign",
        "create",
        "c",
        "--list",
        "la",
        "--message",
        &msg,
        "--sender",
        "LONGAN",
    ]);
    let show = env.json(&["campaign", "show", "c", "--json"]);
    assert_eq!(show["campaign"]["segments"], c["segments"]);
}

// --- Terminal safety ------------------------------------------------------------------------

#[test]
fn control_characters_are_never_printed_raw() {
    let env = Env::new("esc");
    std::fs::write(
        env.path("list.csv"),
        "phone,district\n0961234567,\u{1b}[31mRED\u{1b}]0;pwned\u{7}\n0912345678,Tân An\n",
    )
    .unwrap();
    env.config_for("http://127.0.0.1:9", "");
    let list = "la\u{1b}[2J";
    let mut printed = env.ok(&["subscribers", "import", "list.csv", "--list", list]);
    printed += &env.ok(&["lists"]);
    let msg = text_file(&env, "m.txt", "Hello \u{1b}[31mred\u{9b}2J");
    printed += &env.ok(&[
        "campaign",
        "create",
        "c",
        "--list",
        list,
        "--message",
        &msg,
        "--sender",
        "LONGAN",
    ]);
    printed += &env.ok(&["campaign", "show", "c"]);
    printed += &env.ok(&["campaign", "list"]);
    printed += &env.ok(&["message", "check", &msg]);
    printed += &env.ok(&["report", "c"]);
    let out = env.run(&["campaign", "show", "x\u{1b}[2J"]);
    printed += &stderr(&out);
    for bad in ['\u{1b}', '\u{7}', '\u{9b}'] {
        assert!(
            !printed.contains(bad),
            "{bad:?} printed raw:\n{}",
            printed.escape_debug()
        );
    }
    assert!(printed.contains("\\u{1b}"), "{printed}");
}

// --- Did you mean --------------------------------------------------------------------------

#[test]
fn a_misspelt_campaign_gets_a_suggestion() {
    let env = Env::new("didyoumean");
    small_list(&env, "");
    let msg = env.message();
    env.ok(&[
        "campaign",
        "create",
        "june-2022",
        "--list",
        "la",
        "--message",
        &msg,
    ]);
    let out = env.run(&["campaign", "show", "jnue-2022"]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(e.contains("did you mean \"june-2022\"?"), "{e}");
    let out = env.run(&["send", "june2022"]);
    assert!(stderr(&out).contains("did you mean \"june-2022\"?"));
    // Nothing close: no suggestion.
    let out = env.run(&["report", "xyz"]);
    assert!(!stderr(&out).contains("did you mean"));
}

// --- Help -------------------------------------------------------------------------------------

#[test]
fn help_shows_defaults_examples_and_env() {
    let env = Env::new("help");
    let create = env.ok(&["campaign", "create", "--help"]);
    let at = create.find("--max-attempts").unwrap();
    let next = create[at + 2..]
        .find("\n  -")
        .map_or(create.len(), |i| at + 2 + i);
    assert!(
        create[at..next].contains("[default: "),
        "{}",
        &create[at..next]
    );
    let send = env.ok(&["send", "--help"]);
    assert!(send.contains("Example"), "{send}");
    let top = env
        .cmd()
        .env("SMSCAST_CONFIG", "/secret/place.toml")
        .args(["lists", "--help"])
        .output()
        .unwrap();
    let top = stdout(&top)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!top.contains("/secret/place.toml"), "{top}");
    for var in ["SMSCAST_DATABASE_URL", "SMSCAST_CONFIG", "SMSCAST_OPERATOR"] {
        assert!(top.contains(&format!("[env: {var}]")), "{top}");
    }
    assert!(top.contains("Global options"), "{top}");
}

// --- Held by the per-number cap -------------------------------------------------------------

#[test]
fn numbers_held_by_the_cap_are_counted_where_the_user_looks() {
    let env = Env::new("held");
    let sim = common::Sim::start(&[]);
    std::fs::write(
        env.path("list.csv"),
        "phone\n0961234567\n0961234568\n0912345678\n",
    )
    .unwrap();
    env.config_for(&sim.url, "");
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    let msg = env.message();
    for name in ["first", "second"] {
        env.ok(&[
            "campaign",
            "create",
            name,
            "--list",
            "la",
            "--message",
            &msg,
            "--hours",
            "00:00-24:00",
            "--rate",
            "1000",
        ]);
    }
    env.ok(&["send", "first"]);
    let out = env.run(&["send", "second", "--no-wait"]);
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    // Said at launch, before any row is marked.
    assert!(
        e.contains("3 of them had a message from another campaign in the last 24 h"),
        "{e}"
    );
    assert!(
        e.contains("3 held by the per-number cap (24 h) until "),
        "{e}"
    );
    let show = env.ok(&["campaign", "show", "second"]);
    assert!(
        show.contains("held:       3 by the per-number cap (24 h) until "),
        "{show}"
    );
    let json = env.json(&["campaign", "show", "second", "--json"]);
    assert_eq!(json["held_by_cap"]["numbers"], 3);
    let show = env.ok(&["campaign", "show", "first"]);
    assert!(!show.contains("held"), "{show}");
    // And on the progress line of a `send` that waits for them.
    let log = env.path("progress.log");
    let waiting = env
        .cmd()
        .args(["send", "second", "--plain"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    common::wait_for(
        std::time::Duration::from_secs(20),
        "a progress line with the held count",
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("3 held by the per-number cap")
        },
    );
    common::signal(&waiting, "-INT");
    let _ = waiting.wait_with_output();
}

/// A port already taken is said with the flag and the address, and what to do instead.
#[test]
fn an_address_in_use_names_the_flag_and_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(common::BIN)
        .args(["gateway", "simulate", "--listen", &addr])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!("--listen {addr}")) && e.contains("in use") && e.contains(":0"),
        "{e}"
    );
}

/// `gateway simulate` prints a `[gateways.…]` section that works when pasted into
/// smscast.toml, and says on Ctrl-C that it stops the simulator (not send's words).
#[test]
fn the_simulator_prints_a_section_to_paste_and_its_own_goodbye() {
    use std::io::Read;
    let mut child = std::process::Command::new(common::BIN)
        .args(["gateway", "simulate", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 4096];
    let start = std::time::Instant::now();
    while !out.contains("auth_token") && start.elapsed() < std::time::Duration::from_secs(10) {
        let n = stdout.read(&mut buf).unwrap();
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let section = &out[out.find("[gateways.sim]").expect("a section to paste")..];
    let config = smscast::config::Config::parse(section).expect("the section loads");
    assert!(config.gateways.contains_key("sim"));
    common::signal(&child, "-INT");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = child.wait();
    assert!(err.contains("stopping the simulator"), "{err}");
    assert!(!err.contains("recording"), "{err}");
}
