//! Each carrier's gateway at its own rate, all at once. A province sends through Viettel's,
//! VinaPhone's and MobiFone's connections, each with its own limit: the campaign goes at
//! their sum, not at the limit of whichever carrier's numbers come first in the list (lists
//! are in number order, and a prefix block is one carrier's: 032–039 are all Viettel).

mod common;

use common::{Env, Sim, busiest_second};

const RATE: u32 = 20;

/// Three simulators, one per carrier's gateway, each allowing `RATE` messages a second.
fn three_carriers(env: &Env, vt: &Sim, vn: &Sim, mb: &Sim) {
    let gw =
        |name: &str, url: &str| format!("{}rate = {RATE}\n", common::twilio_gateway(name, url));
    std::fs::write(
        env.path("smscast.toml"),
        format!(
            "{}{}{}[routing]\nviettel = \"vt\"\nvinaphone = \"vn\"\ndefault = \"mb\"\n",
            gw("vt", &vt.url),
            gw("vn", &vn.url),
            gw("mb", &mb.url)
        ),
    )
    .unwrap();
    // In number order: 40 Viettel (032), then 20 MobiFone (070), then 20 VinaPhone (081).
    let mut csv = String::from("phone\n");
    for i in 0..40 {
        csv += &format!("03210{i:05}\n");
    }
    for i in 0..20 {
        csv += &format!("07010{i:05}\n");
        csv += &format!("08110{i:05}\n");
    }
    std::fs::write(env.path("list.csv"), csv).unwrap();
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
}

#[test]
fn a_campaign_goes_at_the_sum_of_its_carriers_gateways_each_at_its_own_rate() {
    let env = Env::new("carrier-rates");
    let (vt, vn, mb) = (Sim::start(&[]), Sim::start(&[]), Sim::start(&[]));
    three_carriers(&env, &vt, &vn, &mb);
    // Above the three gateways together: refused, naming what they allow.
    let over = env.try_create_campaign("over", &["--rate", "61"]);
    let err = String::from_utf8_lossy(&over.stderr);
    assert!(!over.status.success(), "--rate 61 accepted");
    assert!(
        err.contains("60") && err.contains("vt") && err.contains("vn") && err.contains("mb"),
        "{err}"
    );
    // Their sum is what the campaign may go at, and what it gets without --rate.
    let exact = env.try_create_campaign("exact", &["--rate", "60"]);
    assert!(
        exact.status.success(),
        "--rate 60 refused: {}",
        String::from_utf8_lossy(&exact.stderr)
    );
    let made = env.try_create_campaign("june", &[]);
    let out = String::from_utf8_lossy(&made.stdout);
    assert!(made.status.success(), "{made:?}");
    assert!(
        out.contains(", 60/s"),
        "the default rate is the routes' sum: {out}"
    );
    // What each gateway takes of the list, and how long: Viettel's 40 set the pace.
    assert!(
        out.contains(
            "mb 20 at 20/s (about 1 s), vt 40 at 20/s (about 2 s), vn 20 at 20/s (about 1 s)"
        ),
        "{out}"
    );
    env.ok(&["campaign", "cancel", "exact"]);

    env.ok(&["send", "june", "--plain"]);
    let (vt_at, vn_at, mb_at) = (vt.arrivals(), vn.arrivals(), mb.arrivals());
    assert_eq!((vt_at.len(), vn_at.len(), mb_at.len()), (40, 20, 20));
    // Viettel's numbers come first in the list, but the other carriers' gateways do not wait
    // for them: each starts within Viettel's first half second.
    for (name, other) in [("vn", &vn_at), ("mb", &mb_at)] {
        assert!(
            other[0] < vt_at[9],
            "{name}'s first message came after Viettel's tenth ({} ms later): one carrier at a time",
            other[0] - vt_at[9]
        );
    }
    // And each gateway's own limit still holds (burst allowance: 1 at 20/s).
    for (name, at) in [("vt", &vt_at), ("vn", &vn_at), ("mb", &mb_at)] {
        let busiest = busiest_second(at);
        assert!(
            busiest <= RATE as usize + 1,
            "{name}: {busiest} in one second"
        );
    }
}

