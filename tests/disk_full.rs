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
        let dir = std::env::temp_dir().join(format!("smscast-full-{}", std::process::id()));
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
