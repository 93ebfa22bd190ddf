//! `sonoprint copy --from SRC --to DST`: a library from one database into another (sonoprint's
//! SQLite file or PostgreSQL, either way): tracks with their ids, fingerprints, failures and
//! roots in one transaction, then the similarity graph in another. The destination must hold
//! no tracks; the source is only read.

use sonoprint_store::{GraphUpdate, PostgresLibrary, SqliteLibrary, Transfer};

use crate::{AppError, LibrarySpec};

/// What a copy carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub tracks: u64,
    pub fingerprints: u64,
    pub failures: u64,
    pub graph_rows: u64,
}

fn open(spec: &LibrarySpec, source: bool) -> Result<Box<dyn Transfer>, AppError> {
    match spec {
        LibrarySpec::Own { db } => {
            if source && !db.exists() {
                return Err(AppError::NoLibrary(db.clone()));
            }
            Ok(Box::new(SqliteLibrary::open(db)?))
        }
        LibrarySpec::Postgres { url, .. } => Ok(Box::new(PostgresLibrary::open(url)?)),
        LibrarySpec::Auralis { .. } => Err(AppError::Usage(
            "copy works between sonoprint libraries (a SQLite file or PostgreSQL), not the \
             player's database"
                .into(),
        )),
    }
}

/// Copies the library of `from` into the empty library of `to`.
pub fn copy(from: &LibrarySpec, to: &LibrarySpec) -> Result<CopyReport, AppError> {
    if from == to {
        return Err(AppError::Usage(
            "--from and --to name the same library".into(),
        ));
    }
    let src = open(from, true)?;
    let mut dst = open(to, false)?;
    let rows = src.export()?;
    dst.import(&rows)?;
    let mut report = CopyReport {
        tracks: rows.tracks.len() as u64,
        fingerprints: rows.fingerprints.len() as u64,
        failures: rows.failures.len() as u64,
        graph_rows: 0,
    };
    if let Some(state) = src.graph_state()? {
        let edges = src.graph_edges(None)?;
        let nodes = src.graph_nodes()?;
        let written = dst.write_graph(&GraphUpdate {
            state: &state,
            rebuild: true,
            rows_of: &[],
            edges: &edges,
            nodes: &nodes,
            removed: &[],
        })?;
        if written.rows_written != edges.len() as u64 {
            return Err(AppError::Run(format!(
                "the similarity graph has {} rows but {} were copied",
                edges.len(),
                written.rows_written
            )));
        }
        report.graph_rows = written.rows_written;
    }
    tracing::info!(
        from = %from.describe(),
        to = %to.describe(),
        tracks = report.tracks,
        fingerprints = report.fingerprints,
        failures = report.failures,
        graph_rows = report.graph_rows,
        "library copied"
    );
    Ok(report)
}
