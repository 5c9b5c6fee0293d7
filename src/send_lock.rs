//! On the embedded default (one SQLite file), one `send` per gateway at a time.
//!
//! PostgreSQL shares each campaign's and each gateway's rate between workers through a token
//! bucket in the database. A SQLite file has one writer at a time, and a grant per few
//! messages would queue behind the dispatcher's own writes, so instead a `send` holds an
//! exclusive lock on every gateway its campaign routes to, for as long as it runs: a second
//! `send` of the same campaign, or of another campaign through the same gateway, is refused
//! at once, saying who holds the gateway. Each gateway's rate then holds across processes by
//! construction. The locks are `flock`s on files beside the database (`smscast.db.send-NAME.lock`),
//! released by the kernel when the process ends, however it ends.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The locks held by this process; released when dropped.
pub struct SendLocks {
    _held: Vec<File>,
}

impl SendLocks {
    /// Locks every gateway in `gateways` for `campaign`, or says who holds one.
    pub fn take(db: &Path, gateways: &[String], campaign: &str) -> Result<Self> {
        let mut names: Vec<&String> = gateways.iter().collect();
        names.sort();
        names.dedup();
        let mut held = Vec::new();
        for name in names {
            let path = lock_path(db, name);
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {
                    file.set_len(0)?;
                    file.seek(SeekFrom::Start(0))?;
                    write!(
                        file,
                        "campaign {campaign:?}, process {} since {}",
                        std::process::id(),
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )?;
                    held.push(file);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    bail!(
                        "gateway {name:?} is in use by another `smscast send` on this database ({}). On the embedded SQLite database one `send` per gateway runs at a time, so that the gateway's rate holds; wait for it to finish (or stop it with Ctrl-C), or run many workers on PostgreSQL (README: \"Scale out on PostgreSQL\")",
                        if holder.is_empty() {
                            "starting"
                        } else {
                            holder.trim()
                        }
                    );
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
        Ok(Self { _held: held })
    }
}

fn lock_path(db: &Path, gateway: &str) -> PathBuf {
    let safe: String = gateway
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = db.as_os_str().to_owned();
    name.push(format!(".send-{safe}.lock"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named() {
        let dir = std::env::temp_dir().join(format!("smscast-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("smscast.db");
        let first = SendLocks::take(&db, &["viettel".into(), "agg".into()], "june").unwrap();
        let e = SendLocks::take(&db, &["agg".into()], "july")
            .err()
            .expect("refused");
        assert!(e.to_string().contains("\"agg\" is in use"), "{e}");
        assert!(e.to_string().contains("campaign \"june\""), "{e}");
        drop(first);
        SendLocks::take(&db, &["agg".into()], "july").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