/// Viettel's numbers through `vt_url` at `vt_rate`, everyone else's through `mb` at 100/s:
/// 100 Viettel numbers, 300 MobiFone ones (3 s of sending). Each message gets two tries
/// (`--max-attempts 2`), so a wrong answer repeated to a carrier's every number burns them
/// while the good gateway is still sending, unless the bad one's answers pause the campaign.
fn one_good_route_one_bad(env: &Env, vt_url: &str, vt_rate: u32, mb: &Sim) {
    write_two_routes(env, vt_url, vt_rate, &mb.url);
    let mut csv = String::from("phone\n");
    for i in 0..100 {
        csv += &format!("03210{i:05}\n");
    }
    for i in 0..300 {
        csv += &format!("07010{i:05}\n");
    }
    std::fs::write(env.path("list.csv"), csv).unwrap();
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    env.create_campaign("june", &["--max-attempts", "2"]);
}

fn write_two_routes(env: &Env, vt_url: &str, vt_rate: u32, mb_url: &str) {
    std::fs::write(
        env.path("smscast.toml"),
        format!(
            "{}rate = {vt_rate}\n{}rate = 100\n[routing]\nviettel = \"vt\"\ndefault = \"mb\"\n",
            common::twilio_gateway("vt", vt_url),
            common::twilio_gateway("mb", mb_url),
        ),
    )
    .unwrap();
}

fn carrier_states(env: &Env, carrier: &str) -> serde_json::Value {
    let r = env.json(&["report", "june", "--json"]);
    r["by_carrier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == carrier)
        .map(|c| c["states"].clone())
        .unwrap_or_else(|| panic!("no {carrier} in {r}"))
}

/// A typo in one carrier's gateway URL (nothing listens there): its failures pause the
/// campaign, naming that gateway, however many successes the other gateway has meanwhile.
/// Before, each success elsewhere restarted the count of failures in a row, so the breaker
/// never tripped and every Viettel number ended `failed` in a campaign reported complete.
#[test]
fn a_gateway_nobody_answers_on_one_route_pauses_the_campaign_and_fails_nobody() {
    let env = Env::new("route-unreachable");
    let mb = Sim::start(&[]);
    let nobody = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    one_good_route_one_bad(&env, &nobody, 1000, &mb);
    let out = env.run(&["send", "june", "--plain"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the campaign cannot finish: {err}");
    assert!(
        err.contains("gateway \"vt\"") && err.contains("in a row"),
        "the pause names the gateway: {err}"
    );
    let vt = carrier_states(&env, "viettel");
    assert_eq!(
        vt["failed"].as_u64().unwrap_or(0),
        0,
        "no Viettel number burned: {vt}"
    );
    assert_eq!(vt["queued"], 100, "every Viettel number waits: {vt}");
    let show = env.json(&["campaign", "show", "june", "--json"]);
    assert_eq!(show["campaign"]["state"], "paused", "{show}");

    // The operator corrects the URL and resumes: everyone gets exactly one.
    let vt_sim = Sim::start(&[]);
    write_two_routes(&env, &vt_sim.url, 1000, &mb.url);
    env.ok(&["campaign", "resume", "june"]);
    env.ok(&["send", "june", "--plain"]);
    let (vt_got, mb_got) = (vt_sim.recipients(), mb.recipients());
    assert_eq!((vt_got.len(), mb_got.len()), (100, 300));
    assert!(vt_got.values().chain(mb_got.values()).all(|n| *n == 1));
}

/// One carrier's gateway refusing every number alike (a sender name it does not know): the
/// same answer 20 times in a row from that gateway pauses the campaign, whatever the other
/// gateway accepts meanwhile, so at most those 20 and the requests in flight are rejected.
/// At 20/s against MobiFone's 100/s, about five successes came between two refusals: before,
/// every Viettel number tried during MobiFone's 3 s was rejected, and 20 more after.
#[test]
fn one_gateway_refusing_everyone_alike_pauses_the_campaign_within_about_20() {
    let env = Env::new("route-same-refusal");
    let mb = Sim::start(&[]);
    let every_digit: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let args: Vec<&str> = every_digit
        .iter()
        .flat_map(|d| ["--reject-suffix", d.as_str()])
        .collect();
    let vt = Sim::start(&args);
    one_good_route_one_bad(&env, &vt.url, 20, &mb);
    let out = env.run(&["send", "june", "--plain"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the campaign cannot finish: {err}");
    let states = carrier_states(&env, "viettel");
    let rejected = states["rejected"].as_u64().unwrap_or(0);
    assert!(
        (20..=20 + 32).contains(&rejected),
        "{rejected} Viettel numbers rejected (20 and the requests in flight at most): {states}"
    );
    assert!(
        err.contains("gateway \"vt\"") && err.contains("same answer"),
        "the pause names the gateway: {err}"
    );
}
