//! `sonoprint playlist`: tracks around one seed or around what several seeds share, and the
//! M3U file players read.

use serde::Serialize;

use crate::index::squared;
use crate::{Error, Index};

/// Options of [`playlist`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistOptions {
    /// Tracks in the playlist, seeds included.
    pub length: usize,
    /// No two tracks of the same folder within this many consecutive places (0 = no limit;
    /// 1 = never twice in a row).
    pub no_repeat_folder: usize,
}

impl Default for PlaylistOptions {
    fn default() -> Self {
        PlaylistOptions {
            length: 30,
            no_repeat_folder: 0,
        }
    }
}

/// One track of a playlist.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlaylistEntry {
    pub id: i64,
    /// Distance to the farthest seed (0 for a seed).
    pub distance: f32,
    /// [`crate::Model::score`] of that distance.
    pub score: f32,
    pub seed: bool,
}

/// A playlist of at most `options.length` tracks: the seeds first (in the order given,
/// repeats dropped), then the tracks nearest to the seeds, where several seeds count by their
/// *farthest* seed, so that the playlist keeps to what all of them share rather than to the
/// middle between them. `folder_of` gives each track's folder (or album) key for
/// `no_repeat_folder`; a track it would keep out waits for a later place. Shorter than asked
/// only when the library (or the folder rule) runs out.
pub fn playlist<K: PartialEq>(
    index: &Index,
    seeds: &[i64],
    options: &PlaylistOptions,
    folder_of: impl Fn(i64) -> K,
) -> Result<Vec<PlaylistEntry>, Error> {
    let mut seed_ids: Vec<i64> = Vec::new();
    for &s in seeds {
        if !index.contains(s) {
            return Err(Error::UnknownTrack(s));
        }
        if !seed_ids.contains(&s) {
            seed_ids.push(s);
        }
    }
    if seed_ids.is_empty() {
        return Err(Error::NoSeed);
    }
    let seed_rows: Vec<[f32; sonoprint_core::DIMENSION_COUNT]> = seed_ids
        .iter()
        .filter_map(|&s| index.embedding(s))
        .collect();
    let model = index.model();
    let seed_entries: Vec<PlaylistEntry> = seed_ids
        .iter()
        .take(options.length)
        .map(|&id| PlaylistEntry {
            id,
            distance: 0.0,
            score: 1.0,
            seed: true,
        })
        .collect();
    let far = |id: i64| -> f32 {
        index.embedding(id).map_or(f32::INFINITY, |e| {
            seed_rows
                .iter()
                .map(|s| squared(s, &e))
                .fold(0.0f32, f32::max)
                .sqrt()
        })
    };
    let mut pool_size = (options.length * 4 + 32).min(index.len());
    loop {
        // Candidates: the nearest to each seed, ranked by the farthest seed.
        let mut pool: Vec<(f32, i64)> = Vec::new();
        for s in &seed_rows {
            for n in index.nearest_to_embedding(s, pool_size, &|id| !seed_ids.contains(&id)) {
                pool.push((far(n.id), n.id));
            }
        }
        pool.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        pool.dedup_by_key(|p| p.1);
        let mut chosen = seed_entries.clone();
        let mut chosen_folders: Vec<K> = chosen.iter().map(|e| folder_of(e.id)).collect();
        let mut taken = vec![false; pool.len()];
        while chosen.len() < options.length {
            let window = options.no_repeat_folder.min(chosen_folders.len());
            let recent = &chosen_folders[chosen_folders.len() - window..];
            let pick = pool
                .iter()
                .enumerate()
                .find(|(i, (_, id))| !taken[*i] && !recent.iter().any(|f| *f == folder_of(*id)));
            let Some((i, &(distance, id))) = pick else {
                break;
            };
            taken[i] = true;
            chosen.push(PlaylistEntry {
                id,
                distance,
                score: model.score(f64::from(distance)) as f32,
                seed: false,
            });
            chosen_folders.push(folder_of(id));
        }
        if chosen.len() >= options.length || pool_size >= index.len() {
            return Ok(chosen);
        }
        pool_size = (pool_size * 4).min(index.len());
    }
}

