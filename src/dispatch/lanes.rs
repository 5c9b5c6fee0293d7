//! The dispatcher's claimed rows, one lane per carrier, and the order they go out in.
//!
//! Each carrier's gateway has its own rate, and a list in number order holds long runs of one
//! carrier (032–039 are all Viettel). Rows are claimed per carrier, and taken from the lane
//! whose route is furthest behind its own pace (fair queueing by virtual time: a row costs
//! its route `1 / rate` seconds). Rows then reach the pacer interleaved in proportion to the
//! routes' rates, so while one gateway's limiter makes a row wait, the others' tokens are
//! there for the rows behind it: every route keeps its own rate, all at once, and the
//! campaign goes at their sum. Carriers that share a route share its clock, and within a
//! route rows go in queue order (the lowest id first), as from one queue: consecutive rows
//! sit on the same pages, which keeps each commit's writes few.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Route, Routes};
use crate::msisdn::Carrier;
use crate::store::Claimed;

/// How long a lane with nothing due waits before it is claimed again (the launch may be
/// copying its rows, or a retry may come due).
const DRY_FOR: Duration = Duration::from_millis(500);

struct Lane {
    carrier: &'static str,
    rows: VecDeque<Claimed>,
    /// The route's index in `Lanes::clocks`.
    route: usize,
    /// Seconds of its route's pace a row costs (`0`: the route has no limit).
    cost: f64,
    /// Nothing was due at the last claim: not claimed again before then.
    dry_until: Option<Instant>,
}

pub struct Lanes {
    lanes: Vec<Lane>,
    /// Each route's virtual time: the pace it has used, in seconds.
    clocks: Vec<f64>,
    /// The rows of the group being marked: they may still read as queued to a claim (on
    /// SQLite a claim only reads), and must not be taken twice.
    marking: HashSet<i64>,
}

impl Lanes {
    /// A lane for every carrier; `rate(route)` is what the route allows in messages a second
    /// (`None`: no limit).
    pub fn new(routes: &Routes, rate: impl Fn(&Route) -> Option<f64>) -> Self {
        let mut seen: Vec<&Arc<Route>> = Vec::new();
        let lanes = Carrier::ALL
            .iter()
            .map(|c| {
                let r = routes.for_carrier(c.as_str());
                let route = match seen.iter().position(|s| Arc::ptr_eq(s, r)) {
                    Some(i) => i,
                    None => {
                        seen.push(r);
                        seen.len() - 1
                    }
                };
                Lane {
                    carrier: c.as_str(),
                    rows: VecDeque::new(),
                    route,
                    cost: rate(r).filter(|r| *r > 0.0).map_or(0.0, |r| 1.0 / r),
                    dry_until: None,
                }
            })
            .collect();
        Self {
            lanes,
            clocks: vec![0.0; seen.len()],
            marking: HashSet::new(),
        }
    }

