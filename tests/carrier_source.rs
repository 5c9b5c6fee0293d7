//! Carriers from the source, not only the prefix (issue 17): a list that comes from a carrier
//! (`--carrier`) or a carrier column files its numbers under that carrier, and routing and
//! the report follow the stored carrier. Numbers are ported between carriers keeping their
//! prefix, so the prefix only names a number's original carrier.

mod common;

use common::{Env, Sim};

/// Two simulators: `main` (the default route) and `vt`, Viettel's own gateway.
fn two_routes(env: &Env, main: &Sim, vt: &Sim) {
    let gw = common::twilio_gateway;
    std::fs::write(
        env.path("smscast.toml"),
        format!(
            "{}{}[routing]\ndefault = \"main\"\nviettel = \"vt\"\n",
            gw("main", &main.url),
            gw("vt", &vt.url)
        ),
    )
    .unwrap();
}

/// VinaPhone prefixes (091, 094, 088), all of them Viettel subscribers now.
const PORTED: &str = "phone\n0912000001\n0942000002\n0882000003\n0912000004\n";

fn by_carrier(report: &serde_json::Value) -> Vec<(String, u64)> {
    report["by_carrier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["total"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_list_from_a_carrier_routes_and_reports_under_that_carrier() {
    let env = Env::new("carrier-list");
    let (main, vt) = (Sim::start(&[]), Sim::start(&[]));
    two_routes(&env, &main, &vt);
    std::fs::write(env.path("ported.csv"), PORTED).unwrap();
    // One of them was known already, by its prefix, from another list.
    std::fs::write(env.path("old.csv"), "phone\n0912000001\n").unwrap();
    let old = env.json(&[
        "subscribers",
        "import",
        "old.csv",
        "--list",
        "old",
        "--json",
    ]);
    assert_eq!(old["by_carrier"], serde_json::json!({"vinaphone": 1}));

    let s = env.json(&[
        "subscribers",
        "import",
        "ported.csv",
        "--list",
        "viettel-subs",
        "--carrier",
        "Viettel",
        "--json",
    ]);
    assert_eq!(s["carrier"], "viettel");
    assert_eq!(s["by_carrier"], serde_json::json!({"viettel": 4}));
    assert_eq!(s["carrier_changed"], 1, "{s}");

    // Importing the old list again (carrier by prefix) does not undo it.
    env.ok(&["subscribers", "import", "old.csv", "--list", "old2"]);
    let lists = env.json(&["lists", "--json"]);
    for l in lists.as_array().unwrap() {
        for (carrier, _) in
            serde_json::from_value::<Vec<(String, i64)>>(l["by_carrier"].clone()).unwrap()
        {
            assert_eq!(carrier, "viettel", "{lists}");
        }
    }

    let msg = env.message();
    env.ok(&[
        "campaign",
        "create",
        "june",
        "--list",
        "viettel-subs",
        "--message",
        &msg,
        "--hours",
        "00:00-24:00",
    ]);
    env.ok(&["send", "june"]);
    let to_vt = vt.recipients();
    assert_eq!(
        to_vt.len(),
        4,
        "every number goes by Viettel's route: {to_vt:?}"
    );
    assert!(main.recipients().is_empty(), "{:?}", main.recipients());

    let r = env.json(&["report", "june", "--format", "json"]);
    assert_eq!(by_carrier(&r), [("viettel".to_string(), 4)], "{r}");
}

#[test]
fn a_carrier_column_names_each_rows_carrier() {
    let env = Env::new("carrier-column");
    let csv = "SĐT,Nhà mạng\n\
               0912000001,Viettel\n\
               0982000002,VNPT\n\
               0902000003,\n\
               0912000004,Vietel\n\
               0942000005,Mobifone\n";
    std::fs::write(env.path("list.csv"), csv).unwrap();
    let s = env.json(&[
        "subscribers",
        "import",
        "list.csv",
        "--list",
        "la",
        "--rejects",
        "rejects.csv",
        "--json",
    ]);
    assert_eq!(s["detected"]["carrier_column"], "Nhà mạng");
    assert_eq!(s["imported"], 4);
    assert_eq!(s["rejected"], 1);
    assert_eq!(
        s["rejected_by_reason"],
        serde_json::json!({"unknown_carrier": 1})
    );
    // 0902… has no value: its prefix (MobiFone) decides.
    assert_eq!(
        s["by_carrier"],
        serde_json::json!({"viettel": 1, "vinaphone": 1, "mobifone": 2})
    );
    let rejects = std::fs::read_to_string(env.path("rejects.csv")).unwrap();
    let line = rejects.lines().nth(1).unwrap();
    assert!(line.starts_with("5,Vietel,unknown_carrier,"), "{rejects}");
    assert!(line.contains("did you mean viettel"), "{rejects}");

    // The column wins over --carrier; an empty cell takes --carrier.
    let s = env.json(&[
        "subscribers",
        "import",
        "list.csv",
        "--list",
        "lb",
        "--carrier",
        "gmobile",
        "--json",
    ]);
    assert_eq!(
        s["by_carrier"],
        serde_json::json!({"viettel": 1, "vinaphone": 1, "mobifone": 1, "gmobile": 1})
    );
}

#[test]
fn an_unknown_carrier_is_refused_with_the_known_ones() {
    let env = Env::new("carrier-unknown");
    std::fs::write(env.path("list.csv"), PORTED).unwrap();
    let out = env.run(&[
        "subscribers",
        "import",
        "list.csv",
        "--list",
        "la",
        "--carrier",
        "vietel",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"vietel\""), "{err}");
    assert!(err.contains("did you mean viettel"), "{err}");
    assert!(err.contains("vinaphone, mobifone"), "{err}");
}
