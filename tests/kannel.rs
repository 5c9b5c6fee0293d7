//! A campaign through a real Kannel (bearerbox + smsbox + fakesmsc, all on 127.0.0.1), with
//! Vietnamese text: what fakesmsc receives decodes to the exact text, and Kannel's receipts,
//! through `dlr serve`, mark every message delivered.
//!
//! Needs Debian's `kannel` and `kannel-extras`; without them the test says why and skips
//! (set SMSCAST_REQUIRE_KANNEL=1, as CI does, to make that a failure instead).

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use smscast::config::Config;
use smscast::dispatch::{Routes, Stop};
use smscast::dlr::{DlrOptions, DlrServer, Receivers};
use smscast::gateway;

/// Two UCS-2 segments: Kannel must split, carry UTF-8 → UCS-2 right, and report each part.
const TEXT: &str = "Hưởng ứng Tháng hành động phòng, chống ma túy 2022: hãy nói KHÔNG với ma túy! Mỗi người dân hãy tố giác tội phạm ma túy.";
const PASSWORD: &str = "kannel-test-pw";
const TOKEN: &str = "dlr-test-token";

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A child process killed (and reaped) when dropped, whatever happens in the test.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &Path, args: &[&str], log: &Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Proc(
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display())),
    )
}

fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

fn wait_for_port(port: u16, what: &str, logs: &[PathBuf]) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    dump(logs);
    panic!("{what} did not listen on {addr} within 15 s");
}

fn dump(logs: &[PathBuf]) {
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("--- {} (last lines) ---", log.display());
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
    }
}

/// `%XX` and `+` decoding to bytes, as Kannel's octstr_url_encode writes them.
fn url_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn utf16be(bytes: &[u8]) -> String {
    assert!(bytes.len().is_multiple_of(2), "odd UCS-2 length");
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).expect("valid UTF-16")
}

