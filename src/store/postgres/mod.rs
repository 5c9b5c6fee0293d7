//! The scale-out backend: one PostgreSQL database shared by every worker on every machine.
//!
//! Same semantics as the SQLite store, statement for statement, in PostgreSQL's dialect: id
//! lists are bound arrays (`= ANY($1)`, `UNNEST`), claims take rows with `FOR UPDATE SKIP
//! LOCKED` so workers never wait on each other's batches, and the audit chain is appended under
//! a transaction-scoped advisory lock so it stays one line across processes. Statements that
//! touch many leased rows lock them in id order first, so a worker's heartbeat, marking and
//! recording (three connections) cannot deadlock each other. Text is ordered with
//! `COLLATE "C"`, byte order, as SQLite does.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres, Transaction};

mod import;
mod nodelay;

use super::*;

const MIGRATIONS: &[(&str, &str)] = crate::store::migrations!(
    "postgres",
    "0001_initial",
    "0002_receipts",
    "0003_report_indexes",
    "1001_scale_out",
    "0006_settings",
    "0007_worker_identity",
    "0008_receipt_parts",
    "0009_launch_and_leases",
    "1002_queue_order",
    "1003_queue_by_carrier",
);

/// Every pool's options: each connection without Nagle's delay (see `nodelay.rs`), and with
/// [`KEEPALIVE`].
fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().after_connect(|conn, _| {
        Box::pin(async move {
            nodelay::set(conn).await?;
            sqlx::Executor::execute(conn, KEEPALIVE).await?;
            Ok(())
        })
    })
}

/// The server gives up on a session whose client machine vanished (power or network lost,
/// nothing closed) after about a minute: probes after 30 s of silence, 10 s apart, 3 unanswered.
/// Until then such a session keeps the row locks of its open transaction, which the other
/// workers' claims and recovery skip; with Linux's defaults that was over two hours. A client
/// that is alive answers the probes from its kernel, however slowly it sends (an import fed
/// through a pipe). Set after connecting rather than in the startup packet, which PgBouncer
/// refuses options in; over a Unix socket the server ignores them.
const KEEPALIVE: &str = "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10;
                         SET tcp_keepalives_count = 3";

/// `pg_advisory_xact_lock` key serialising appends to the audit chain ("smscast" in ASCII).
const AUDIT_LOCK: i64 = 0x0073_6d73_6361_7374;

pub struct PostgresStore {
    pool: PgPool,
    /// Opened for an auditor: the server refuses writes on every connection.
    read_only: bool,
    refs: References,
}

impl PostgresStore {
    pub async fn open(url: &str, access: Access) -> Result<Self> {
        let (url_read_only, url) = super::url_mode(url)?;
        let read_only = url_read_only || access == Access::ReadOnly;
        // The import's and the launch's set-wise statements run for seconds by design at
        // national scale: not a warning each on the operator's terminal.
        let mut options = PgConnectOptions::from_str(&url)?
            .application_name("smscast")
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        if read_only {
            // Auditors' commands: the server itself refuses writes on these connections.
            options = options.options([("default_transaction_read_only", "on")]);
        }
        let pool = pool_options()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await?;
        if read_only {
            let ready: bool = sqlx::query_scalar("SELECT to_regclass('campaigns') IS NOT NULL")
                .fetch_one(&pool)
                .await?;
            if !ready {
                bail!(
                    "this database has no smscast tables yet: import a list first (smscast subscribers import), or point --db at the right database"
                );
            }
        } else {
            // sqlx holds an advisory lock while migrating: workers starting together queue.
            migrator(MIGRATIONS, i64::MAX)
                .run(&pool)
                .await
                .context("Failed to apply the database migrations")?;
        }
        let refs = campaigns_impl::references(&pool, !read_only).await?;
        Ok(Self {
            pool,
            read_only,
            refs,
        })
    }

    /// The pool reads go through.
    fn read(&self) -> &PgPool {
        &self.pool
    }

    /// The pool single-statement writes go through.
    fn write(&self) -> &PgPool {
        &self.pool
    }

    async fn tx(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// The transaction of a dispatcher's write cycle, whose few statements run thousands of
    /// times a minute with new ids each time: each is planned once per connection (a generic
    /// plan: primary-key look-ups, whatever the statistics say), not once per execution.
    /// PostgreSQL's default re-plans a statement while a plan made for its values looks
    /// cheaper; with the many partial indexes of `deliveries`, that planning took a fifth of
    /// the machine's CPU with four workers. The setting ends with the transaction.
    async fn cycle_tx(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self
            .pool
            .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
            .await?)
    }
}

/// Claims lease their rows; the mark takes only this worker's (see `mark_in` in
/// src/store/queue.rs).
const CLAIM_LEASES: bool = true;