/// One line of an M3U playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct M3uEntry<'a> {
    pub path: &'a str,
    /// Whole seconds are written; unknown is written -1, as the format says.
    pub duration_sec: Option<f64>,
    pub title: &'a str,
}

/// An extended M3U playlist (`#EXTM3U`, then `#EXTINF:<seconds>,<title>` and the path for each
/// entry), as players read it. Line breaks inside a title or path are replaced by spaces, as
/// they would end the entry.
pub fn m3u(entries: &[M3uEntry<'_>]) -> String {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut out = String::from("#EXTM3U\n");
    for e in entries {
        let secs = match e.duration_sec {
            Some(d) if d.is_finite() && d >= 0.0 => d.round() as i64,
            _ => -1,
        };
        let title = if e.title.trim().is_empty() {
            std::path::Path::new(e.path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            e.title.to_string()
        };
        out.push_str(&format!(
            "#EXTINF:{secs},{}\n{}\n",
            clean(&title),
            clean(e.path)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{synthetic, Model};
    use sonoprint_core::Fingerprint;

    fn setup() -> (Index, Vec<synthetic::SyntheticTrack>) {
        let lib = synthetic::generate_with(600, 6, 0.15, 21);
        let fps: Vec<Fingerprint> = lib.iter().map(|t| t.fingerprint).collect();
        let pairs: Vec<(i64, Fingerprint)> = lib.iter().map(|t| (t.id, t.fingerprint)).collect();
        (
            Index::build(Model::fit(&fps).unwrap(), &pairs).unwrap(),
            lib,
        )
    }

    #[test]
    fn one_seed_stays_in_its_cluster() {
        let (index, lib) = setup();
        let seed = &lib[0];
        let p = playlist(&index, &[seed.id], &PlaylistOptions::default(), |_| 0).unwrap();
        assert_eq!(p.len(), 30);
        assert_eq!(p[0].id, seed.id);
        assert!(p[0].seed);
        let same = p
            .iter()
            .filter(|e| lib[(e.id - 1) as usize].cluster == seed.cluster)
            .count();
        assert!(same >= 27, "{same}");
        let mut ids: Vec<i64> = p.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 30);
    }

    #[test]
    fn several_seeds_and_folder_rule() {
        let (index, lib) = setup();
        let a = lib.iter().find(|t| t.cluster == 1).unwrap().id;
        let b = lib.iter().rev().find(|t| t.cluster == 1).unwrap().id;
        // Folder = id mod 3: no folder twice within 2 places.
        let options = PlaylistOptions {
            length: 20,
            no_repeat_folder: 2,
        };
        let p = playlist(&index, &[a, b, a], &options, |id| id % 3).unwrap();
        assert_eq!(p.len(), 20);
        assert_eq!((p[0].id, p[1].id), (a, b));
        assert!(!p[2].seed);
        for w in p.windows(3) {
            let f: Vec<i64> = w.iter().map(|e| e.id % 3).collect();
            assert!(f[2] != f[1] && f[2] != f[0], "{f:?}");
        }
        let same = p
            .iter()
            .filter(|e| lib[(e.id - 1) as usize].cluster == 1)
            .count();
        assert!(same >= 18, "{same}");
        // Impossible folder rule: one folder only, never twice in a row.
        let stuck = playlist(
            &index,
            &[a],
            &PlaylistOptions {
                length: 5,
                no_repeat_folder: 1,
            },
            |_| 0,
        )
        .unwrap();
        assert_eq!(stuck.len(), 1);
        assert!(matches!(
            playlist(&index, &[], &options, |_| 0),
            Err(Error::NoSeed)
        ));
    }

    #[test]
    fn m3u_is_extended_m3u() {
        let text = m3u(&[
            M3uEntry {
                path: "/music/a b.flac",
                duration_sec: Some(241.6),
                title: "Artist - Song",
            },
            M3uEntry {
                path: "/music/x\ny.mp3",
                duration_sec: None,
                title: "",
            },
        ]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXTINF:242,Artist - Song\n/music/a b.flac\n#EXTINF:-1,x y\n/music/x y.mp3\n"
        );
    }
}
