//! Three machines, one PostgreSQL library: three `sonoprint run`s, each in a network namespace
//! of its own (a veth pair to the host, the server reached at the host end's 10.231.N.1) and a
//! UTS namespace with its own host name, each with its own `--path-map` to the same music. One
//! is killed with SIGKILL, another loses its network mid-run (`ip link set ... down`); their
//! leases (`--lease 3`) run out and the third machine finishes their tracks. At the end every
//! track has exactly one result, written once, and no claim is left.
//!
//! Needs root (namespaces, links) and `ip`/`unshare`, which CI has; the server is
//! `SONOPRINT_TEST_POSTGRES` as `scripts/with-postgres.sh` starts it (listening on every address,
//! and letting 10.231.0.0/16 in). The namespaces and links are deleted at the end, whatever way
//! the test ends.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test with its place

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{pg, pg_count, pg_database};

const TRACKS: usize = 240;
const LEASE_SECS: u64 = 3;

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces and links of one test; deleted when dropped.
struct Net {
    names: Vec<String>,
    host_links: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for l in &self.host_links {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// One machine: namespace `ns`, reaching the server at `10.231.i.1`.
fn machine(net: &mut Net, i: usize) -> String {
    let tag = std::process::id() % 100_000;
    let ns = format!("sono{tag}m{i}");
    let (host, peer) = (format!("sph{tag}{i}"), format!("spn{tag}{i}"));
    sh(&["ip", "netns", "add", &ns]);
    net.names.push(ns.clone());
    sh(&[
        "ip", "link", "add", &host, "type", "veth", "peer", "name", &peer,
    ]);
    net.host_links.push(host.clone());
    sh(&["ip", "link", "set", &peer, "netns", &ns]);
    sh(&[
        "ip",
        "addr",
        "add",
        &format!("10.231.{i}.1/24"),
        "dev",
        &host,
    ]);
    sh(&["ip", "link", "set", &host, "up"]);
    let inside = |args: &[&str]| {
        let mut all = vec!["ip", "netns", "exec", &ns];
        all.extend_from_slice(args);
        sh(&all);
    };
    inside(&[
        "ip",
        "addr",
        "add",
        &format!("10.231.{i}.2/24"),
        "dev",
        &peer,
    ]);
    inside(&["ip", "link", "set", &peer, "up"]);
    inside(&["ip", "link", "set", "lo", "up"]);
    host
}

/// `sonoprint --db URL --path-map MAP run ...` inside namespace `ns` with host name `name`.
fn runner(ns: &str, name: &str, url: &str, map: &str, data: &Path, log: &Path) -> Child {
    let exe = env!("CARGO_BIN_EXE_sonoprint");
    let script = format!(
        "hostname {name} && exec {exe} --data-dir {} --db '{url}' --path-map '{map}' \
         run --jobs 1 --lease {LEASE_SECS}",
        data.display()
    );
    Command::new("ip")
        .args(["netns", "exec", ns, "unshare", "--uts", "sh", "-c", &script])
        .env_remove("SONOPRINT_DATABASE_URL")
        .env_remove("SONOPRINT_HOME")
        .stdout(fs::File::create(log).unwrap())
        .stderr(fs::File::create(log.with_extension("err")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_machines_one_killed_one_cut_off_every_track_once() {
    assert!(
        unsafe_geteuid_is_root(),
        "the three-machine test needs root (network namespaces); CI runs as root"
    );
    let url = pg_database("machines");
    let port = url
        .rsplit_once('@')
        .and_then(|(_, hp)| hp.split('/').next())
        .and_then(|hp| hp.rsplit_once(':'))
        .map(|(_, p)| p.to_string())
        .unwrap();
    let db = url.rsplit('/').next().unwrap().to_string();
    let user = url
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .map(|(u, _)| u.to_string())
        .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let music = root.join("music");
    fs::create_dir_all(&music).unwrap();
    for i in 0..TRACKS {
        common::wav(
            &music.join(format!("t{i:03}.wav")),
            2.0,
            100.0 + 7.0 * i as f64,
        );
    }
    // The canonical folder exists on no machine; each machine mounts the music elsewhere
    // (here: a symbolic link of its own to the same folder).
    let canon = "/srv/sonoprint-shared-music";
    let locals: Vec<PathBuf> = (0..3).map(|i| root.join(format!("mnt{i}"))).collect();
    for l in &locals {
        std::os::unix::fs::symlink(&music, l).unwrap();
    }
    let host_url = url.clone();
    let scan = common::command(
        &root.join("scan"),
        &[
            "--db",
            &host_url,
            "--path-map",
            &format!("{canon}={}", music.display()),
            "scan",
            music.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(common::ok(scan).contains(&format!("added {TRACKS},")));
    pg(&url)
        .batch_execute(
            "CREATE TABLE test_fp_writes (track_id BIGINT NOT NULL, op TEXT NOT NULL);
             CREATE FUNCTION test_fp_log() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO test_fp_writes VALUES (NEW.track_id, lower(TG_OP)); RETURN NEW; END $$;
             CREATE TRIGGER test_fp_log AFTER INSERT OR UPDATE ON track_fingerprints
               FOR EACH ROW EXECUTE FUNCTION test_fp_log();",
        )
        .unwrap();

    let mut net = Net {
        names: vec![],
        host_links: vec![],
        children: vec![],
    };
    let links: Vec<String> = (0..3).map(|i| machine(&mut net, i)).collect();
    let names = ["machine-a", "machine-b", "machine-c"];
    let start = |net: &mut Net, i: usize, round: &str| {
        let u = format!("postgres://{user}@10.231.{i}.1:{port}/{db}");
        let map = format!("{canon}={}", locals[i].display());
        let data = root.join(format!("data{i}"));
        let log = root.join(format!("run-{i}-{round}.log"));
        net.children.push(runner(
            &net.names[i].clone(),
            names[i],
            &u,
            &map,
            &data,
            &log,
        ));
    };
    for i in 0..3 {
        start(&mut net, i, "1");
    }
    let done = || pg_count(&url, "SELECT COUNT(*) FROM track_fingerprints");
    // Every machine works: each holds claims.
    wait_for(
        "three machines holding claims",
        Duration::from_secs(60),
        || pg_count(&url, "SELECT COUNT(DISTINCT host) FROM claims") == 3,
    );
    wait_for("30 results", Duration::from_secs(120), || done() >= 30);
    // Machine A dies.
    net.children[0].kill().unwrap();
    net.children[0].wait().unwrap();
    let a_claims = pg_count(&url, "SELECT COUNT(*) FROM claims WHERE host = 'machine-a'");
    let at_kill = done();
    wait_for("30 more results", Duration::from_secs(120), || {
        done() >= at_kill + 30
    });
    // Machine B loses its network.
    sh(&["ip", "link", "set", &links[1], "down"]);
    let b_claims = pg_count(&url, "SELECT COUNT(*) FROM claims WHERE host = 'machine-b'");
    eprintln!("killed A holding {a_claims} claims; cut B off holding {b_claims}");
    assert!(a_claims > 0 && b_claims > 0, "A {a_claims}, B {b_claims}");
    // Machine C carries on; its run ends when nothing is claimable (A's and B's tracks still
    // leased, or already taken over).
    let c = net.children.len() - 1;
    let t0 = Instant::now();
    while net.children[c].try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "machine C did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Past the leases, C runs again and takes over whatever A and B still held (often C's
    // first run already has: the leases are short). A track whose write B had begun when its
    // network went is locked until the server ends B's session (20 s idle in transaction):
    // C runs until nothing is left, at most a minute.
    let t0 = Instant::now();
    let mut round = 2;
    let mut c_out = String::new();
    while done() < TRACKS as i64 {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "machine C cannot finish: {c_out}"
        );
        std::thread::sleep(Duration::from_secs(LEASE_SECS + 1));
        start(&mut net, 2, &round.to_string());
        let c2 = net.children.len() - 1;
        let t1 = Instant::now();
        while net.children[c2].try_wait().unwrap().is_none() {
            assert!(
                t1.elapsed() < Duration::from_secs(300),
                "machine C's run did not finish"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c_out = fs::read_to_string(root.join(format!("run-2-{round}.log"))).unwrap();
        assert!(
            c_out.contains("Run finished") || c_out.contains("Nothing to do"),
            "{c_out}"
        );
        round += 1;
    }
    eprintln!("machine C ran {} more times after its first run", round - 2);
    assert_eq!(done(), TRACKS as i64, "C's runs left work: {c_out}");
    // B's network comes back: whatever it still sends for its old claims is stale, never
    // written. Give it its 30 s TCP timeout to fail or finish, then stop it.
    sh(&["ip", "link", "set", &links[1], "up"]);
    let t0 = Instant::now();
    while net.children[1].try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(45) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let b_err = fs::read_to_string(root.join("run-1-1.err")).unwrap_or_default();
    eprintln!("machine B's stderr: {}", b_err.lines().last().unwrap_or(""));

    // Every track: one fingerprint, inserted once, never rewritten; no claim left.
    let rows = pg(&url)
        .query(
            "SELECT t.id,
               (SELECT COUNT(*) FROM track_fingerprints f WHERE f.track_id = t.id),
               (SELECT COUNT(*) FROM test_fp_writes w WHERE w.track_id = t.id AND w.op = 'insert'),
               (SELECT COUNT(*) FROM test_fp_writes w WHERE w.track_id = t.id AND w.op = 'update')
             FROM tracks t",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), TRACKS);
    for r in &rows {
        let (id, n, ins, upd): (i64, i64, i64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        assert_eq!(
            (n, ins, upd),
            (1, 1, 0),
            "track {id}: (rows, inserts, updates)"
        );
    }
    assert_eq!(pg_count(&url, "SELECT COUNT(*) FROM failures"), 0);
    assert_eq!(
        pg_count(&url, "SELECT COUNT(*) FROM claims WHERE expires_at > now()"),
        0
    );
    // Every machine's runner did some of the work.
    let by_host: Vec<(String, i64)> = pg(&url)
        .query(
            "SELECT host, SUM(done)::int8 FROM runners GROUP BY host ORDER BY host",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    eprintln!("results by host: {by_host:?}");
    assert_eq!(by_host.len(), 3, "{by_host:?}");
    assert_eq!(
        by_host.iter().map(|h| h.1).sum::<i64>(),
        TRACKS as i64,
        "{by_host:?}"
    );
    drop(net);
}

fn unsafe_geteuid_is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\t..."
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
