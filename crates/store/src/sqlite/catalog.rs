//! The scan side of sonoprint's own library: roots, new, changed and vanished files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::SqliteLibrary;
use crate::error::Ctx;
use crate::sql::{expect_one, now_ms, path_str, prefix_range};
use crate::{Catalog, KnownFile, Result, Scan, ScanCounts, ScannedFile, TrackId, TrackState};

impl Catalog for SqliteLibrary {
    /// Starts a scan of `roots` (absolute, canonical folders) and remembers them in `roots`.
    fn begin_scan(&mut self, roots: &[PathBuf]) -> Result<Scan> {
        let roots = roots
            .iter()
            .map(|r| path_str(r).map(str::to_string))
            .collect::<Result<Vec<_>>>()?;
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin a scan")?;
        for r in &roots {
            tx.execute(
                "INSERT INTO roots (path, added_at, last_scan_at) VALUES (?1, ?2, ?2)
                 ON CONFLICT(path) DO UPDATE SET last_scan_at = excluded.last_scan_at",
                params![r, now],
            )
            .ctx("remember a scanned root")?;
        }
        tx.execute("INSERT INTO scans (started_at) VALUES (?1)", [now])
            .ctx("record a scan")?;
        let id = tx.last_insert_rowid();
        tx.commit().ctx("commit the start of a scan")?;
        Ok(Scan { id, roots })
    }

    /// Every track under `root` (a folder), keyed by path: one query, for comparing `stat`
    /// results without opening files.
    fn known_files(&self, root: &Path) -> Result<HashMap<PathBuf, KnownFile>> {
        let (lo, hi) = prefix_range(path_str(root)?);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT filepath, id, filesize, mtime_ns, state FROM tracks
                 WHERE filepath >= ?1 AND filepath < ?2",
            )
            .ctx("list known files")?;
        let rows = stmt
            .query_map(params![lo, hi], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    TrackId(r.get(1)?),
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .ctx("list known files")?;
        let mut out = HashMap::new();
        for row in rows {
            let (path, id, size, mtime_ns, state) = row.ctx("list known files")?;
            out.insert(
                PathBuf::from(path),
                KnownFile {
                    id,
                    filesize: size.map(|s| s as u64),
                    mtime_ns,
                    state: TrackState::parse(&state)?,
                },
            );
        }
        Ok(out)
    }

    /// Adds or updates the files of one batch, in one transaction, and marks them seen by
    /// `scan`. Pass every file the scan found, unchanged ones too (with `title: None`), so that
    /// [`Store::finish_scan`] knows which ones vanished.
    fn upsert_scanned(&mut self, scan: &Scan, files: &[ScannedFile]) -> Result<ScanCounts> {
        let mut counts = ScanCounts::default();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin a scan batch")?;
        {
            let mut find = tx
                .prepare_cached(
                    "SELECT id, filesize, mtime_ns, state FROM tracks WHERE filepath = ?1",
                )
                .ctx("look up a scanned file")?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO tracks (title, filepath, filesize, mtime_ns, state, seen_scan)
                     VALUES (?1, ?2, ?3, ?4, 'present', ?5)",
                )
                .ctx("add a track")?;
            let mut change = tx
                .prepare_cached(
                    "UPDATE tracks SET title = COALESCE(?1, title), filesize = ?2, mtime_ns = ?3,
                     state = 'present', seen_scan = ?4, updated_at = CURRENT_TIMESTAMP
                     WHERE id = ?5",
                )
                .ctx("update a track")?;
            let mut seen = tx
                .prepare_cached("UPDATE tracks SET seen_scan = ?1 WHERE id = ?2")
                .ctx("mark a track seen")?;
            for f in files {
                let path = path_str(&f.path)?;
                let size = f.filesize as i64;
                let known = find
                    .query_row([path], |r| {
                        Ok((
                            TrackId(r.get(0)?),
                            r.get::<_, Option<i64>>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .optional()
                    .ctx("look up a scanned file")?;
                match known {
                    None => {
                        insert
                            .execute(params![f.title, path, size, f.mtime_ns, scan.id])
                            .ctx("add a track")?;
                        counts.added += 1;
                    }
                    Some((id, old_size, old_mtime, state)) => {
                        let state = TrackState::parse(&state)?;
                        let same = old_size == Some(size) && old_mtime == Some(f.mtime_ns);
                        if state == TrackState::Present && same {
                            expect_one(
                                seen.execute(params![scan.id, id.0]),
                                "mark a track seen",
                                id,
                            )?;
                            counts.unchanged += 1;
                        } else {
                            expect_one(
                                change.execute(params![f.title, size, f.mtime_ns, scan.id, id.0]),
                                "update a track",
                                id,
                            )?;
                            if state == TrackState::Missing {
                                counts.revived += 1;
                            } else {
                                counts.updated += 1;
                            }
                        }
                    }
                }
            }
        }
        tx.commit().ctx("commit a scan batch")?;
        Ok(counts)
    }

    /// Ends a scan: every present track under the scan's roots that the scan did not see is
    /// marked `missing` (its fingerprint and failure rows are kept), except under `not_walked`,
    /// the folders the scan could not read (an unreadable folder is not a deleted one). Returns
    /// how many tracks went missing.
    fn finish_scan(&mut self, scan: &Scan, not_walked: &[PathBuf]) -> Result<u64> {
        let skip = not_walked
            .iter()
            .map(|p| path_str(p).map(|s| prefix_range(s).0))
            .collect::<Result<Vec<_>>>()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin the end of a scan")?;
        let mut missing = 0;
        {
            let mut unseen = tx
                .prepare_cached(
                    "SELECT id, filepath FROM tracks WHERE filepath >= ?1 AND filepath < ?2
                     AND state = 'present' AND (seen_scan IS NULL OR seen_scan < ?3)",
                )
                .ctx("find vanished files")?;
            let mut mark = tx
                .prepare_cached(
                    "UPDATE tracks SET state = 'missing', updated_at = CURRENT_TIMESTAMP
                     WHERE id = ?1",
                )
                .ctx("mark a track missing")?;
            for root in &scan.roots {
                let (lo, hi) = prefix_range(root);
                let gone = unseen
                    .query_map(params![lo, hi, scan.id], |r| {
                        Ok((TrackId(r.get(0)?), r.get::<_, String>(1)?))
                    })
                    .ctx("find vanished files")?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .ctx("find vanished files")?;
                for (id, path) in gone {
                    if skip.iter().any(|s| path.starts_with(s.as_str())) {
                        continue;
                    }
                    expect_one(mark.execute([id.0]), "mark a track missing", id)?;
                    missing += 1;
                }
            }
        }
        tx.execute(
            "UPDATE scans SET finished_at = ?1 WHERE id = ?2",
            params![now_ms(), scan.id],
        )
        .ctx("record the end of a scan")?;
        tx.commit().ctx("commit the end of a scan")?;
        Ok(missing)
    }
}
