//! A full disk: the write that fails is reported in words, nothing committed is lost, and the
//! same process carries on once space is back (the writer connection is not left stuck).
//!
//! Needs a small tmpfs, which only root can mount: CI runs as root; elsewhere it skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use smscast::store::{self, Access};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        // One folder per mount: the tests run in parallel in one process, and a second
        // tmpfs mounted on the same folder hid the first one's files.
        static MOUNTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MOUNTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("smscast-full-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the disk with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_writing_resumes_when_space_returns() {
    let Some(fs) = Tmpfs::mount("4M") else {
        eprintln!(
            "a_full_disk_is_reported_and_writing_resumes_when_space_returns: skipped: mounting a tmpfs needs root (CI runs as root)"
        );
        return;
    };
    let url = format!("sqlite://{}", fs.0.join("smscast.db").display());
    let store = store::open(&url, Access::ReadWrite).await.unwrap();
    let details = serde_json::json!({ "pad": "x".repeat(2000) });
    for i in 0..5 {
        store
            .audit_append("op", "note", &format!("before {i}"), &details)
            .await
            .unwrap();
    }
    let filler = fill(&fs.0);
    let mut failed = None;
    for i in 0..200 {
        if let Err(e) = store
            .audit_append("op", "note", &format!("full {i}"), &details)
            .await
        {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("a write fails on a full disk");
    let said = store::explain(&e, &url).unwrap_or_else(|| format!("{e:#}"));
    assert!(said.contains("disk full"), "{said}");
    std::fs::remove_file(filler).unwrap();
    // Space is back: the same store writes again, and the chain is whole.
    store
        .audit_append("op", "note", "after", &details)
        .await
        .expect("writing resumes once space is back");
    let entries = store.audit_entries().await.unwrap();
    assert!(matches!(
        smscast::audit::verify(&entries),
        smscast::audit::Verdict::Intact { .. }
    ));
    assert_eq!(entries.last().unwrap().subject, "after");
    store.close().await;
}

/// The same through a running `dlr serve`: receipts are answered 200 only once stored; on a
/// full disk they are refused (the gateway retries them), and once space is back the same
/// process stores them again, with every receipt answered 200 kept.
#[test]
fn dlr_serve_refuses_while_the_disk_is_full_and_carries_on_after() {
    use std::io::{BufRead, Read, Write};
    let Some(fs) = Tmpfs::mount("4M") else {
        eprintln!(
            "dlr_serve_refuses_while_the_disk_is_full_and_carries_on_after: skipped: mounting a tmpfs needs root (CI runs as root)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("smscast-full-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("smscast.toml"),
        "[gateways.k]\nkind = \"kannel\"\nurl = \"http://127.0.0.1:9/\"\nusername = \"u\"\npassword = \"p\"\ndlr_url = \"http://127.0.0.1:9\"\ndlr_token = \"tok\"\n",
    )
    .unwrap();
    let db = format!("sqlite://{}", fs.0.join("smscast.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_smscast"))
        .current_dir(&dir)
        .env_remove("SMSCAST_DATABASE_URL")
        .args(["--db", &db, "dlr", "serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("receiving delivery receipts on ")
        .unwrap_or_else(|| panic!("unexpected output {line:?}"))
        .to_string();
    let host = base.strip_prefix("http://").unwrap().to_string();
    let post = |n: u32| -> u16 {
        let mut s = std::net::TcpStream::connect(&host).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let path = format!(
            "/kannel/k?token=tok&ref=smscast-1-{n}&status=1&to=8491234{n:04}&answer={}",
            "x".repeat(1500)
        );
        write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
    };
    let mut stored = 0;
    for n in 0..5 {
        assert_eq!(post(n), 200);
        stored += 1;
    }
    let filler = fill(&fs.0);
    let mut refused = false;
    for n in 5..400 {
        match post(n) {
            200 => stored += 1,
            _ => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "a receipt is refused while the disk is full");
    std::fs::remove_file(filler).unwrap();
    let start = std::time::Instant::now();
    let mut n = 1000;
    loop {
        n += 1;
        if post(n) == 200 {
            stored += 1;
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "dlr serve stores receipts again once space is back"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut status = std::net::TcpStream::connect(&host).unwrap();
    write!(status, "GET /status HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut body = String::new();
    status.read_to_string(&mut body).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(body.split_once("\r\n\r\n").unwrap().1).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        json["total"], stored,
        "every receipt answered 200 is kept: {json}"
    );
}
