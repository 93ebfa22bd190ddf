//! [`Transfer`] for sonoprint's own SQLite file.

use rusqlite::{params, TransactionBehavior};

use super::SqliteLibrary;
use crate::error::Ctx;
use crate::sql::{dimension_columns, now_ms, query_vec, read_fingerprint};
use crate::{
    Export, FailureRecord, FingerprintRecord, Result, StoreError, TrackId, TrackRecord, TrackState,
    Transfer,
};

impl Transfer for SqliteLibrary {
    fn export(&self) -> Result<Export> {
        let c = &self.conn;
        let roots = query_vec(
            c,
            "SELECT path FROM roots ORDER BY path",
            [],
            "read the roots",
            |r| r.get::<_, String>(0),
        )?;
        let tracks = query_vec(
            c,
            "SELECT id, title, filepath, duration, sample_rate, channels, format, filesize,
                 mtime_ns, state FROM tracks ORDER BY id",
            [],
            "read the tracks",
            |r| {
                Ok((
                    TrackRecord {
                        id: TrackId(r.get(0)?),
                        title: r.get(1)?,
                        filepath: r.get(2)?,
                        duration: r.get(3)?,
                        sample_rate: r.get(4)?,
                        channels: r.get(5)?,
                        format: r.get(6)?,
                        filesize: r.get(7)?,
                        mtime_ns: r.get(8)?,
                        state: TrackState::Present,
                    },
                    r.get::<_, String>(9)?,
                ))
            },
        )?
        .into_iter()
        .map(|(mut t, state)| {
            t.state = TrackState::parse(&state)?;
            Ok(t)
        })
        .collect::<Result<Vec<_>>>()?;
        let fingerprints = query_vec(
            c,
            &format!(
                "SELECT f.track_id, f.fingerprint_version, f.filesize, f.mtime_ns, f.mode,
                 f.decoder, f.analyzed_sec, f.computed_ms, {} FROM track_fingerprints f
                 ORDER BY f.track_id",
                dimension_columns("f")
            ),
            [],
            "read the fingerprints",
            |r| {
                Ok(FingerprintRecord {
                    track_id: TrackId(r.get(0)?),
                    version: r.get(1)?,
                    filesize: r.get(2)?,
                    mtime_ns: r.get(3)?,
                    mode: r.get(4)?,
                    decoder: r.get(5)?,
                    analyzed_sec: r.get(6)?,
                    computed_ms: r.get(7)?,
                    fingerprint: read_fingerprint(r, 8)?,
                })
            },
        )?;
        let failures = query_vec(
            c,
            "SELECT track_id, class, message, decoders, attempts, filesize, mtime_ns,
                 first_at, last_at FROM failures ORDER BY track_id",
            [],
            "read the failures",
            |r| {
                Ok(FailureRecord {
                    track_id: TrackId(r.get(0)?),
                    class: r.get(1)?,
                    message: r.get(2)?,
                    decoders: r.get(3)?,
                    attempts: r.get(4)?,
                    filesize: r.get(5)?,
                    mtime_ns: r.get(6)?,
                    first_at: r.get(7)?,
                    last_at: r.get(8)?,
                })
            },
        )?;
        Ok(Export {
            roots,
            tracks,
            fingerprints,
            failures,
        })
    }

    fn import(&mut self, e: &Export) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin the copy")?;
        let existing: i64 = tx
            .query_row("SELECT COUNT(*) FROM tracks", [], |r| r.get(0))
            .ctx("count the tracks")?;
        if existing > 0 {
            return Err(StoreError::Invalid(format!(
                "the destination already holds {existing} tracks: copy into an empty library"
            )));
        }
        let now = now_ms();
        {
            let mut root = tx
                .prepare("INSERT INTO roots (path, added_at) VALUES (?1, ?2)")
                .ctx("copy a root")?;
            for r in &e.roots {
                root.execute(params![r, now]).ctx("copy a root")?;
            }
            let mut track = tx
                .prepare(
                    "INSERT INTO tracks (id, title, filepath, duration, sample_rate, channels,
                     format, filesize, mtime_ns, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .ctx("copy a track")?;
            for t in &e.tracks {
                track
                    .execute(params![
                        t.id.0,
                        t.title,
                        t.filepath,
                        t.duration,
                        t.sample_rate,
                        t.channels,
                        t.format,
                        t.filesize,
                        t.mtime_ns,
                        t.state.as_str()
                    ])
                    .ctx_track("copy a track", t.id)?;
            }
            let cols: Vec<&str> = sonoprint_core::DIMENSIONS.iter().map(|d| d.name).collect();
            let marks: Vec<String> = (9..9 + cols.len()).map(|i| format!("?{i}")).collect();
            let mut fp = tx
                .prepare(&format!(
                    "INSERT INTO track_fingerprints (track_id, fingerprint_version, filesize,
                     mtime_ns, mode, decoder, analyzed_sec, computed_ms, {})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, {})",
                    cols.join(", "),
                    marks.join(", ")
                ))
                .ctx("copy a fingerprint")?;
            for f in &e.fingerprints {
                let mut values: Vec<rusqlite::types::Value> = vec![
                    f.track_id.0.into(),
                    f.version.into(),
                    f.filesize.into(),
                    f.mtime_ns.into(),
                    f.mode.clone().into(),
                    f.decoder.clone().into(),
                    f.analyzed_sec.into(),
                    f.computed_ms.into(),
                ];
                values.extend(f.fingerprint.to_array().map(rusqlite::types::Value::Real));
                fp.execute(rusqlite::params_from_iter(values))
                    .ctx_track("copy a fingerprint", f.track_id)?;
            }
            let mut fail = tx
                .prepare(
                    "INSERT INTO failures (track_id, class, message, decoders, attempts,
                     filesize, mtime_ns, first_at, last_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .ctx("copy a failure")?;
            for f in &e.failures {
                fail.execute(params![
                    f.track_id.0,
                    f.class,
                    f.message,
                    f.decoders,
                    f.attempts,
                    f.filesize,
                    f.mtime_ns,
                    f.first_at,
                    f.last_at
                ])
                .ctx_track("copy a failure", f.track_id)?;
            }
        }
        tx.commit().ctx("commit the copy")
    }
}