/// Reassembles what fakesmsc printed ("Got message N: <from to type …>") per receiver.
fn received_texts(log: &str) -> BTreeMap<String, String> {
    // receiver → (concat ref, part no) → text of the part
    let mut parts: BTreeMap<String, BTreeMap<(u8, u8), String>> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("Got message")) {
        let start = line.find('<').expect("<");
        let end = line.rfind('>').expect(">");
        let fields: Vec<&str> = line[start + 1..end].splitn(4, ' ').collect();
        let (to, kind) = (fields[1].to_string(), fields[2]);
        match kind {
            "ucs-2" | "ucs2" => {
                parts
                    .entry(to)
                    .or_default()
                    .insert((0, 1), utf16be(&url_decode(fields[3])));
            }
            "udh" => {
                // "udh <udh> [data|ucs-2] <payload>": the payload is the last word.
                let rest: Vec<&str> = fields[3].split(' ').collect();
                let udh = url_decode(rest[0]);
                // 05 00 03 ref total seq (8-bit concatenation reference)
                assert!(udh.len() >= 6 && udh[1] == 0, "unexpected UDH {udh:?}");
                parts
                    .entry(to)
                    .or_default()
                    .insert((udh[3], udh[5]), utf16be(&url_decode(rest[rest.len() - 1])));
            }
            other => panic!("fakesmsc got a {other:?} message, not UCS-2: {line}"),
        }
    }
    parts
        .into_iter()
        .map(|(to, p)| (to, p.into_values().collect::<String>()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_through_a_real_kannel_is_delivered_with_the_exact_text() {
    let bearerbox = find(&["/usr/sbin/bearerbox", "/usr/bin/bearerbox"]);
    let smsbox = find(&["/usr/sbin/smsbox", "/usr/bin/smsbox"]);
    let fakesmsc = find(&[
        "/usr/lib/kannel/test/fakesmsc",
        "/usr/lib/kannel/fakesmsc",
        "/usr/bin/fakesmsc",
    ]);
    let (Some(bearerbox), Some(smsbox), Some(fakesmsc)) = (bearerbox, smsbox, fakesmsc) else {
        let why = "Kannel is not installed (bearerbox, smsbox, or fakesmsc from kannel-extras missing): apt-get install kannel kannel-extras";
        if std::env::var_os("SMSCAST_REQUIRE_KANNEL").is_some() {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why}");
        return;
    };

    let dir = TempDir::new("kannel");
    let [admin, boxes, fake, sendsms] = free_ports::<4>();
    let d = dir.0.display();
    let conf = dir.0.join("kannel.conf");
    std::fs::write(
        &conf,
        format!(
            "group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = test-admin
smsbox-port = {boxes}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
dlr-storage = internal
log-level = 1
log-file = {d}/bearerbox-file.log

group = smsc
smsc = fake
smsc-id = fake
port = {fake}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {boxes}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-level = 1
log-file = {d}/smsbox-file.log

group = sendsms-user
username = smscast
password = {PASSWORD}
max-messages = 10
concatenation = true
"
        ),
    )
    .unwrap();
    let logs: Vec<PathBuf> = ["bearerbox.log", "smsbox.log", "fakesmsc.log"]
        .iter()
        .map(|f| dir.0.join(f))
        .collect();
    let conf_s = conf.to_str().unwrap();
    let _bb = spawn(&bearerbox, &["-v", "1", conf_s], &logs[0]);
    wait_for_port(boxes, "bearerbox", &logs);
    wait_for_port(fake, "bearerbox's fake SMSC", &logs);
    let fake_port = fake.to_string();
    let _fake = spawn(
        &fakesmsc,
        &[
            "-H",
            "127.0.0.1",
            "-r",
            &fake_port,
            "-m",
            "0",
            "1 2 text unused",
        ],
        &logs[2],
    );
    let _sb = spawn(&smsbox, &["-v", "1", conf_s], &logs[1]);
    wait_for_port(sendsms, "smsbox's sendsms", &logs);

    // smscast: the store, the receipt server, a campaign through the Kannel gateway.
    let store = common::open_store(&dir).await;
    let dlr_port = free_ports::<1>()[0];
    let config = Config::parse(&format!(
        r#"
        [gateways.kannel]
        kind = "kannel"
        url = "http://127.0.0.1:{sendsms}/cgi-bin/sendsms"
        username = "smscast"
        password = "{PASSWORD}"
        dlr_url = "http://127.0.0.1:{dlr_port}"
        dlr_token = "{TOKEN}"
        "#
    ))
    .unwrap();
    let server = DlrServer::start(
        store.clone(),
        Receivers::from_config(&config).unwrap(),
        &format!("127.0.0.1:{dlr_port}"),
        DlrOptions {
            upkeep_every: Duration::from_millis(200),
            validity: Duration::from_secs(3600),
            unmatched_after: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let numbers = common::numbers(5);
    let campaign = common::seed(&*store, &numbers, TEXT, "kannel").await;
    assert_eq!(campaign.encoding, "UCS-2");
    assert_eq!(campaign.segments, 2);
    let gw = gateway::build(&config, "kannel", Duration::from_secs(10)).unwrap();
    let stop = common::send(store.clone(), campaign.clone(), Routes::single(gw)).await;
    assert_eq!(stop, Stop::Completed);

    let counts = common::wait_for_state(
        &*store,
        campaign.id,
        "delivered",
        numbers.len() as i64,
        Duration::from_secs(30),
    )
    .await;
    let delivered = counts
        .iter()
        .find(|(s, _)| s == "delivered")
        .map_or(0, |c| c.1);
    if delivered != numbers.len() as i64 {
        dump(&logs);
    }
    assert_eq!(
        delivered,
        numbers.len() as i64,
        "every message delivered by Kannel's receipts: {counts:?}"
    );
    let receipts = store.receipt_counts().await.unwrap();
    // Each of the 2 parts reports "SMSC accepted" (8) and "delivered" (1).
    assert!(receipts.matched >= 2 * numbers.len() as i64, "{receipts:?}");
    assert_eq!(receipts.unmatched, 0, "{receipts:?}");

    // What the fake SMSC received decodes to exactly the text, for every number.
    let log = std::fs::read_to_string(&logs[2]).unwrap();
    let texts = received_texts(&log);
    for n in &numbers {
        assert_eq!(
            texts.get(n).map(String::as_str),
            Some(TEXT),
            "text received for {n}"
        );
    }
    assert_eq!(texts.len(), numbers.len(), "{texts:?}");
    server.stop().await;
}
