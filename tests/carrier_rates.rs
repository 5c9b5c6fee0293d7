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