/// Numbers are locked (in order) for the rest of the transaction, so two workers marking the
/// same number for two campaigns at once take turns, and the second sees the first's row in
/// flight.
async fn lock_numbers(tx: &mut Transaction<'static, Postgres>, ids: &[i64]) -> Result<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext(msisdn)) FROM
                 (SELECT DISTINCT msisdn FROM deliveries WHERE id = ANY($1) ORDER BY msisdn) n",
    )
    .bind(ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a batch of outcomes inside `tx`, their rows locked (see [`Queue::record`]); returns
/// the stale ones and the submissions. The batch travels as one bound array per column: two
/// statements per batch, not two per message.
async fn record_in(
    tx: &mut Transaction<'static, Postgres>,
    worker: &str,
    outcomes: &[Outcome],
    now: i64,
) -> Result<(u64, i64)> {
    let c = OutcomeColumns::new(outcomes, now);
    sqlx::query(
        "INSERT INTO attempts (campaign_id, delivery_id, attempt_no, worker, started_ms,
                 latency_ms, http_status, gateway_code, outcome, error)
             SELECT d.campaign_id, d.id, o.attempt_no, $2, o.started_ms, o.latency_ms,
                    o.http_status, o.gateway_code, o.outcome, o.error
             FROM UNNEST($1::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                         $7::text[], $8::text[], $9::text[])
                  WITH ORDINALITY AS o(id, attempt_no, started_ms, latency_ms, http_status,
                                       gateway_code, outcome, error, ord)
             JOIN deliveries d ON d.id = o.id
             ORDER BY o.ord",
    )
    .bind(&c.id)
    .bind(worker)
    .bind(&c.attempt_no)
    .bind(&c.started_ms)
    .bind(&c.latency_ms)
    .bind(&c.http_status)
    .bind(&c.gateway_code)
    .bind(&c.outcome)
    .bind(&c.error)
    .execute(&mut **tx)
    .await?;
    // Only a row still in flight at this attempt moves: a receipt may have finalised it
    // already, or another worker taken it over after this one's lease expired.
    let values = [
        "o.state",
        "o.gateway",
        "o.gateway_id",
        "o.next_attempt_ms",
        "o.final_ms",
        "o.done_ms",
        "o.text",
        "o.error",
    ];
    let settled: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "{}
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::bigint[])
              AS o(id, state, gateway, gateway_id, next_attempt_ms, final_ms, done_ms, error,
                   text, attempt_no)
         WHERE deliveries.id = o.id AND deliveries.attempts = o.attempt_no
           AND deliveries.{}
         RETURNING o.state",
        crate::store::queue::settle_sql(values, "deliveries."),
        DeliveryMove::Settle.guard()
    )))
    .bind(&c.id)
    .bind(&c.state)
    .bind(&c.gateway)
    .bind(&c.gateway_id)
    .bind(&c.next_attempt_ms)
    .bind(&c.final_ms)
    .bind(&c.done_ms)
    .bind(&c.error)
    .bind(&c.text)
    .bind(&c.attempt_no)
    .fetch_all(&mut **tx)
    .await?;
    let submitted = settled.iter().filter(|s| *s == "submitted").count() as i64;
    Ok(((outcomes.len() - settled.len()) as u64, submitted))
}

