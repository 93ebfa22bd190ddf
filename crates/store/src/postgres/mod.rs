//! A library in a PostgreSQL database: one store and one work queue for many machines.
//!
//! The schema is sonoprint's SQLite schema in PostgreSQL types (`tracks` and the
//! Auralis-compatible `track_fingerprints`, `failures`, `claims`, `runs`, the similarity graph),
//! plus `runners`; its version is kept in `sonoprint_meta`, and a database of a newer version is
//! refused ([`StoreError::TooNewDatabase`]).
//!
//! # The client crate
//!
//! [`postgres`] (rust-postgres 0.19, the synchronous face of `tokio-postgres`): the store layer
//! is synchronous like rusqlite, and this is the well-kept, widely used pure-Rust client with
//! prepared statements, array parameters (the batch writes are `UNNEST`s of arrays) and real
//! transactions; it needs no libpq. No TLS is configured (`NoTls`): use it on a trusted network,
//! or a local socket, or tunnel the connection (README).
//!
//! # Claims
//!
//! A batch is claimed by one statement: a `SELECT ... FOR UPDATE OF t SKIP LOCKED` of pending
//! tracks that no live claim holds, and an upsert of their claims that takes over only expired
//! ones (`ON CONFLICT ... DO UPDATE ... WHERE claims.expires_at <= now()`, judged on the latest
//! committed row, so two claimers never both win a track). Leases are computed by the server's
//! clock (`now()`), so machines with skewed clocks agree. While a runner holds claims a
//! heartbeat thread (its own connection) renews them every third of the lease; a runner that
//! dies or loses its network stops renewing and its claims return to the pool when the lease
//! runs out. A result is written only if its claim is still the runner's, checked and dropped
//! in the write transaction itself (`DELETE ... WHERE runner = $1 ... RETURNING`), so a result
//! that arrives after its claim was taken over is not written.
//!
//! Each runner looks for work after the furthest track claimed by anyone (or by itself), since
//! tracks are handed out in id order: a claim costs the rows it hands out, not the rows already
//! done. When nothing is left there it looks once more from the start (claims that expired or
//! were released, files that changed, tracks skipped in a race).

mod schema;
mod transfer;

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use sonoprint_core::{Fingerprint, Mode, DIMENSIONS, DIMENSION_COUNT, FINGERPRINT_VERSION};

use crate::error::PgCtx;
use crate::sql::work::check_finite;
use crate::sql::{now_ms, parse_mode, path_str};
use crate::{
    hostname, pid_alive, Catalog, ClaimOptions, FailureRow, GraphCounts, GraphEdge, GraphState,
    GraphUpdate, Job, KnownFile, Library, Outcome, Page, RecordCounts, Result, RunId, RunInfo,
    RunStatus, RunSummary, RunnerId, RunnerInfo, Scan, ScanCounts, ScannedFile, Status, StoreError,
    StoredFingerprint, TrackFilter, TrackId, TrackRow, TrackState,
};

pub use schema::PG_SCHEMA_VERSION;

/// The tracks joined with their fingerprint and failure.
const FROM: &str = "tracks t LEFT JOIN track_fingerprints f ON f.track_id = t.id \
                    LEFT JOIN failures fl ON fl.track_id = t.id";
/// A current fingerprint: of this version ($1) or newer, of the file as the last scan saw it,
/// and from every sample when full mode ($2) is asked.
const CUR: &str = "COALESCE(f.track_id IS NOT NULL AND f.fingerprint_version >= $1 \
                   AND f.filesize = t.filesize AND f.mtime_ns = t.mtime_ns \
                   AND (NOT $2 OR f.mode = 'full'), false)";
/// A failure of the file as the last scan saw it.
const FAIL: &str = "COALESCE(fl.track_id IS NOT NULL AND fl.filesize = t.filesize \
                    AND fl.mtime_ns = t.mtime_ns, false)";

/// `postgres://user@host:port/db`, without the password or any other parameter: what messages,
/// logs and `status` show of a database URL.
pub fn describe_url(url: &str) -> String {
    let Ok(cfg) = postgres::Config::from_str(url) else {
        return "postgres://(an unreadable URL)".to_string();
    };
    let user = cfg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let host = match cfg.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = cfg
        .get_ports()
        .first()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let db = cfg.get_dbname().unwrap_or("");
    format!("postgres://{user}{host}{port}/{db}")
}

/// Whether `s` names a PostgreSQL database rather than a file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// Opens a connection: no TLS (see the module documentation), a connect timeout, and TCP
/// keepalives with a user timeout, so that a statement on a connection whose network went away
/// fails within about half a minute instead of waiting for the kernel's retransmissions. The
/// server side gets the same: a session of a machine cut off in the middle of a transaction
/// (holding its tracks' row locks) is ended after 20 s idle in that transaction, or when its
/// keepalives go unanswered, so its rows are free for the other machines. sonoprint's own
/// transactions last milliseconds.
fn connect(url: &str) -> Result<Client> {
    let mut cfg = postgres::Config::from_str(url).pg("read the database URL")?;
    let mut options = cfg.get_options().unwrap_or("").to_string();
    options.push_str(
        " -c idle_in_transaction_session_timeout=20000 -c tcp_keepalives_idle=10 \
         -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 -c tcp_user_timeout=30000",
    );
    cfg.options(options.trim())
        .application_name("sonoprint")
        .connect_timeout(Duration::from_secs(10))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(30));
    cfg.connect(NoTls).pg("connect to the PostgreSQL server")
}

/// The connection with its prepared statements and a count of round trips to the server.
struct Db {
    client: Client,
    stmts: HashMap<String, Statement>,
    round_trips: Arc<AtomicU64>,
}

impl Db {
    fn trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    /// The prepared statement of `sql` (prepared once per connection).
    fn stmt(&mut self, sql: &str, op: &'static str) -> Result<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        self.trip();
        let s = self.client.prepare(sql).pg(op)?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        op: &'static str,
    ) -> Result<Vec<Row>> {
        let s = self.stmt(sql, op)?;
        self.trip();
        self.client.query(&s, params).pg(op)
    }

    fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        op: &'static str,
    ) -> Result<Option<Row>> {
        let s = self.stmt(sql, op)?;
        self.trip();
        self.client.query_opt(&s, params).pg(op)
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        op: &'static str,
    ) -> Result<u64> {
        let s = self.stmt(sql, op)?;
        self.trip();
        self.client.execute(&s, params).pg(op)
    }
}

/// A transaction on a [`Db`], counting its round trips. Dropped without [`Tx::commit`], it is
/// rolled back.
struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    trips: &'a AtomicU64,
}

impl Tx<'_> {
    fn execute(
        &mut self,
        s: &Statement,
        params: &[&(dyn ToSql + Sync)],
        op: &'static str,
        tracks: &[TrackId],
    ) -> Result<u64> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.tx.execute(s, params).pg_tracks(op, tracks)
    }

    fn query(
        &mut self,
        s: &Statement,
        params: &[&(dyn ToSql + Sync)],
        op: &'static str,
    ) -> Result<Vec<Row>> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.tx.query(s, params).pg(op)
    }

    fn commit(self, op: &'static str) -> Result<()> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.tx.commit().pg(op)
    }
}

