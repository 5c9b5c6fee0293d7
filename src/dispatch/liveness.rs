//! Is a worker's process still running? Told for sure only where it can be.
//!
//! A worker's lease is the rule: a worker whose lease expired is dead, wherever it ran. As a
//! shortcut (a `send` restarted after a crash need not wait for the lease), a process may
//! declare another worker dead at once — but only when it can see that worker's process: same
//! kernel boot (`/proc/sys/kernel/random/boot_id`), same PID namespace (`/proc/self/ns/pid`),
//! and then the pid is gone or now belongs to a process started at another time (field 22 of
//! `/proc/PID/stat`). A hostname is not enough: containers share one, each with its own PID 1,
//! and would declare each other dead. Anything else (another machine, another container, no
//! `/proc`) is left to the lease.

/// This process's fingerprint, `boot:pidns:pid:start`, or `None` without `/proc`.
pub fn this_process() -> Option<String> {
    let pid = std::process::id();
    Some(format!(
        "{}:{}:{pid}:{}",
        boot_id()?,
        pid_namespace()?,
        start_time(pid)?
    ))
}

/// `Some(true)`: the process of `fingerprint` is surely gone; `Some(false)`: it surely runs;
/// `None`: this process cannot tell (another boot, namespace or machine, or no fingerprint).
pub fn is_gone(fingerprint: &str) -> Option<bool> {
    let mut parts = fingerprint.rsplitn(3, ':');
    let start: u64 = parts.next()?.parse().ok()?;
    let pid: u32 = parts.next()?.parse().ok()?;
    let boot_and_ns = parts.next()?;
    if boot_and_ns != format!("{}:{}", boot_id()?, pid_namespace()?) {
        return None;
    }
    Some(start_time(pid) != Some(start))
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string())
}

fn pid_namespace() -> Option<String> {
    // "pid:[4026531836]": the inode names the namespace.
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_string_lossy();
    let inode = link.strip_prefix("pid:[")?.strip_suffix(']')?;
    Some(inode.to_string())
}

/// Clock ticks after boot at which `pid` started (field 22 of `/proc/PID/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_finished_one_is_gone() {
        let Some(me) = this_process() else {
            return; // no /proc here: only leases
        };
        assert_eq!(is_gone(&me), Some(false));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let (boot_ns, _) = me.rsplit_once(':').unwrap();
        let (boot_ns, _) = boot_ns.rsplit_once(':').unwrap();
        assert_eq!(is_gone(&format!("{boot_ns}:{pid}:1")), Some(true));
    }

    #[test]
    fn the_same_pid_started_at_another_time_is_another_process() {
        let Some(me) = this_process() else {
            return;
        };
        let (rest, start) = me.rsplit_once(':').unwrap();
        let other = format!("{rest}:{}", start.parse::<u64>().unwrap() + 1);
        assert_eq!(is_gone(&other), Some(true));
    }

    #[test]
    fn another_namespace_or_boot_cannot_be_judged() {
        let Some(me) = this_process() else {
            return;
        };
        let mut parts: Vec<&str> = me.split(':').collect();
        parts[1] = "1"; // a PID namespace that is not ours (another container)
        assert_eq!(is_gone(&parts.join(":")), None);
        let other_boot = format!("00000000-0000-0000-0000-000000000000{}", &me[36..]);
        assert_eq!(is_gone(&other_boot), None);
        assert_eq!(is_gone("localhost:1234"), None);
    }
}