    /// The carriers whose lane is empty and may be claimed now.
    pub fn to_claim(&self, now: Instant) -> Vec<&'static str> {
        self.lanes
            .iter()
            .filter(|l| l.rows.is_empty() && l.dry_until.is_none_or(|t| t <= now))
            .map(|l| l.carrier)
            .collect()
    }

    /// What a claim for `carrier` brought; none: the lane rests a while.
    pub fn fill(&mut self, carrier: &str, mut rows: Vec<Claimed>, now: Instant) {
        let Some(i) = self.lanes.iter().position(|l| l.carrier == carrier) else {
            return;
        };
        rows.retain(|r| !self.marking.contains(&r.id));
        if rows.is_empty() {
            self.lanes[i].dry_until = Some(now + DRY_FOR);
            return;
        }
        // A route coming back from idle starts level with the busy ones, not ahead of them
        // with a burst.
        let route = self.lanes[i].route;
        if let Some(floor) = self
            .lanes
            .iter()
            .filter(|l| !l.rows.is_empty())
            .map(|l| self.clocks[l.route])
            .reduce(f64::min)
        {
            self.clocks[route] = self.clocks[route].max(floor);
        }
        let lane = &mut self.lanes[i];
        lane.dry_until = None;
        lane.rows.extend(rows);
    }

    pub fn is_empty(&self) -> bool {
        self.lanes.iter().all(|l| l.rows.is_empty())
    }

    /// Every lane may be claimed again at once (nothing is left in any).
    pub fn wake(&mut self) {
        for l in &mut self.lanes {
            l.dry_until = None;
        }
    }

    pub fn clear(&mut self) {
        for l in &mut self.lanes {
            l.rows.clear();
        }
        self.marking.clear();
    }

    /// The group now being marked (it replaces the one before, marked by now).
    pub fn marking(&mut self, ids: &[i64]) {
        self.marking = ids.iter().copied().collect();
    }

    /// Up to `n` rows, each from the route furthest behind its pace, and within the route
    /// the lowest id.
    pub fn take(&mut self, n: usize) -> Vec<Claimed> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let Some(i) = (0..self.lanes.len())
                .filter_map(|i| Some((i, self.lanes[i].rows.front()?.id)))
                .min_by(|&(a, head_a), &(b, head_b)| {
                    let (ra, rb) = (self.lanes[a].route, self.lanes[b].route);
                    self.clocks[ra]
                        .total_cmp(&self.clocks[rb])
                        .then(ra.cmp(&rb))
                        .then(head_a.cmp(&head_b))
                })
                .map(|(i, _)| i)
            else {
                break;
            };
            let lane = &mut self.lanes[i];
            out.extend(lane.rows.pop_front());
            self.clocks[lane.route] += lane.cost;
        }
        out
    }

    /// Rows taken but not sent (no send permit was free): first in their lanes again, their
    /// turns given back.
    pub fn put_back(&mut self, rows: Vec<Claimed>) {
        for row in rows.into_iter().rev() {
            if let Some(lane) = self.lanes.iter_mut().find(|l| l.carrier == row.carrier) {
                self.clocks[lane.route] -= lane.cost;
                lane.rows.push_front(row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, carrier: &str) -> Claimed {
        Claimed {
            id,
            msisdn: String::new(),
            carrier: carrier.into(),
            district: None,
            attempts: 0,
            text: None,
        }
    }

    /// Lanes over three routes: viettel at `vt`/s, vinaphone at `vn`/s, the rest at `other`/s.
    fn lanes(vt: f64, vn: f64, other: f64) -> Lanes {
        let mut l = Lanes {
            lanes: Carrier::ALL
                .iter()
                .map(|c| Lane {
                    carrier: c.as_str(),
                    rows: VecDeque::new(),
                    route: match c {
                        Carrier::Viettel => 0,
                        Carrier::Vinaphone => 1,
                        _ => 2,
                    },
                    cost: 0.0,
                    dry_until: None,
                })
                .collect(),
            clocks: vec![0.0; 3],
            marking: HashSet::new(),
        };
        for lane in &mut l.lanes {
            lane.cost = 1.0 / [vt, vn, other][lane.route];
        }
        l
    }

    fn carriers(rows: &[Claimed]) -> Vec<&str> {
        rows.iter().map(|r| r.carrier.as_str()).collect()
    }

    #[test]
    fn routes_take_turns_in_proportion_to_their_rates() {
        let mut l = lanes(100.0, 50.0, 50.0);
        let now = Instant::now();
        l.fill("viettel", (0..10).map(|i| row(i, "viettel")).collect(), now);
        l.fill(
            "vinaphone",
            (10..20).map(|i| row(i, "vinaphone")).collect(),
            now,
        );
        l.fill(
            "mobifone",
            (20..30).map(|i| row(i, "mobifone")).collect(),
            now,
        );
        let got = l.take(8);
        let count = |c: &str| carriers(&got).iter().filter(|x| **x == c).count();
        assert_eq!(
            (count("viettel"), count("vinaphone"), count("mobifone")),
            (4, 2, 2)
        );
        // Within a carrier, queue order is kept.
        let vt: Vec<i64> = got
            .iter()
            .filter(|r| r.carrier == "viettel")
            .map(|r| r.id)
            .collect();
        assert_eq!(vt, [0, 1, 2, 3]);
    }

    #[test]
    fn carriers_of_one_route_share_its_pace_in_queue_order() {
        let mut l = lanes(50.0, 50.0, 50.0);
        let now = Instant::now();
        l.fill("viettel", (0..10).map(|i| row(i, "viettel")).collect(), now);
        l.fill(
            "mobifone",
            (10..20).map(|i| row(i, "mobifone")).collect(),
            now,
        );
        l.fill("itel", (5..8).map(|i| row(i, "itel")).collect(), now);
        let got = l.take(8);
        // Half to Viettel's route; MobiFone and iTel share the other half, lowest id first.
        assert_eq!(
            got.iter().map(|r| r.id).collect::<Vec<_>>(),
            [0, 5, 1, 6, 2, 7, 3, 10]
        );
    }

    #[test]
    fn a_route_back_from_idle_gets_no_burst_and_rows_put_back_come_first() {
        let mut l = lanes(50.0, 50.0, 50.0);
        let now = Instant::now();
        l.fill(
            "viettel",
            (0..100).map(|i| row(i, "viettel")).collect(),
            now,
        );
        assert!(l.to_claim(now).contains(&"vinaphone"));
        l.fill("vinaphone", Vec::new(), now);
        assert!(!l.to_claim(now).contains(&"vinaphone"), "dry lanes rest");
        assert!(l.to_claim(now + DRY_FOR).contains(&"vinaphone"));
        assert_eq!(carriers(&l.take(20)), ["viettel"; 20]);
        l.fill(
            "vinaphone",
            (100..110).map(|i| row(i, "vinaphone")).collect(),
            now,
        );
        // Level with Viettel from here: alternating, not ten VinaPhone rows in a row.
        let got = l.take(4);
        assert_eq!(
            carriers(&got),
            ["viettel", "vinaphone", "viettel", "vinaphone"]
        );
        l.put_back(got[2..].to_vec());
        assert_eq!(
            l.take(2).iter().map(|r| r.id).collect::<Vec<_>>(),
            [got[2].id, got[3].id]
        );
        assert!(!l.is_empty());
        l.clear();
        assert!(l.is_empty());
        // A claim that reads rows of the group being marked does not take them again.
        l.marking(&[200, 201]);
        l.fill(
            "mobifone",
            (200..203).map(|i| row(i, "mobifone")).collect(),
            now,
        );
        assert_eq!(l.take(5).iter().map(|r| r.id).collect::<Vec<_>>(), [202]);
    }
}
