//! `TCP_NODELAY` on every PostgreSQL connection, which sqlx 0.9.0 no longer sets
//! (launchbadge/sqlx#4335: 0.8 set it, #4022 dropped it, no release has it back yet).
//!
//! Without it, Nagle's algorithm holds a small write while an earlier one is unacknowledged,
//! and the server delays its acknowledgement by up to 40 ms when it has nothing to answer yet.
//! A `COPY` is exactly that: its data, then `CopyDone`, two writes before any answer. Measured
//! on a first import of a million numbers (124 `COPY`s of 16,384 rows): 3.7 s of `COPY`
//! without, against 1.4 s for the same chunks sent by `psql`, which sets it (as libpq does).
//!
//! sqlx gives no handle on its socket, so the connection asks the server for its own client
//! port (`inet_client_port()`), and the socket of this process bound to that local port and
//! connected to the server's port gets the option. Through a proxy or NAT the ports differ,
//! nothing matches, and the connection stays as sqlx made it. Unix-domain sockets have no
//! Nagle: nothing to do. Linux only (`/proc/self/fd`); elsewhere a no-op.

use sqlx::PgConnection;

/// Sets `TCP_NODELAY` on `conn`'s socket, where it can be found (see the module's comment).
pub(super) async fn set(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    if let Some((client, server)) = ports(conn).await? {
        on_socket(client, server, |s| {
            let _ = s.set_tcp_nodelay(true);
        });
    }
    Ok(())
}

/// This connection's (client, server) TCP ports as the server sees them; `None` over a
/// Unix-domain socket.
async fn ports(conn: &mut PgConnection) -> Result<Option<(u16, u16)>, sqlx::Error> {
    let (client, server): (Option<i32>, Option<i32>) =
        sqlx::query_as("SELECT inet_client_port(), inet_server_port()")
            .fetch_one(conn)
            .await?;
    Ok(
        match (client.map(u16::try_from), server.map(u16::try_from)) {
            (Some(Ok(client)), Some(Ok(server))) => Some((client, server)),
            _ => None,
        },
    )
}

/// Calls `f` on each socket of this process bound to `local_port` and connected to
/// `peer_port`.
#[cfg(target_os = "linux")]
fn on_socket(local_port: u16, peer_port: u16, mut f: impl FnMut(socket2::SockRef<'_>)) {
    use std::os::fd::BorrowedFd;
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let port = |a: std::io::Result<socket2::SockAddr>| {
        a.ok().and_then(|a| a.as_socket()).map(|a| a.port())
    };
    for fd in fds.flatten() {
        let Some(fd) = fd.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: only borrowed for `getsockname`, `getpeername` and `f`'s socket options,
        // never closed. An fd closed meanwhile makes them fail (EBADF); one reused meanwhile
        // is matched by its ports like any other.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        if port(socket.local_addr()) == Some(local_port)
            && port(socket.peer_addr()) == Some(peer_port)
        {
            f(socket);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn on_socket(_local_port: u16, _peer_port: u16, _f: impl FnMut(socket2::SockRef<'_>)) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Every connection the store's pool opens has `TCP_NODELAY` (sqlx 0.9.0 leaves it off:
    /// this failed before `after_connect` set it). Needs `SMSCAST_TEST_PG` over TCP (over a Unix socket it says it skips).
    #[tokio::test]
    async fn store_connections_do_not_wait_for_delayed_acks() {
        let Some(url) = super::super::test_server() else {
            return;
        };
        let pool = super::super::pool_options()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("connect");
        let mut conns = vec![pool.acquire().await.unwrap(), pool.acquire().await.unwrap()];
        for conn in &mut conns {
            let Some((client, server)) = ports(conn).await.unwrap() else {
                eprintln!(
                    "skipped: SMSCAST_TEST_PG is not a TCP connection (no Nagle to turn off)"
                );
                return;
            };
            let mut found = Vec::new();
            on_socket(client, server, |s| found.push(s.tcp_nodelay().unwrap()));
            assert_eq!(found, [true], "the connection's socket, with TCP_NODELAY");
        }
    }
}
