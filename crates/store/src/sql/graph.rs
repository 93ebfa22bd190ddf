//! The similarity graph, written once for both SQLite layouts: the player's
//! `similarity_graph` table (the same name and columns in sonoprint's own database), plus two
//! tables of sonoprint's own saying what the graph was built from: the model (one row) and
//! the fingerprint digest of every track it covers (so that the next `graph` knows which
//! tracks changed without reading the rows).

use rusqlite::{named_params, params, Connection, OptionalExtension, TransactionBehavior};
use sonoprint_core::Fingerprint;

use super::{dimension_columns, query_vec, read_fingerprint};
use crate::error::Ctx;
use crate::sql::work::Layout;
use crate::{GraphCounts, GraphEdge, GraphState, GraphUpdate, Result, StoreError, TrackId};

/// The table names of one layout.
pub(crate) struct GraphTables {
    /// The model row (`id = 1`).
    pub state: &'static str,
    /// `track_id`, `digest`.
    pub nodes: &'static str,
}

/// Every present track's current fingerprint, in id order.
pub(crate) fn fingerprints(conn: &Connection, l: &Layout) -> Result<Vec<(TrackId, Fingerprint)>> {
    let sql = format!(
        "SELECT t.id, {dims} FROM {from} WHERE {eligible} AND {cur} ORDER BY t.id",
        dims = dimension_columns("f"),
        from = l.from,
        eligible = l.eligible,
        cur = l.current_fp,
    );
    query_vec(
        conn,
        &sql,
        named_params! { ":ver": l.version, ":full": false },
        "read the current fingerprints",
        |r| Ok((TrackId(r.get(0)?), read_fingerprint(r, 1)?)),
    )
}

pub(crate) fn state(conn: &Connection, t: &GraphTables) -> Result<Option<GraphState>> {
    conn.query_row(
        &format!(
            "SELECT model, model_id, k, fitted_on, built_at FROM {} WHERE id = 1",
            t.state
        ),
        [],
        |r| {
            Ok(GraphState {
                model: r.get(0)?,
                model_id: r.get(1)?,
                k: r.get(2)?,
                fitted_on: r.get::<_, i64>(3)? as u64,
                built_at_ms: r.get(4)?,
            })
        },
    )
    .optional()
    .ctx("read the similarity model")
}

pub(crate) fn nodes(conn: &Connection, t: &GraphTables) -> Result<Vec<(TrackId, i64)>> {
    query_vec(
        conn,
        &format!("SELECT track_id, digest FROM {} ORDER BY track_id", t.nodes),
        [],
        "read the graph's tracks",
        |r| Ok((TrackId(r.get(0)?), r.get(1)?)),
    )
}

/// The rows of `of` (by rank), or every row (by track, then rank).
pub(crate) fn edges(conn: &Connection, of: Option<TrackId>) -> Result<Vec<GraphEdge>> {
    query_vec(
        conn,
        "SELECT track_id, similar_track_id, distance, similarity_score, rank
         FROM similarity_graph WHERE (?1 IS NULL OR track_id = ?1)
         ORDER BY track_id, rank",
        [of.map(|t| t.0)],
        "read the similarity graph",
        |r| {
            Ok(GraphEdge {
                track_id: TrackId(r.get(0)?),
                similar_track_id: TrackId(r.get(1)?),
                distance: r.get(2)?,
                similarity_score: r.get(3)?,
                rank: r.get(4)?,
            })
        },
    )
}

