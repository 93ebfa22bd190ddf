//! [`Transfer`] for PostgreSQL: the rows in `UNNEST` batches, in one transaction.

use postgres::types::ToSql;
use sonoprint_core::{DIMENSIONS, DIMENSION_COUNT};

use super::{begin, read_fingerprint, PostgresLibrary};
use crate::sql::now_ms;
use crate::{
    Export, FailureRecord, FingerprintRecord, Result, StoreError, TrackId, TrackRecord, TrackState,
    Transfer,
};

/// Rows per statement of an import.
const CHUNK: usize = 5_000;

impl Transfer for PostgresLibrary {
    fn export(&self) -> Result<Export> {
        let mut db = self.db()?;
        let roots = db
            .query(
                "SELECT path FROM roots ORDER BY path",
                &[],
                "read the roots",
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let tracks = db
            .query(
                "SELECT id, title, filepath, duration, sample_rate, channels, format, filesize,
                 mtime_ns, state FROM tracks ORDER BY id",
                &[],
                "read the tracks",
            )?
            .iter()
            .map(|r| {
                Ok(TrackRecord {
                    id: TrackId(r.get(0)),
                    title: r.get(1),
                    filepath: r.get(2),
                    duration: r.get(3),
                    sample_rate: r.get::<_, Option<i32>>(4).map(i64::from),
                    channels: r.get::<_, Option<i32>>(5).map(i64::from),
                    format: r.get(6),
                    filesize: r.get(7),
                    mtime_ns: r.get(8),
                    state: TrackState::parse(&r.get::<_, String>(9))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let fingerprints = db
            .query(
                &format!(
                    "SELECT f.track_id, f.fingerprint_version, f.filesize, f.mtime_ns, f.mode,
                     f.decoder, f.analyzed_sec, f.computed_ms, {} FROM track_fingerprints f
                     ORDER BY f.track_id",
                    super::dims("f")
                ),
                &[],
                "read the fingerprints",
            )?
            .iter()
            .map(|r| FingerprintRecord {
                track_id: TrackId(r.get(0)),
                version: i64::from(r.get::<_, i32>(1)),
                filesize: r.get(2),
                mtime_ns: r.get(3),
                mode: r.get(4),
                decoder: r.get(5),
                analyzed_sec: r.get(6),
                computed_ms: r.get(7),
                fingerprint: read_fingerprint(r, 8),
            })
            .collect();
        let failures = db
            .query(
                "SELECT track_id, class, message, decoders, attempts, filesize, mtime_ns,
                 first_at, last_at FROM failures ORDER BY track_id",
                &[],
                "read the failures",
            )?
            .iter()
            .map(|r| FailureRecord {
                track_id: TrackId(r.get(0)),
                class: r.get(1),
                message: r.get(2),
                decoders: r.get(3),
                attempts: r.get(4),
                filesize: r.get(5),
                mtime_ns: r.get(6),
                first_at: r.get(7),
                last_at: r.get(8),
            })
            .collect();
        Ok(Export {
            roots,
            tracks,
            fingerprints,
            failures,
        })
    }

    fn import(&mut self, e: &Export) -> Result<()> {
        let mut db = self.db()?;
        let count = db.stmt("SELECT COUNT(*) FROM tracks", "count the tracks")?;
        let roots = db.stmt(
            "INSERT INTO roots (path, added_at) SELECT p, $2 FROM UNNEST($1::text[]) AS p",
            "copy the roots",
        )?;
        let tracks = db.stmt(
            "INSERT INTO tracks (id, title, filepath, duration, sample_rate, channels, format,
               filesize, mtime_ns, state)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::float8[],
               $5::int4[], $6::int4[], $7::text[], $8::int8[], $9::int8[], $10::text[])",
            "copy tracks",
        )?;
        let reseed = db.stmt(
            "SELECT setval(pg_get_serial_sequence('tracks', 'id'),
                           GREATEST((SELECT MAX(id) FROM tracks), 1))",
            "move the track id sequence past the copied ids",
        )?;
        let dims: Vec<&str> = DIMENSIONS.iter().map(|d| d.name).collect();
        let dim_args: Vec<String> = (9..9 + DIMENSION_COUNT)
            .map(|i| format!("${i}::float8[]"))
            .collect();
        let fps = db.stmt(
            &format!(
                "INSERT INTO track_fingerprints (track_id, fingerprint_version, filesize,
                   mtime_ns, mode, decoder, analyzed_sec, computed_ms, {})
                 SELECT * FROM UNNEST($1::int8[], $2::int4[], $3::int8[], $4::int8[],
                   $5::text[], $6::text[], $7::float8[], $8::int8[], {})",
                dims.join(", "),
                dim_args.join(", ")
            ),
            "copy fingerprints",
        )?;
        let fails = db.stmt(
            "INSERT INTO failures (track_id, class, message, decoders, attempts, filesize,
               mtime_ns, first_at, last_at)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[],
               $6::int8[], $7::int8[], $8::int8[], $9::int8[])",
            "copy failures",
        )?;
        let mut tx = begin(&mut db, "begin the copy")?;
        let existing: i64 = tx
            .query(&count, &[], "count the tracks")?
            .first()
            .map_or(0, |r| r.get(0));
        if existing > 0 {
            return Err(StoreError::Invalid(format!(
                "the destination already holds {existing} tracks: copy into an empty library"
            )));
        }
        let now = now_ms();
        tx.execute(&roots, &[&e.roots, &now], "copy the roots", &[])?;
        for chunk in e.tracks.chunks(CHUNK) {
            let id: Vec<i64> = chunk.iter().map(|t| t.id.0).collect();
            let title: Vec<Option<String>> = chunk.iter().map(|t| t.title.clone()).collect();
            let path: Vec<String> = chunk.iter().map(|t| t.filepath.clone()).collect();
            let duration: Vec<Option<f64>> = chunk.iter().map(|t| t.duration).collect();
            let rate: Vec<Option<i32>> = chunk
                .iter()
                .map(|t| t.sample_rate.map(|v| v as i32))
                .collect();
            let ch: Vec<Option<i32>> = chunk.iter().map(|t| t.channels.map(|v| v as i32)).collect();
            let format: Vec<Option<String>> = chunk.iter().map(|t| t.format.clone()).collect();
            let size: Vec<Option<i64>> = chunk.iter().map(|t| t.filesize).collect();
            let mtime: Vec<Option<i64>> = chunk.iter().map(|t| t.mtime_ns).collect();
            let state: Vec<&str> = chunk.iter().map(|t| t.state.as_str()).collect();
            let n = tx.execute(
                &tracks,
                &[
                    &id, &title, &path, &duration, &rate, &ch, &format, &size, &mtime, &state,
                ],
                "copy tracks",
                &[],
            )?;
            expect_rows(n, chunk.len(), "tracks")?;
        }
        tx.query(
            &reseed,
            &[],
            "move the track id sequence past the copied ids",
        )?;
        for chunk in e.fingerprints.chunks(CHUNK) {
            let id: Vec<i64> = chunk.iter().map(|f| f.track_id.0).collect();
            let version: Vec<i32> = chunk.iter().map(|f| f.version as i32).collect();
            let size: Vec<Option<i64>> = chunk.iter().map(|f| f.filesize).collect();
            let mtime: Vec<Option<i64>> = chunk.iter().map(|f| f.mtime_ns).collect();
            let mode: Vec<Option<String>> = chunk.iter().map(|f| f.mode.clone()).collect();
            let decoder: Vec<Option<String>> = chunk.iter().map(|f| f.decoder.clone()).collect();
            let analyzed: Vec<Option<f64>> = chunk.iter().map(|f| f.analyzed_sec).collect();
            let computed: Vec<Option<i64>> = chunk.iter().map(|f| f.computed_ms).collect();
            let mut cols: Vec<Vec<f64>> = (0..DIMENSION_COUNT)
                .map(|_| Vec::with_capacity(chunk.len()))
                .collect();
            for f in chunk {
                for (c, v) in cols.iter_mut().zip(f.fingerprint.to_array()) {
                    c.push(v);
                }
            }
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &id, &version, &size, &mtime, &mode, &decoder, &analyzed, &computed,
            ];
            for c in &cols {
                params.push(c);
            }
            let n = tx.execute(&fps, &params, "copy fingerprints", &[])?;
            expect_rows(n, chunk.len(), "fingerprints")?;
        }
        for chunk in e.failures.chunks(CHUNK) {
            let id: Vec<i64> = chunk.iter().map(|f| f.track_id.0).collect();
            let class: Vec<&str> = chunk.iter().map(|f| f.class.as_str()).collect();
            let message: Vec<&str> = chunk.iter().map(|f| f.message.as_str()).collect();
            let decoders: Vec<&str> = chunk.iter().map(|f| f.decoders.as_str()).collect();
            let attempts: Vec<i64> = chunk.iter().map(|f| f.attempts).collect();
            let size: Vec<Option<i64>> = chunk.iter().map(|f| f.filesize).collect();
            let mtime: Vec<Option<i64>> = chunk.iter().map(|f| f.mtime_ns).collect();
            let first: Vec<i64> = chunk.iter().map(|f| f.first_at).collect();
            let last: Vec<i64> = chunk.iter().map(|f| f.last_at).collect();
            let n = tx.execute(
                &fails,
                &[
                    &id, &class, &message, &decoders, &attempts, &size, &mtime, &first, &last,
                ],
                "copy failures",
                &[],
            )?;
            expect_rows(n, chunk.len(), "failures")?;
        }
        tx.commit("commit the copy")
    }
}

fn expect_rows(n: u64, want: usize, what: &str) -> Result<()> {
    if n == want as u64 {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "copying {want} {what} wrote {n} rows"
        )))
    }
}