fn begin<'a>(db: &'a mut Db, op: &'static str) -> Result<Tx<'a>> {
    db.round_trips.fetch_add(1, Ordering::Relaxed);
    let trips: &'a AtomicU64 = &db.round_trips;
    let tx = db.client.transaction().pg(op)?;
    Ok(Tx { tx, trips })
}

/// Renews one runner's claims every third of the lease, on a connection of its own, until
/// stopped: the claims of a runner that is alive but slow (a long file, a busy database) do
/// not expire, those of a dead or cut-off one do.
struct Heartbeat {
    stop: Arc<AtomicBool>,
    lease_ms: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(url: String, runner: String, lease: Duration) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let lease_ms = Arc::new(AtomicU64::new(lease.as_millis().max(1) as u64));
        let (s, l) = (stop.clone(), lease_ms.clone());
        let handle = std::thread::Builder::new()
            .name("sonoprint-heartbeat".into())
            .spawn(move || heartbeat_loop(&url, &runner, &s, &l))
            .map_err(|e| tracing::error!("cannot start the heartbeat thread: {e}"))
            .ok();
        Heartbeat {
            stop,
            lease_ms,
            handle,
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!("the heartbeat thread panicked");
            }
        }
    }
}

fn heartbeat_loop(url: &str, runner: &str, stop: &AtomicBool, lease_ms: &AtomicU64) {
    let mut client: Option<Client> = None;
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        let lease = lease_ms.load(Ordering::Relaxed);
        if last.elapsed() < Duration::from_millis(lease / 3) {
            continue;
        }
        last = Instant::now();
        if client.is_none() {
            match connect(url) {
                Ok(c) => client = Some(c),
                Err(e) => {
                    tracing::warn!(runner, "heartbeat: {e}; claims are not renewed");
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let lease = lease as i64;
        let r = c
            .execute(
                "UPDATE claims SET expires_at = now() + $2::int8 * interval '1 millisecond'
                 WHERE runner = $1 AND expires_at > now()",
                &[&runner, &lease],
            )
            .and_then(|_| {
                c.execute(
                    "UPDATE runners SET last_heartbeat = now() WHERE runner = $1",
                    &[&runner],
                )
            });
        if let Err(e) = r {
            tracing::warn!(runner, "heartbeat: cannot renew claims: {e}");
            client = None;
        }
    }
}

/// A library in a PostgreSQL database.
pub struct PostgresLibrary {
    db: RefCell<Db>,
    url: String,
    shown: PathBuf,
    host: String,
    /// Per runner: the last track it claimed (where its next claim looks from).
    cursors: HashMap<String, i64>,
    heartbeats: HashMap<String, Heartbeat>,
}

impl PostgresLibrary {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`) and brings
    /// its schema up to date (creating it in an empty database). Fails with
    /// [`StoreError::TooNewDatabase`] on a database of a newer sonoprint.
    pub fn open(url: &str) -> Result<PostgresLibrary> {
        let client = connect(url)?;
        let mut db = Db {
            client,
            stmts: HashMap::new(),
            round_trips: Arc::new(AtomicU64::new(0)),
        };
        migrate(&mut db, url)?;
        Ok(PostgresLibrary {
            db: RefCell::new(db),
            url: url.to_string(),
            shown: PathBuf::from(describe_url(url)),
            host: hostname(),
            cursors: HashMap::new(),
            heartbeats: HashMap::new(),
        })
    }

    /// Statements sent to the server so far on this connection (prepares, queries, begins and
    /// commits; the heartbeat's own connection is not counted): the round trips.
    pub fn round_trips(&self) -> u64 {
        self.db
            .try_borrow()
            .map(|d| d.round_trips.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    fn db(&self) -> Result<RefMut<'_, Db>> {
        self.db
            .try_borrow_mut()
            .map_err(|_| StoreError::Invalid("the PostgreSQL connection is already in use".into()))
    }

    /// The claims of runners on this host whose process is gone are dropped, and their runs
    /// marked died.
    fn drop_dead_runners(&self, me: &str) -> Result<()> {
        let mut db = self.db()?;
        let rows = db.query(
            "SELECT DISTINCT runner, pid FROM claims WHERE host = $1 AND runner <> $2",
            &[&self.host, &me],
            "list this host's claims",
        )?;
        for r in rows {
            let runner: String = r.get(0);
            let pid: i32 = r.get(1);
            if u32::try_from(pid).is_ok_and(pid_alive) {
                continue;
            }
            let now = now_ms();
            let drop = db.stmt(
                "DELETE FROM claims WHERE runner = $1",
                "drop a dead runner's claims",
            )?;
            let died = db.stmt(
                "UPDATE runs SET status = 'died', finished_at = $2
                 WHERE runner = $1 AND status = 'running'",
                "mark a dead runner's run died",
            )?;
            let mut tx = begin(&mut db, "begin dropping a dead runner's claims")?;
            tx.execute(&drop, &[&runner], "drop a dead runner's claims", &[])?;
            tx.execute(
                &died,
                &[&runner, &now],
                "mark a dead runner's run died",
                &[],
            )?;
            tx.commit("commit dropping a dead runner's claims")?;
        }
        Ok(())
    }

    fn claim_from(
        &self,
        runner: &RunnerId,
        after: i64,
        n: usize,
        lease: Duration,
        opts: &ClaimOptions,
    ) -> Result<(usize, Vec<Job>)> {
        // Two statements in one transaction. The first picks and locks pending tracks that
        // no other claimer has locked (SKIP LOCKED). Its snapshot may predate the commit of a
        // runner that has just written one of them (and released it), so the second statement,
        // whose snapshot is taken after the locks are held, checks them again against what is
        // committed now, and claims only those still pending and unclaimed (taking over only
        // expired claims). A track is thus never handed out after its result is written.
        let pick = format!(
            "SELECT t.id FROM {FROM}
             WHERE t.state = 'present' AND NOT {CUR} AND ($4 OR NOT {FAIL})
               AND t.id > CASE WHEN $3::int8 < 0 THEN 0 ELSE
                 GREATEST($3::int8, (SELECT COALESCE(MAX(track_id), 0) FROM claims)) END
               AND NOT EXISTS (SELECT 1 FROM claims c
                               WHERE c.track_id = t.id AND c.expires_at > now())
             ORDER BY t.id LIMIT $5
             FOR UPDATE OF t SKIP LOCKED"
        );
        let put = format!(
            "WITH put AS (
               INSERT INTO claims (track_id, runner, host, pid, claimed_at, expires_at)
               SELECT t.id, $5, $6, $7, now(), now() + $8::int8 * interval '1 millisecond'
               FROM {FROM}
               WHERE t.id = ANY($3) AND t.state = 'present' AND NOT {CUR}
                 AND ($4 OR NOT {FAIL})
                 AND NOT EXISTS (SELECT 1 FROM claims c
                                 WHERE c.track_id = t.id AND c.expires_at > now())
               ON CONFLICT (track_id) DO UPDATE SET runner = excluded.runner,
                 host = excluded.host, pid = excluded.pid, claimed_at = excluded.claimed_at,
                 expires_at = excluded.expires_at
               WHERE claims.expires_at <= now()
               RETURNING track_id
             ), counted AS (
               INSERT INTO runners (runner, host, pid, claimed)
               SELECT $5, $6, $7, COUNT(*) FROM put
               ON CONFLICT (runner) DO UPDATE SET claimed = runners.claimed + excluded.claimed,
                 last_heartbeat = now()
             )
             SELECT t.id, t.filepath, t.filesize, t.mtime_ns FROM put JOIN tracks t
               ON t.id = put.track_id ORDER BY t.id"
        );
        let ver = FINGERPRINT_VERSION as i32;
        let full = opts.mode == Mode::Full;
        let limit = n as i64;
        let pid = runner.pid() as i32;
        let lease_ms = lease.as_millis().min(i64::MAX as u128) as i64;
        let mut db = self.db()?;
        let pick = db.stmt(&pick, "pick pending tracks")?;
        let put = db.stmt(&put, "claim tracks")?;
        let mut tx = begin(&mut db, "begin a claim")?;
        let picked: Vec<i64> = tx
            .query(
                &pick,
                &[&ver, &full, &after, &opts.retry_failed, &limit],
                "pick pending tracks",
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if picked.is_empty() {
            tx.commit("commit a claim")?;
            return Ok((0, Vec::new()));
        }
        let rows = tx.query(
            &put,
            &[
                &ver,
                &full,
                &picked,
                &opts.retry_failed,
                &runner.as_str(),
                &runner.host(),
                &pid,
                &lease_ms,
            ],
            "claim tracks",
        )?;
        tx.commit("commit a claim")?;
        let jobs = rows
            .iter()
            .map(|r| Job {
                track_id: TrackId(r.get(0)),
                path: PathBuf::from(r.get::<_, String>(1)),
                filesize: r.get::<_, Option<i64>>(2).unwrap_or(0) as u64,
                mtime_ns: r.get::<_, Option<i64>>(3).unwrap_or(0),
            })
            .collect();
        Ok((picked.len(), jobs))
    }

    /// Writes the results of held claims inside `tx`: fingerprints (with the tracks' decoded
    /// metadata, removing their failures) and failures, each kind in one statement.
    fn write_results(
        db: &mut Db,
        results: &[&Outcome],
        now: i64,
        runner: Option<&str>,
    ) -> Result<RecordCounts> {
        let lock = db.stmt(
            "SELECT id FROM tracks WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            "lock the tracks",
        )?;
        let held_stmt = db.stmt(
            "DELETE FROM claims WHERE runner = $1 AND track_id = ANY($2) RETURNING track_id",
            "check claims",
        )?;
        let runner_stmt = db.stmt(
            "UPDATE runners SET done = done + $2, failed = failed + $3, last_heartbeat = now()
             WHERE runner = $1",
            "count a runner's results",
        )?;
        let fp_sql = upsert_fingerprints_sql();
        let fp = db.stmt(&fp_sql, "write fingerprints")?;
        let meta = db.stmt(
            "UPDATE tracks t SET duration = u.duration, sample_rate = u.sr, channels = u.ch,
               format = u.fmt, updated_at = now()
             FROM UNNEST($1::int8[], $2::float8[], $3::int4[], $4::int4[], $5::text[])
               AS u(id, duration, sr, ch, fmt)
             WHERE t.id = u.id",
            "update tracks' metadata",
        )?;
        let unfail = db.stmt(
            "DELETE FROM failures WHERE track_id = ANY($1)",
            "delete failures",
        )?;
        let fail = db.stmt(
            "INSERT INTO failures (track_id, class, message, decoders, attempts, filesize,
               mtime_ns, first_at, last_at)
             SELECT u.id, u.class, u.message, u.decoders, 1, u.size, u.mtime, $7, $7
             FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[])
               AS u(id, class, message, decoders, size, mtime)
             ON CONFLICT (track_id) DO UPDATE SET class = excluded.class,
               message = excluded.message, decoders = excluded.decoders,
               attempts = failures.attempts + 1, filesize = excluded.filesize,
               mtime_ns = excluded.mtime_ns, last_at = excluded.last_at",
            "write failures",
        )?;
        let all: Vec<i64> = results.iter().map(|o| o.job().track_id.0).collect();
        let mut tx = begin(db, "begin writing results")?;
        // The tracks are locked first, in id order: a claimer holds the rows it picks (FOR
        // UPDATE) while it inserts their claims, and may wait there for a transaction that
        // deletes a claim it conflicts with; were that transaction to lock the track after
        // deleting the claim, each would wait for the other. Locked first, the claimer skips
        // them (SKIP LOCKED) instead.
        tx.query(&lock, &[&all], "lock the tracks")?;
        // Only the results whose claim is still this runner's are written; their claims are
        // dropped in the same transaction (a claim taken over is another runner's now).
        let held: std::collections::HashSet<TrackId> = match runner {
            Some(r) => tx
                .query(&held_stmt, &[&r, &all], "check claims")?
                .iter()
                .map(|row| TrackId(row.get(0)))
                .collect(),
            None => all.iter().map(|i| TrackId(*i)).collect(),
        };
        let mut counts = RecordCounts::default();
        let mut written = std::collections::HashSet::new();
        let mut done = DoneColumns::default();
        let mut failed = FailedColumns::default();
        for o in results {
            let id = o.job().track_id;
            if !held.contains(&id) || !written.insert(id) {
                counts.stale += 1;
                continue;
            }
            match o {
                Outcome::Done {
                    job,
                    analysis,
                    computed_ms,
                } => done.push(job, analysis, *computed_ms),
                Outcome::Failed {
                    job,
                    class,
                    message,
                    decoders,
                } => failed.push(job, class.as_str(), message, decoders),
            }
        }
        if !done.ids.is_empty() {
            let ids: Vec<TrackId> = done.ids.iter().map(|i| TrackId(*i)).collect();
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&done.ids];
            for d in &done.dims {
                params.push(d);
            }
            params.extend([
                &done.version as &(dyn ToSql + Sync),
                &done.size,
                &done.mtime,
                &done.mode,
                &done.decoder,
                &done.analyzed,
                &done.computed,
            ]);
            let n = tx.execute(&fp, &params, "write a fingerprint", &ids)?;
            if n != ids.len() as u64 {
                return Err(StoreError::Invalid(format!(
                    "writing {} fingerprints changed {n} rows",
                    ids.len()
                )));
            }
            let n = tx.execute(
                &meta,
                &[
                    &done.ids,
                    &done.duration,
                    &done.sample_rate,
                    &done.channels,
                    &done.format,
                ],
                "update a track's metadata",
                &ids,
            )?;
            if n != ids.len() as u64 {
                return Err(StoreError::Invalid(format!(
                    "updating the metadata of {} tracks changed {n} rows",
                    ids.len()
                )));
            }
            tx.execute(&unfail, &[&done.ids], "delete a failure", &ids)?;
            counts.done = ids.len() as u64;
        }
        if !failed.ids.is_empty() {
            let ids: Vec<TrackId> = failed.ids.iter().map(|i| TrackId(*i)).collect();
            let n = tx.execute(
                &fail,
                &[
                    &failed.ids,
                    &failed.class,
                    &failed.message,
                    &failed.decoders,
                    &failed.size,
                    &failed.mtime,
                    &now,
                ],
                "write a failure",
                &ids,
            )?;
            if n != ids.len() as u64 {
                return Err(StoreError::Invalid(format!(
                    "writing {} failures changed {n} rows",
                    ids.len()
                )));
            }
            counts.failed = ids.len() as u64;
        }
        if let Some(r) = runner {
            let (d, f) = (counts.done as i64, counts.failed as i64);
            tx.execute(&runner_stmt, &[&r, &d, &f], "count a runner's results", &[])?;
        }
        tx.commit("commit results")?;
        Ok(counts)
    }

    /// The runners holding live claims.
    pub fn live_runners(&self) -> Result<Vec<RunnerInfo>> {
        let rows = self.db()?.query(
            "SELECT r.runner, r.host, r.pid, COUNT(c.track_id), r.done + r.failed,
               (extract(epoch FROM r.started_at) * 1000)::int8,
               (extract(epoch FROM r.last_heartbeat) * 1000)::int8
             FROM runners r JOIN claims c ON c.runner = r.runner AND c.expires_at > now()
             GROUP BY r.runner ORDER BY r.host, r.pid, r.runner",
            &[],
            "list the runners",
        )?;
        Ok(rows
            .iter()
            .map(|r| RunnerInfo {
                runner: r.get(0),
                host: r.get(1),
                pid: r.get::<_, i32>(2) as u32,
                claimed: r.get::<_, i64>(3) as u64,
                done: Some(r.get::<_, i64>(4) as u64),
                started_at_ms: r.get(5),
                last_heartbeat_ms: r.get(6),
            })
            .collect())
    }
}

/// The columns of a batch of fingerprints, as arrays for `UNNEST`.
#[derive(Default)]
struct DoneColumns {
    ids: Vec<i64>,
    dims: [Vec<f64>; DIMENSION_COUNT],
    version: Vec<i32>,
    size: Vec<i64>,
    mtime: Vec<i64>,
    mode: Vec<String>,
    decoder: Vec<String>,
    analyzed: Vec<f64>,
    computed: Vec<i64>,
    duration: Vec<f64>,
    sample_rate: Vec<i32>,
    channels: Vec<i32>,
    format: Vec<String>,
}

impl DoneColumns {
    fn push(&mut self, job: &Job, a: &sonoprint_core::Analysis, computed_ms: u64) {
        self.ids.push(job.track_id.0);
        for (col, v) in self.dims.iter_mut().zip(a.fingerprint.to_array()) {
            col.push(v);
        }
        let m = &a.metadata;
        self.version.push(FINGERPRINT_VERSION as i32);
        self.size.push(job.filesize as i64);
        self.mtime.push(job.mtime_ns);
        self.mode.push(m.mode.as_str().to_string());
        self.decoder.push(m.decoder.clone());
        self.analyzed.push(m.analyzed_sec);
        self.computed.push(computed_ms as i64);
        self.duration.push(m.duration_sec);
        self.sample_rate.push(m.sample_rate as i32);
        self.channels.push(m.channels as i32);
        self.format.push(m.format.clone());
    }
}

#[derive(Default)]
struct FailedColumns {
    ids: Vec<i64>,
    class: Vec<String>,
    message: Vec<String>,
    decoders: Vec<String>,
    size: Vec<i64>,
    mtime: Vec<i64>,
}

impl FailedColumns {
    fn push(&mut self, job: &Job, class: &str, message: &str, decoders: &[String]) {
        self.ids.push(job.track_id.0);
        self.class.push(class.to_string());
        self.message.push(message.to_string());
        self.decoders.push(decoders.join(","));
        self.size.push(job.filesize as i64);
        self.mtime.push(job.mtime_ns);
    }
}

/// The fingerprint upsert of a batch: `UNNEST` of one array per column, never a delete and
/// insert (`ON CONFLICT (track_id) DO UPDATE`).
fn upsert_fingerprints_sql() -> String {
    let mut cols: Vec<&str> = vec!["track_id"];
    cols.extend(DIMENSIONS.iter().map(|d| d.name));
    cols.extend([
        "fingerprint_version",
        "filesize",
        "mtime_ns",
        "mode",
        "decoder",
        "analyzed_sec",
        "computed_ms",
    ]);
    let mut types = vec!["int8[]"];
    types.extend(std::iter::repeat_n("float8[]", DIMENSION_COUNT));
    types.extend([
        "int4[]", "int8[]", "int8[]", "text[]", "text[]", "float8[]", "int8[]",
    ]);
    let args: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}", i + 1))
        .collect();
    let updates: Vec<String> = cols[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO track_fingerprints ({}) SELECT * FROM UNNEST({}) \
         ON CONFLICT (track_id) DO UPDATE SET {}, updated_at = now()",
        cols.join(", "),
        args.join(", "),
        updates.join(", ")
    )
}

fn dims(prefix: &str) -> String {
    crate::sql::dimension_columns(prefix)
}

fn read_fingerprint(r: &Row, first: usize) -> Fingerprint {
    let mut values = [0.0; DIMENSION_COUNT];
    for (i, v) in values.iter_mut().enumerate() {
        *v = r.get(first + i);
    }
    Fingerprint::from_array(values)
}

/// Applies the missing migrations in one transaction, under an advisory lock so that machines
/// starting together migrate once.
fn migrate(db: &mut Db, url: &str) -> Result<()> {
    db.trip();
    let mut tx = db.client.transaction().pg("begin the schema migration")?;
    tx.execute("SELECT pg_advisory_xact_lock(7261001)", &[])
        .pg("lock the schema")?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sonoprint_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    )
    .pg("create the schema version table")?;
    let found: i64 = tx
        .query_opt(
            "SELECT value FROM sonoprint_meta WHERE key = 'schema_version'",
            &[],
        )
        .pg("read the schema version")?
        .map(|r| r.get(0))
        .unwrap_or(0);
    if found > PG_SCHEMA_VERSION {
        return Err(StoreError::TooNewDatabase {
            db: describe_url(url),
            found,
            supported: PG_SCHEMA_VERSION,
        });
    }
    if found < 0 {
        return Err(StoreError::Invalid(format!("schema version {found}")));
    }
    for sql in &schema::MIGRATIONS[found as usize..] {
        tx.batch_execute(sql).pg("migrate the schema")?;
    }
    if found < PG_SCHEMA_VERSION {
        tx.execute(
            "INSERT INTO sonoprint_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&PG_SCHEMA_VERSION],
        )
        .pg("write the schema version")?;
    }
    tx.commit().pg("commit the schema migration")
}

fn track_select() -> String {
    format!(
        "SELECT t.id, t.title, t.filepath, t.duration, t.sample_rate, t.channels, t.format, \
         t.filesize, t.mtime_ns, t.state, f.track_id IS NOT NULL, f.fingerprint_version, \
         f.mode, f.filesize, f.mtime_ns, {CUR}, {} FROM {FROM}",
        dims("f")
    )
}

fn track_row(r: &Row) -> Result<TrackRow> {
    let state = TrackState::parse(&r.get::<_, String>(9))?;
    let fingerprint = if r.get::<_, bool>(10) {
        let mode = r.get::<_, Option<String>>(12).as_deref().map(parse_mode);
        Some(StoredFingerprint {
            fingerprint: read_fingerprint(r, 16),
            version: r.get::<_, i32>(11) as u32,
            mode: mode.transpose()?,
            filesize: r.get::<_, Option<i64>>(13).map(|s| s as u64),
            mtime_ns: r.get(14),
            current: r.get(15),
        })
    } else {
        None
    };
    Ok(TrackRow {
        id: TrackId(r.get(0)),
        title: r.get(1),
        path: PathBuf::from(r.get::<_, String>(2)),
        duration: r.get(3),
        sample_rate: r.get::<_, Option<i32>>(4).map(|v| v as u32),
        channels: r.get::<_, Option<i32>>(5).map(|v| v as u32),
        format: r.get(6),
        filesize: r.get::<_, Option<i64>>(7).map(|s| s as u64),
        mtime_ns: r.get(8),
        state,
        fingerprint,
    })
}

fn ids_of(ids: &[i64]) -> Vec<TrackId> {
    ids.iter().map(|i| TrackId(*i)).collect()
}

impl Library for PostgresLibrary {
    fn location(&self) -> &Path {
        &self.shown
    }

    fn catalog(&mut self) -> Option<&mut dyn Catalog> {
        Some(self)
    }

    fn prepare_run(&mut self) -> Result<u64> {
        // `scan` keeps the files' size and mtime up to date.
        Ok(0)
    }

    fn pending(&self, opts: &ClaimOptions) -> Result<u64> {
        let sql = format!(
            "SELECT COUNT(*) FROM {FROM} WHERE t.state = 'present' AND NOT {CUR} \
             AND ($3 OR NOT {FAIL})"
        );
        let ver = FINGERPRINT_VERSION as i32;
        let full = opts.mode == Mode::Full;
        let row = self.db()?.query(
            &sql,
            &[&ver, &full, &opts.retry_failed],
            "count pending tracks",
        )?;
        Ok(row.first().map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    fn claim(
        &mut self,
        runner: &RunnerId,
        n: usize,
        lease: Duration,
        opts: &ClaimOptions,
    ) -> Result<Vec<Job>> {
        self.drop_dead_runners(runner.as_str())?;
        let after = self.cursors.get(runner.as_str()).copied().unwrap_or(0);
        let mut jobs = Vec::new();
        // After the furthest claim, then (nothing there) once from the start (-1). A pick whose
        // tracks were all claimed by others since its snapshot is tried again with a fresh one:
        // only a pick that finds nothing at all means there is no work.
        'from: for from in [after, -1] {
            for _ in 0..1000 {
                let (picked, got) = self.claim_from(runner, from, n, lease, opts)?;
                if !got.is_empty() {
                    jobs = got;
                    break 'from;
                }
                if picked == 0 {
                    continue 'from;
                }
            }
            return Err(StoreError::Invalid(
                "1000 claims in a row found their tracks taken by other runners".into(),
            ));
        }
        let last = jobs.last().map_or(0, |j| j.track_id.0);
        self.cursors.insert(runner.as_str().to_string(), last);
        if !jobs.is_empty() {
            match self.heartbeats.get(runner.as_str()) {
                Some(h) => h
                    .lease_ms
                    .store(lease.as_millis().max(1) as u64, Ordering::Relaxed),
                None => {
                    self.heartbeats.insert(
                        runner.as_str().to_string(),
                        Heartbeat::start(self.url.clone(), runner.as_str().to_string(), lease),
                    );
                }
            }
        }
        Ok(jobs)
    }

    fn renew(&mut self, runner: &RunnerId, lease: Duration) -> Result<u64> {
        if let Some(h) = self.heartbeats.get(runner.as_str()) {
            h.lease_ms
                .store(lease.as_millis().max(1) as u64, Ordering::Relaxed);
        }
        let lease_ms = lease.as_millis().min(i64::MAX as u128) as i64;
        let mut db = self.db()?;
        let n = db.execute(
            "UPDATE claims SET expires_at = now() + $2::int8 * interval '1 millisecond'
             WHERE runner = $1",
            &[&runner.as_str(), &lease_ms],
            "renew claims",
        )?;
        db.execute(
            "UPDATE runners SET last_heartbeat = now() WHERE runner = $1",
            &[&runner.as_str()],
            "record a heartbeat",
        )?;
        Ok(n)
    }

    fn release(&mut self, runner: &RunnerId) -> Result<u64> {
        // Stop renewing first, so that no heartbeat races the release.
        self.heartbeats.remove(runner.as_str());
        self.cursors.remove(runner.as_str());
        self.db()?.execute(
            "DELETE FROM claims WHERE runner = $1",
            &[&runner.as_str()],
            "release claims",
        )
    }

    fn release_tracks(&mut self, runner: &RunnerId, tracks: &[TrackId]) -> Result<u64> {
        let ids: Vec<i64> = tracks.iter().map(|t| t.0).collect();
        self.db()?.execute(
            "DELETE FROM claims WHERE runner = $1 AND track_id = ANY($2)",
            &[&runner.as_str(), &ids],
            "release claims",
        )
    }

    fn record(&mut self, runner: &RunnerId, results: &[Outcome]) -> Result<RecordCounts> {
        for o in results {
            if let Outcome::Done { job, analysis, .. } = o {
                check_finite(job, analysis)?;
            }
        }
        let all: Vec<&Outcome> = results.iter().collect();
        let mut db = self.db()?;
        Self::write_results(&mut db, &all, now_ms(), Some(runner.as_str()))
    }

    fn store_outcome(&mut self, outcome: &Outcome) -> Result<()> {
        if let Outcome::Done { job, analysis, .. } = outcome {
            check_finite(job, analysis)?;
        }
        let mut db = self.db()?;
        Self::write_results(&mut db, &[outcome], now_ms(), None).map(|_| ())
    }

    fn begin_run(&mut self, runner: &RunnerId, mode: Mode) -> Result<RunId> {
        let pid = runner.pid() as i32;
        let mut db = self.db()?;
        db.execute(
            "INSERT INTO runners (runner, host, pid) VALUES ($1, $2, $3)
             ON CONFLICT (runner) DO NOTHING",
            &[&runner.as_str(), &runner.host(), &pid],
            "record a runner",
        )?;
        let row = db.query(
            "INSERT INTO runs (started_at, host, pid, runner, mode, status)
             VALUES ($1, $2, $3, $4, $5, 'running') RETURNING id",
            &[
                &now_ms(),
                &runner.host(),
                &pid,
                &runner.as_str(),
                &mode.as_str(),
            ],
            "record the start of a run",
        )?;
        row.first()
            .map(|r| RunId(r.get(0)))
            .ok_or_else(|| StoreError::Invalid("no run id returned".into()))
    }

    fn finish_run(&mut self, run: RunId, s: &RunSummary) -> Result<()> {
        let finished = (s.status != RunStatus::Running).then(now_ms);
        let n = self.db()?.execute(
            "UPDATE runs SET finished_at = $1, completed = $2, failed = $3, skipped = $4,
             wall_sec = $5, cpu_sec = $6, status = $7 WHERE id = $8",
            &[
                &finished,
                &(s.completed as i64),
                &(s.failed as i64),
                &(s.skipped as i64),
                &s.wall_sec,
                &s.cpu_sec,
                &s.status.as_str(),
                &run.0,
            ],
            "record the end of a run",
        )?;
        if n != 1 {
            return Err(StoreError::Invalid(format!("no run {}", run.0)));
        }
        Ok(())
    }

    fn status(&self) -> Result<Status> {
        let ver = FINGERPRINT_VERSION as i32;
        let full = false;
        let (tracks, present, missing, size) = {
            let mut db = self.db()?;
            let r = db.query(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE state = 'present'),
                   COUNT(*) FILTER (WHERE state = 'missing'),
                   pg_database_size(current_database())
                 FROM tracks",
                &[],
                "count tracks",
            )?;
            let r = r
                .first()
                .ok_or_else(|| StoreError::Invalid("no count".into()))?;
            (
                r.get::<_, i64>(0) as u64,
                r.get::<_, i64>(1) as u64,
                r.get::<_, i64>(2) as u64,
                r.get::<_, i64>(3) as u64,
            )
        };
        let per_track = format!(
            "SELECT {CUR} AS cur, f.track_id IS NOT NULL AS has_fp, {FAIL} AS failed,
             fl.class AS class FROM {FROM} WHERE t.state = 'present'"
        );
        let (current, stale, pending, failed_by_class, claimed) = {
            let mut db = self.db()?;
            let r = db.query(
                &format!(
                    "SELECT COUNT(*) FILTER (WHERE cur),
                       COUNT(*) FILTER (WHERE has_fp AND NOT cur AND NOT failed),
                       COUNT(*) FILTER (WHERE NOT cur AND NOT failed) FROM ({per_track}) p"
                ),
                &[&ver, &full],
                "count fingerprints",
            )?;
            let r = r
                .first()
                .ok_or_else(|| StoreError::Invalid("no count".into()))?;
            let (c, s, p) = (
                r.get::<_, i64>(0) as u64,
                r.get::<_, i64>(1) as u64,
                r.get::<_, i64>(2) as u64,
            );
            let by_class = db
                .query(
                    &format!(
                        "SELECT class, COUNT(*) AS n FROM ({per_track}) p
                         WHERE failed AND NOT cur GROUP BY class ORDER BY n DESC, class"
                    ),
                    &[&ver, &full],
                    "count failures",
                )?
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
                .collect();
            let claimed = db.query(
                "SELECT COUNT(*) FROM claims WHERE expires_at > now()",
                &[],
                "count claims",
            )?;
            let claimed = claimed.first().map_or(0, |r| r.get::<_, i64>(0) as u64);
            (c, s, p, by_class, claimed)
        };
        Ok(Status {
            tracks,
            present,
            missing,
            fingerprinted_current: current,
            stale,
            pending,
            failed_by_class,
            claimed,
            db_path: self.shown.clone(),
            db_size_bytes: size,
            last_run: self.last_run()?,
            runners: self.live_runners()?,
            auralis: None,
        })
    }

    fn runners(&self) -> Result<Vec<RunnerInfo>> {
        self.live_runners()
    }

    fn last_run(&self) -> Result<Option<RunInfo>> {
        let row = self.db()?.query_opt(
            "SELECT id, started_at, finished_at, host, pid, mode, completed, failed, skipped,
             wall_sec, cpu_sec, status FROM runs ORDER BY id DESC LIMIT 1",
            &[],
            "read the last run",
        )?;
        let Some(r) = row else { return Ok(None) };
        let status: String = r.get(11);
        let mut status = RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Invalid(format!("run status {status:?}")))?;
        let host: String = r.get(3);
        let pid = r.get::<_, i32>(4);
        let pid = u32::try_from(pid).map_err(|_| StoreError::Invalid(format!("pid {pid}")))?;
        if status == RunStatus::Running && host == self.host && !pid_alive(pid) {
            status = RunStatus::Died;
        }
        Ok(Some(RunInfo {
            id: RunId(r.get(0)),
            started_at_ms: r.get(1),
            finished_at_ms: r.get(2),
            host,
            pid,
            mode: parse_mode(&r.get::<_, String>(5))?,
            summary: RunSummary {
                completed: r.get::<_, i64>(6) as u64,
                failed: r.get::<_, i64>(7) as u64,
                skipped: r.get::<_, i64>(8) as u64,
                wall_sec: r.get::<_, Option<f64>>(9).unwrap_or(0.0),
                cpu_sec: r.get::<_, Option<f64>>(10).unwrap_or(0.0),
                status,
            },
        }))
    }

    fn failures(&self, class: Option<&str>) -> Result<Vec<FailureRow>> {
        let sql = format!(
            "SELECT t.id, t.filepath, fl.class, fl.message, fl.decoders, fl.attempts,
             fl.first_at, fl.last_at FROM {FROM}
             WHERE fl.track_id IS NOT NULL AND t.state = 'present' AND {FAIL} AND NOT {CUR}
               AND ($3::text IS NULL OR fl.class = $3)
             ORDER BY fl.class, t.filepath"
        );
        let ver = FINGERPRINT_VERSION as i32;
        let rows = self
            .db()?
            .query(&sql, &[&ver, &false, &class], "list failures")?;
        Ok(rows
            .iter()
            .map(|r| FailureRow {
                track_id: TrackId(r.get(0)),
                path: PathBuf::from(r.get::<_, String>(1)),
                class: r.get(2),
                message: r.get(3),
                decoders: r
                    .get::<_, String>(4)
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect(),
                attempts: r.get::<_, i64>(5) as u64,
                first_at_ms: r.get(6),
                last_at_ms: r.get(7),
            })
            .collect())
    }

    fn track(&self, id: TrackId) -> Result<Option<TrackRow>> {
        let sql = format!("{} WHERE t.id = $3", track_select());
        let ver = FINGERPRINT_VERSION as i32;
        let row = self
            .db()?
            .query_opt(&sql, &[&ver, &false, &id.0], "read a track")?;
        row.as_ref().map(track_row).transpose()
    }

    fn tracks(&self, page: Page, filter: TrackFilter) -> Result<Vec<TrackRow>> {
        let sql = format!(
            "{} WHERE t.id > $3 AND ($4::text IS NULL OR t.state = $4)
             AND ($5::bool IS NULL OR {CUR} = $5) ORDER BY t.id LIMIT $6",
            track_select()
        );
        let ver = FINGERPRINT_VERSION as i32;
        let after = page.after.map_or(i64::MIN, |t| t.0);
        let state = filter.state.map(TrackState::as_str);
        let limit = page.limit as i64;
        let rows = self.db()?.query(
            &sql,
            &[&ver, &false, &after, &state, &filter.fingerprinted, &limit],
            "list tracks",
        )?;
        rows.iter().map(track_row).collect()
    }

    fn track_id_by_path(&self, path: &Path) -> Result<Option<TrackId>> {
        let p = path_str(path)?;
        let row = self.db()?.query_opt(
            "SELECT id FROM tracks WHERE filepath = $1",
            &[&p],
            "look up a track by path",
        )?;
        Ok(row.map(|r| TrackId(r.get(0))))
    }

    fn roots(&self) -> Result<Vec<PathBuf>> {
        let rows = self.db()?.query(
            "SELECT path FROM roots ORDER BY path",
            &[],
            "list the roots",
        )?;
        Ok(rows
            .iter()
            .map(|r| PathBuf::from(r.get::<_, String>(0)))
            .collect())
    }

    fn fingerprints(&self) -> Result<Vec<(TrackId, Fingerprint)>> {
        let sql = format!(
            "SELECT t.id, {} FROM {FROM} WHERE t.state = 'present' AND {CUR} ORDER BY t.id",
            dims("f")
        );
        let ver = FINGERPRINT_VERSION as i32;
        let rows = self
            .db()?
            .query(&sql, &[&ver, &false], "read the current fingerprints")?;
        Ok(rows
            .iter()
            .map(|r| (TrackId(r.get(0)), read_fingerprint(r, 1)))
            .collect())
    }

    fn graph_state(&self) -> Result<Option<GraphState>> {
        let row = self.db()?.query_opt(
            "SELECT model, model_id, k, fitted_on, built_at FROM similarity_model WHERE id = 1",
            &[],
            "read the similarity model",
        )?;
        Ok(row.map(|r| GraphState {
            model: r.get(0),
            model_id: r.get(1),
            k: r.get::<_, i32>(2) as u32,
            fitted_on: r.get::<_, i64>(3) as u64,
            built_at_ms: r.get(4),
        }))
    }

    fn graph_nodes(&self) -> Result<Vec<(TrackId, i64)>> {
        let rows = self.db()?.query(
            "SELECT track_id, digest FROM similarity_nodes ORDER BY track_id",
            &[],
            "read the graph's tracks",
        )?;
        Ok(rows.iter().map(|r| (TrackId(r.get(0)), r.get(1))).collect())
    }

    fn graph_edges(&self, of: Option<TrackId>) -> Result<Vec<GraphEdge>> {
        let of = of.map(|t| t.0);
        let rows = self.db()?.query(
            "SELECT track_id, similar_track_id, distance, similarity_score, rank
             FROM similarity_graph WHERE ($1::int8 IS NULL OR track_id = $1)
             ORDER BY track_id, rank",
            &[&of],
            "read the similarity graph",
        )?;
        Ok(rows
            .iter()
            .map(|r| GraphEdge {
                track_id: TrackId(r.get(0)),
                similar_track_id: TrackId(r.get(1)),
                distance: r.get(2),
                similarity_score: r.get(3),
                rank: r.get::<_, i32>(4) as u32,
            })
            .collect())
    }

    fn write_graph(&mut self, u: &GraphUpdate<'_>) -> Result<GraphCounts> {
        crate::sql::graph::check_update(u)?;
        let mut db = self.db()?;
        let clear = db.stmt("DELETE FROM similarity_graph", "clear the similarity graph")?;
        let clear_nodes = db.stmt("DELETE FROM similarity_nodes", "clear the graph's tracks")?;
        let del_of = db.stmt(
            "DELETE FROM similarity_graph WHERE track_id = ANY($1)",
            "delete tracks' graph rows",
        )?;
        let del_removed = db.stmt(
            "DELETE FROM similarity_graph WHERE track_id = ANY($1) OR similar_track_id = ANY($1)",
            "delete the graph rows of tracks without a fingerprint",
        )?;
        let del_nodes = db.stmt(
            "DELETE FROM similarity_nodes WHERE track_id = ANY($1)",
            "delete graph tracks",
        )?;
        let put = db.stmt(
            "INSERT INTO similarity_graph
               (track_id, similar_track_id, distance, similarity_score, rank)
             SELECT u.a, u.b, u.d, u.s, u.r
             FROM UNNEST($1::int8[], $2::int8[], $3::float8[], $4::float8[], $5::int4[])
               AS u(a, b, d, s, r)
             WHERE EXISTS (SELECT 1 FROM tracks WHERE id = u.a)
               AND EXISTS (SELECT 1 FROM tracks WHERE id = u.b)",
            "write graph rows",
        )?;
        let node = db.stmt(
            "INSERT INTO similarity_nodes (track_id, digest)
             SELECT * FROM UNNEST($1::int8[], $2::int8[])
             ON CONFLICT (track_id) DO UPDATE SET digest = excluded.digest",
            "record graph tracks",
        )?;
        let model = db.stmt(
            "INSERT INTO similarity_model (id, model, model_id, k, fitted_on, built_at)
             VALUES (1, $1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET model = excluded.model, model_id = excluded.model_id,
               k = excluded.k, fitted_on = excluded.fitted_on, built_at = excluded.built_at",
            "record the similarity model",
        )?;
        let mut counts = GraphCounts::default();
        let mut tx = begin(&mut db, "begin writing the similarity graph")?;
        if u.rebuild {
            counts.rows_deleted += tx.execute(&clear, &[], "clear the similarity graph", &[])?;
            tx.execute(&clear_nodes, &[], "clear the graph's tracks", &[])?;
        } else if !u.rows_of.is_empty() {
            let of: Vec<i64> = u.rows_of.iter().map(|t| t.0).collect();
            counts.rows_deleted +=
                tx.execute(&del_of, &[&of], "delete tracks' graph rows", u.rows_of)?;
        }
        if !u.removed.is_empty() {
            let gone: Vec<i64> = u.removed.iter().map(|t| t.0).collect();
            counts.rows_deleted += tx.execute(
                &del_removed,
                &[&gone],
                "delete the graph rows of tracks without a fingerprint",
                u.removed,
            )?;
            tx.execute(&del_nodes, &[&gone], "delete graph tracks", u.removed)?;
        }
        if !u.edges.is_empty() {
            let a: Vec<i64> = u.edges.iter().map(|e| e.track_id.0).collect();
            let b: Vec<i64> = u.edges.iter().map(|e| e.similar_track_id.0).collect();
            let d: Vec<f64> = u.edges.iter().map(|e| e.distance).collect();
            let s: Vec<f64> = u.edges.iter().map(|e| e.similarity_score).collect();
            let r: Vec<i32> = u.edges.iter().map(|e| e.rank as i32).collect();
            let n = tx.execute(&put, &[&a, &b, &d, &s, &r], "write graph rows", &[])?;
            counts.rows_written = n;
            counts.rows_skipped = u.edges.len() as u64 - n;
        }
        if !u.nodes.is_empty() {
            let ids: Vec<i64> = u.nodes.iter().map(|n| n.0 .0).collect();
            let digests: Vec<i64> = u.nodes.iter().map(|n| n.1).collect();
            tx.execute(&node, &[&ids, &digests], "record graph tracks", &[])?;
        }
        let s = u.state;
        let k = s.k as i32;
        let fitted = s.fitted_on as i64;
        tx.execute(
            &model,
            &[&s.model, &s.model_id, &k, &fitted, &s.built_at_ms],
            "record the similarity model",
            &[],
        )?;
        tx.commit("commit the similarity graph")?;
        Ok(counts)
    }
}

impl Drop for PostgresLibrary {
    fn drop(&mut self) {
        // Stop the heartbeats before the connection goes: claims left behind expire.
        self.heartbeats.clear();
    }
}

impl Catalog for PostgresLibrary {
    fn begin_scan(&mut self, roots: &[PathBuf]) -> Result<Scan> {
        let roots = roots
            .iter()
            .map(|r| path_str(r).map(str::to_string))
            .collect::<Result<Vec<_>>>()?;
        let now = now_ms();
        let mut db = self.db()?;
        let root = db.stmt(
            "INSERT INTO roots (path, added_at, last_scan_at)
             SELECT p, $2, $2 FROM UNNEST($1::text[]) AS p
             ON CONFLICT (path) DO UPDATE SET last_scan_at = excluded.last_scan_at",
            "remember scanned roots",
        )?;
        let scan = db.stmt(
            "INSERT INTO scans (started_at) VALUES ($1) RETURNING id",
            "record a scan",
        )?;
        let mut tx = begin(&mut db, "begin a scan")?;
        tx.execute(&root, &[&roots, &now], "remember scanned roots", &[])?;
        let id: i64 = tx
            .query(&scan, &[&now], "record a scan")?
            .first()
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Invalid("no scan id returned".into()))?;
        tx.commit("commit the start of a scan")?;
        Ok(Scan { id, roots })
    }

    fn known_files(&self, root: &Path) -> Result<HashMap<PathBuf, KnownFile>> {
        let prefix = format!("{}/", path_str(root)?.trim_end_matches('/'));
        let rows = self.db()?.query(
            "SELECT filepath, id, filesize, mtime_ns, state FROM tracks
             WHERE starts_with(filepath, $1)",
            &[&prefix],
            "list known files",
        )?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(
                PathBuf::from(r.get::<_, String>(0)),
                KnownFile {
                    id: TrackId(r.get(1)),
                    filesize: r.get::<_, Option<i64>>(2).map(|s| s as u64),
                    mtime_ns: r.get(3),
                    state: TrackState::parse(&r.get::<_, String>(4))?,
                },
            );
        }
        Ok(out)
    }

    fn upsert_scanned(&mut self, scan: &Scan, files: &[ScannedFile]) -> Result<ScanCounts> {
        let mut counts = ScanCounts::default();
        let mut paths = Vec::with_capacity(files.len());
        for f in files {
            paths.push(path_str(&f.path)?.to_string());
        }
        let mut db = self.db()?;
        let find = db.stmt(
            "SELECT filepath, id, filesize, mtime_ns, state FROM tracks
             WHERE filepath = ANY($1) FOR UPDATE",
            "look up scanned files",
        )?;
        let insert = db.stmt(
            "INSERT INTO tracks (title, filepath, filesize, mtime_ns, state, seen_scan)
             SELECT u.title, u.path, u.size, u.mtime, 'present', $5
             FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[])
               AS u(title, path, size, mtime)",
            "add tracks",
        )?;
        let change = db.stmt(
            "UPDATE tracks t SET title = COALESCE(u.title, t.title), filesize = u.size,
               mtime_ns = u.mtime, state = 'present', seen_scan = $5, updated_at = now()
             FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::int8[])
               AS u(id, title, size, mtime)
             WHERE t.id = u.id",
            "update tracks",
        )?;
        let seen = db.stmt(
            "UPDATE tracks SET seen_scan = $2 WHERE id = ANY($1)",
            "mark tracks seen",
        )?;
        let mut tx = begin(&mut db, "begin a scan batch")?;
        let known: HashMap<String, (i64, Option<i64>, Option<i64>, String)> = tx
            .query(&find, &[&paths], "look up scanned files")?
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
            .collect();
        let (mut new_t, mut new_p, mut new_s, mut new_m) = (vec![], vec![], vec![], vec![]);
        let (mut ch_id, mut ch_t, mut ch_s, mut ch_m) = (vec![], vec![], vec![], vec![]);
        let mut unchanged = vec![];
        let mut added = std::collections::HashSet::new();
        for (f, path) in files.iter().zip(&paths) {
            let size = f.filesize as i64;
            match known.get(path) {
                None => {
                    if added.insert(path.clone()) {
                        new_t.push(f.title.clone());
                        new_p.push(path.clone());
                        new_s.push(size);
                        new_m.push(f.mtime_ns);
                        counts.added += 1;
                    }
                }
                Some((id, old_size, old_mtime, state)) => {
                    let state = TrackState::parse(state)?;
                    let same = *old_size == Some(size) && *old_mtime == Some(f.mtime_ns);
                    if state == TrackState::Present && same {
                        unchanged.push(*id);
                        counts.unchanged += 1;
                    } else {
                        ch_id.push(*id);
                        ch_t.push(f.title.clone());
                        ch_s.push(size);
                        ch_m.push(f.mtime_ns);
                        if state == TrackState::Missing {
                            counts.revived += 1;
                        } else {
                            counts.updated += 1;
                        }
                    }
                }
            }
        }
        if !new_p.is_empty() {
            let n = tx.execute(
                &insert,
                &[&new_t, &new_p, &new_s, &new_m, &scan.id],
                "add tracks",
                &[],
            )?;
            if n != new_p.len() as u64 {
                return Err(StoreError::Invalid(format!(
                    "adding {} tracks added {n}",
                    new_p.len()
                )));
            }
        }
        if !ch_id.is_empty() {
            let n = tx.execute(
                &change,
                &[&ch_id, &ch_t, &ch_s, &ch_m, &scan.id],
                "update tracks",
                &ids_of(&ch_id),
            )?;
            if n != ch_id.len() as u64 {
                return Err(StoreError::Invalid(format!(
                    "updating {} tracks changed {n}",
                    ch_id.len()
                )));
            }
        }
        if !unchanged.is_empty() {
            tx.execute(
                &seen,
                &[&unchanged, &scan.id],
                "mark tracks seen",
                &ids_of(&unchanged),
            )?;
        }
        tx.commit("commit a scan batch")?;
        Ok(counts)
    }

    fn finish_scan(&mut self, scan: &Scan, not_walked: &[PathBuf]) -> Result<u64> {
        let skip = not_walked
            .iter()
            .map(|p| path_str(p).map(|s| format!("{}/", s.trim_end_matches('/'))))
            .collect::<Result<Vec<_>>>()?;
        let roots: Vec<String> = scan
            .roots
            .iter()
            .map(|r| format!("{}/", r.trim_end_matches('/')))
            .collect();
        let mut db = self.db()?;
        let mark = db.stmt(
            "UPDATE tracks t SET state = 'missing', updated_at = now()
             WHERE t.state = 'present' AND (t.seen_scan IS NULL OR t.seen_scan < $2)
               AND EXISTS (SELECT 1 FROM UNNEST($1::text[]) r WHERE starts_with(t.filepath, r))
               AND NOT EXISTS (SELECT 1 FROM UNNEST($3::text[]) s
                               WHERE starts_with(t.filepath, s))",
            "mark vanished tracks missing",
        )?;
        let done = db.stmt(
            "UPDATE scans SET finished_at = $1 WHERE id = $2",
            "record the end of a scan",
        )?;
        let mut tx = begin(&mut db, "begin the end of a scan")?;
        let missing = tx.execute(
            &mark,
            &[&roots, &scan.id, &skip],
            "mark vanished tracks missing",
            &[],
        )?;
        tx.execute(
            &done,
            &[&now_ms(), &scan.id],
            "record the end of a scan",
            &[],
        )?;
        tx.commit("commit the end of a scan")?;
        Ok(missing)
    }
}

#[cfg(test)]
pub(crate) mod tests;