/// Applies `u` in one transaction: every statement checked, nothing written on any error.
pub(crate) fn write(
    conn: &mut Connection,
    t: &GraphTables,
    u: &GraphUpdate<'_>,
) -> Result<GraphCounts> {
    check_update(u)?;
    let mut counts = GraphCounts::default();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin writing the similarity graph")?;
    if u.rebuild {
        counts.rows_deleted += tx
            .execute("DELETE FROM similarity_graph", [])
            .ctx("clear the similarity graph")? as u64;
        tx.execute(&format!("DELETE FROM {}", t.nodes), [])
            .ctx("clear the graph's tracks")?;
    } else {
        let mut del = tx
            .prepare_cached("DELETE FROM similarity_graph WHERE track_id = ?1")
            .ctx("delete a track's graph rows")?;
        for id in u.rows_of {
            counts.rows_deleted +=
                del.execute([id.0])
                    .ctx_track("delete a track's graph rows", *id)? as u64;
        }
    }
    {
        let mut del_rows = tx
            .prepare_cached(
                "DELETE FROM similarity_graph WHERE track_id = ?1 OR similar_track_id = ?1",
            )
            .ctx("delete the graph rows of a track without a fingerprint")?;
        let mut del_node = tx
            .prepare_cached(&format!("DELETE FROM {} WHERE track_id = ?1", t.nodes))
            .ctx("delete a graph track")?;
        for id in u.removed {
            counts.rows_deleted += del_rows.execute([id.0]).ctx_track(
                "delete the graph rows of a track without a fingerprint",
                *id,
            )? as u64;
            del_node
                .execute([id.0])
                .ctx_track("delete a graph track", *id)?;
        }
    }
    {
        // A row whose track the player deleted meanwhile is skipped rather than failing the
        // whole graph on the foreign key.
        let mut put = tx
            .prepare_cached(
                "INSERT INTO similarity_graph
                   (track_id, similar_track_id, distance, similarity_score, rank)
                 SELECT ?1, ?2, ?3, ?4, ?5
                 WHERE EXISTS (SELECT 1 FROM tracks WHERE id = ?1)
                   AND EXISTS (SELECT 1 FROM tracks WHERE id = ?2)",
            )
            .ctx("write a graph row")?;
        for e in u.edges {
            match put
                .execute(params![
                    e.track_id.0,
                    e.similar_track_id.0,
                    e.distance,
                    e.similarity_score,
                    e.rank
                ])
                .ctx_track("write a graph row", e.track_id)?
            {
                1 => counts.rows_written += 1,
                _ => counts.rows_skipped += 1,
            }
        }
        let mut node = tx
            .prepare_cached(&format!(
                "INSERT INTO {} (track_id, digest) VALUES (?1, ?2)
                 ON CONFLICT(track_id) DO UPDATE SET digest = excluded.digest",
                t.nodes
            ))
            .ctx("record a graph track")?;
        for (id, digest) in u.nodes {
            node.execute(params![id.0, digest])
                .ctx_track("record a graph track", *id)?;
        }
    }
    let s = u.state;
    tx.execute(
        &format!(
            "INSERT INTO {} (id, model, model_id, k, fitted_on, built_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET model = excluded.model, model_id = excluded.model_id,
               k = excluded.k, fitted_on = excluded.fitted_on, built_at = excluded.built_at",
            t.state
        ),
        params![s.model, s.model_id, s.k, s.fitted_on as i64, s.built_at_ms],
    )
    .ctx("record the similarity model")?;
    tx.commit().ctx("commit the similarity graph")?;
    Ok(counts)
}

/// Refuses an update with a row of a track whose rows are not being replaced, or a distance
/// or score out of range, before anything is written.
pub(crate) fn check_update(u: &GraphUpdate<'_>) -> Result<()> {
    if !u.rebuild {
        let rows_of: std::collections::HashSet<TrackId> = u.rows_of.iter().copied().collect();
        if let Some(e) = u.edges.iter().find(|e| !rows_of.contains(&e.track_id)) {
            return Err(StoreError::Invalid(format!(
                "a graph row of track {} whose rows are not being replaced",
                e.track_id
            )));
        }
    }
    if let Some(e) = u
        .edges
        .iter()
        .find(|e| !(e.distance.is_finite() && (0.0..=1.0).contains(&e.similarity_score)))
    {
        return Err(StoreError::Invalid(format!(
            "graph row {} -> {}: distance {} and score {} (the score must be in [0, 1])",
            e.track_id, e.similar_track_id, e.distance, e.similarity_score
        )));
    }
    Ok(())
}
