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