crate::store::campaigns::launch_chunk_for!(sqlx::Postgres);
crate::store::campaigns::campaigns_impl!(
    PostgresStore,
    sqlx::Postgres,
    " FOR UPDATE",
    // The launch: one worker copies at a time, the others are told to come back (SKIP
    // LOCKED). A NO KEY lock: readers of the campaign and writers of other tables never wait.
    launch_lock: "SELECT list_id, launch_after FROM campaigns WHERE id = $1
                  FOR NO KEY UPDATE SKIP LOCKED",
    {
        async fn begin_import(&self, list: &str) -> Result<Box<dyn ImportSession>> {
            import::begin(self.tx().await?, list).await
        }
    }
);
crate::store::queue::queue_impl!(
    PostgresStore,
    sqlx::Postgres,
    " FOR UPDATE",
    " FOR UPDATE SKIP LOCKED",
    {
        async fn claim(
            &self,
            campaign_id: i64,
            carrier: &str,
            worker: &str,
            limit: u32,
            now_ms: i64,
            lease_until_ms: i64,
        ) -> Result<Vec<Claimed>> {
            // SKIP LOCKED: workers claiming at the same moment take different rows, nobody waits.
            let mut claimed: Vec<Claimed> = sqlx::query_as(
                "WITH picked AS (SELECT id FROM deliveries
                             WHERE campaign_id = $3 AND carrier = $6 AND state = 'queued'
                               AND next_attempt_ms <= $4
                             ORDER BY next_attempt_ms, id LIMIT $5
                             FOR UPDATE SKIP LOCKED)
             UPDATE deliveries SET state = 'claimed', lease_owner = $1, lease_expires_ms = $2
             FROM picked WHERE deliveries.id = picked.id
             RETURNING deliveries.id, deliveries.msisdn, deliveries.carrier, deliveries.district,
                       deliveries.attempts",
            )
            .bind(worker)
            .bind(lease_until_ms)
            .bind(campaign_id)
            .bind(now_ms)
            .bind(limit as i64)
            .bind(carrier)
            .fetch_all(&self.pool)
            .await?;
            claimed.sort_by_key(|c| c.id);
            Ok(claimed)
        }

        async fn rate_grant(
            &self,
            scope: &str,
            rate: f64,
            burst: f64,
            want: u32,
        ) -> Result<Option<RateGrant>> {
            sqlx::query(
                "INSERT INTO rate_budget (scope, rate, burst, tokens, refreshed_ms)
             VALUES ($1, $2, $3, 0, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)
             ON CONFLICT (scope) DO NOTHING",
            )
            .bind(scope)
            .bind(rate)
            .bind(burst)
            .execute(&self.pool)
            .await?;
            // A token bucket in one statement: refill for the time since the last grant (on the
            // database's clock, never counted twice), cap at the burst, hand out what is there.
            let (granted, left): (i64, f64) = sqlx::query_as(
                "WITH cur AS (
                 SELECT b.scope, t.ms,
                        LEAST($3::float8, b.tokens + $2::float8
                              * GREATEST(t.ms - b.refreshed_ms, 0)::float8 / 1000.0::float8) AS avail
                 FROM rate_budget b,
                      (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS ms) t
                 WHERE b.scope = $1 FOR UPDATE OF b),
             g AS (SELECT scope, ms, avail,
                          GREATEST(LEAST(FLOOR(avail), $4::float8), 0::float8) AS granted FROM cur)
             UPDATE rate_budget b SET tokens = g.avail - g.granted,
                 refreshed_ms = GREATEST(b.refreshed_ms, g.ms), rate = $2, burst = $3
             FROM g WHERE b.scope = g.scope
             RETURNING g.granted::BIGINT, b.tokens",
            )
            .bind(scope)
            .bind(rate)
            .bind(burst)
            .bind(i64::from(want))
            .fetch_one(&self.pool)
            .await?;
            Ok(Some(RateGrant {
                granted: granted as u32,
                tokens_left: left,
            }))
        }
    }
);
crate::store::handover::carriers_impl!(PostgresStore);
// Match passes take pending receipts with `FOR UPDATE SKIP LOCKED`, so several receivers never
// apply the same receipt twice.
crate::store::receipts::receipts_impl!(
    PostgresStore,
    sqlx::PgConnection,
    begin(),
    " FOR UPDATE SKIP LOCKED"
);
crate::store::report_query::reports_impl!(
    PostgresStore,
    sqlx::postgres::PgArguments,
    sqlx::postgres::PgRow,
    crate::store::report_query::numbered
);

/// "Is in the list bound as `param`" (an array).
fn id_in(param: &str) -> String {
    format!("= ANY({param})")
}

/// A list as [`id_in`] and [`rows`] bind it.
fn list<T>(items: &[T]) -> &[T] {
    items
}

/// The list bound as `param` (an array of `sql_type`) as a table of one column, `value`.
fn rows(param: &str, sql_type: &str) -> String {
    format!("UNNEST({param}::{sql_type}[]) AS l(value)")
}

/// One appender at a time across every process, until the transaction ends: the audit
/// chain stays a line.
async fn serialise_audit(tx: &mut Transaction<'static, Postgres>) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The columns of a batch of outcomes, one bound array each, for `UNNEST`.
#[derive(Default)]
struct OutcomeColumns {
    id: Vec<i64>,
    attempt_no: Vec<i64>,
    started_ms: Vec<i64>,
    latency_ms: Vec<i64>,
    http_status: Vec<Option<i64>>,
    gateway: Vec<String>,
    gateway_code: Vec<Option<String>>,
    outcome: Vec<String>,
    error: Vec<Option<String>>,
    state: Vec<String>,
    gateway_id: Vec<Option<String>>,
    next_attempt_ms: Vec<Option<i64>>,
    final_ms: Vec<Option<i64>>,
    done_ms: Vec<i64>,
    text: Vec<Option<String>>,
}

impl OutcomeColumns {
    fn new(outcomes: &[Outcome], now: i64) -> Self {
        let mut c = Self::default();
        for o in outcomes {
            let (state, gateway_id, next_attempt, final_ms) = o.settles_to(now);
            c.id.push(o.delivery_id);
            c.attempt_no.push(o.attempt_no);
            c.started_ms.push(o.started_ms);
            c.latency_ms.push(o.latency_ms);
            c.http_status.push(o.http_status);
            c.gateway.push(o.gateway.clone());
            c.gateway_code.push(o.gateway_code.clone());
            c.outcome.push(o.kind.label().to_string());
            c.error.push(o.error.clone());
            c.state.push(state.to_string());
            c.gateway_id.push(gateway_id.map(str::to_string));
            c.next_attempt_ms.push(next_attempt);
            c.final_ms.push(final_ms);
            c.done_ms.push(o.started_ms + o.latency_ms);
            c.text.push(o.text.clone());
        }
        c
    }
}

/// What differs per dialect; the rest of `Store` is written once (the `*_impl!` macros).
impl PostgresStore {
    /// After a launch's first chunk and its last: the planner's statistics of `deliveries`
    /// (autovacuum analyses it a minute later at best) would still describe the table before
    /// the launch, and the statements run at the start of `send` and on every takeover (the
    /// per-number cap's count, recovery) then picked nested loops over the whole table: a
    /// 30,000-row campaign's `send` spent 18 minutes on its first statement. Samples at most
    /// 30,000 rows whatever the table's size.
    async fn launched_rows(&self) -> Result<()> {
        sqlx::query("ANALYZE deliveries")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

/// The PostgreSQL server the unit tests run on (`SMSCAST_TEST_PG`); without one, the test says
/// it skips.
#[cfg(test)]
fn test_server() -> Option<String> {
    let url = std::env::var("SMSCAST_TEST_PG").ok();
    if url.is_none() {
        eprintln!("skipped: set SMSCAST_TEST_PG to a PostgreSQL URL (.ci/run does)");
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Executor, PgConnection};

    /// The dispatcher's write cycle plans its statements once per connection, whatever ids
    /// they carry: with PostgreSQL's default, the first five executions of each were planned
    /// for their values (and more, while such plans looked cheaper), and this failed with
    /// five custom plans per statement. Needs `SMSCAST_TEST_PG` (it says it skips without).
    #[tokio::test]
    async fn a_write_cycle_plans_its_statements_once_per_connection() {
        let Some(admin) = test_server() else {
            return;
        };
        let name = format!(
            "smscast_unit_plans_{}_{:x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let mut server = PgConnection::connect(&admin).await.expect("connect");
        server
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create the test database");
        let options = PgConnectOptions::from_str(&admin).unwrap().database(&name);
        // One connection: the plans looked at are those of the connection that ran the cycles.
        let pool = pool_options()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("connect to the test database");
        migrator(MIGRATIONS, i64::MAX).run(&pool).await.unwrap();
        let refs = campaigns_impl::references(&pool, true).await.unwrap();
        let store = PostgresStore {
            pool,
            read_only: false,
            refs,
        };
        for i in 0..8 {
            let mark = Mark {
                ids: (i..i + 3).collect(),
                cap_ms: 0,
                lease_until_ms: now_ms() + 60_000,
            };
            store.write_cycle("w", &[], Some(&mark)).await.unwrap();
        }
        let plans: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
             WHERE statement LIKE '%deliveries%' AND statement NOT LIKE '%pg_prepared%'",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        store.pool.close().await;
        server
            .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .await
            .expect("drop the test database");
        assert!(plans.len() >= 3, "the cycle's statements: {plans:?}");
        for (statement, generic, custom) in plans {
            assert_eq!(
                (generic, custom),
                (8, 0),
                "generic and custom plans of {statement}"
            );
        }
    }

    /// A worker's machine that vanishes mid-transaction (power or network lost) never closes
    /// its connection: the server keeps the session, and the row locks of its transaction,
    /// which other workers' claims and recovery skip, until TCP keepalive gives up on it:
    /// after 7,200 s idle and 9 probes 75 s apart with Linux's defaults, over two hours. Every
    /// smscast session asks for about a minute. Needs `SMSCAST_TEST_PG` over TCP (over a Unix
    /// socket, where keepalive does not apply, it says it skips).
    #[tokio::test]
    async fn sessions_give_up_on_a_vanished_client_within_a_minute() {
        let Some(url) = test_server() else {
            return;
        };
        let pool = pool_options()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect");
        let (tcp, idle, interval, count): (bool, String, String, String) = sqlx::query_as(
            "SELECT inet_client_port() IS NOT NULL, current_setting('tcp_keepalives_idle'),
                    current_setting('tcp_keepalives_interval'),
                    current_setting('tcp_keepalives_count')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        if !tcp {
            eprintln!("skipped: SMSCAST_TEST_PG is not a TCP connection (no keepalive)");
            return;
        }
        assert_eq!(
            (idle.as_str(), interval.as_str(), count.as_str()),
            ("30", "10", "3"),
            "keepalive idle, interval and count of a store connection"
        );
    }
}
