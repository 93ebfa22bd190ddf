//! Quality on real music: precision@5 of the k-NN graph (the share of each track's 5 nearest
//! from its own album), each source package of the corpus (one game's soundtrack) being one
//! "album".
//!
//! ```sh
//! sonoprint analyze --json FILES > excerpt.jsonl; sonoprint analyze --json --full FILES > full.jsonl
//! cargo run --release -p sonoprint-similarity --example quality -- \
//!     --manifest ~/.cache/sonoprint-corpus/manifest.tsv excerpt.jsonl full.jsonl
//! ```
//!
//! The library is always the whole corpus (the model is fitted on its fingerprints, as the
//! program does: that uses no album label). The albums are split deterministically in two
//! halves (sorted by name, alternately); the normalisation and the weights are chosen with the
//! album labels of the *tuning* half only (its tracks' precision, its Fisher ratios), on the
//! first file (excerpt mode); every method is then reported averaged over the tracks of the
//! tuning half, of the held-out half, and of all. `--swap` tunes on the other half.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;

use serde::Deserialize;
use sonoprint_core::{Fingerprint, DIMENSION_COUNT};
use sonoprint_similarity::{FitOptions, Graph, Index, Model, Normalisation, Weights};

#[derive(Deserialize)]
struct Line {
    path: String,
    fingerprint: Fingerprint,
}

#[derive(Clone)]
struct Track {
    album: String,
    fp: Fingerprint,
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn load(manifest: &str, jsonl: &str) -> Result<Vec<Track>, Box<dyn Error>> {
    let mut album_of = BTreeMap::new();
    for line in std::fs::read_to_string(manifest)?.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() >= 2 && cols[1].contains('/') {
            let album = cols[1].split('/').next().unwrap_or_default().to_string();
            album_of.insert(base(cols[0]).to_string(), album);
        }
    }
    let mut out = Vec::new();
    for line in std::fs::read_to_string(jsonl)?.lines() {
        let l: Line = serde_json::from_str(line)?;
        if let Some(album) = album_of.get(base(&l.path)) {
            out.push(Track {
                album: album.clone(),
                fp: l.fingerprint,
            });
        }
    }
    Ok(out)
}

/// Mean precision@5 over the tracks `counted` accepts; the library is every track.
fn precision_at_5(
    tracks: &[Track],
    options: &FitOptions,
    counted: &dyn Fn(&Track) -> bool,
) -> Result<f64, Box<dyn Error>> {
    let fps: Vec<Fingerprint> = tracks.iter().map(|t| t.fp).collect();
    let model = Model::fit_with(&fps, options)?;
    let pairs: Vec<(i64, Fingerprint)> = fps
        .iter()
        .enumerate()
        .map(|(i, f)| (i as i64, *f))
        .collect();
    let index = Index::build(model, &pairs)?;
    let graph = Graph::build(&index, 5);
    let (mut sum, mut n) = (0.0, 0);
    for (i, t) in tracks.iter().enumerate() {
        if !counted(t) {
            continue;
        }
        let row = graph.row(i as i64).ok_or("no row")?;
        let same = row
            .iter()
            .filter(|nb| tracks[nb.id as usize].album == t.album)
            .count();
        sum += same as f64 / row.len() as f64;
        n += 1;
    }
    Ok(sum / n as f64)
}

/// Precision@5 after re-ranking each track's 50 nearest by local scaling (Zelnik-Manor and
/// Perona; Schnitzer et al. for music): `d(x, y)^2 / (s_x s_y)`, `s` = distance to the 7th
/// nearest. Information for a later version: it changes every row when one track changes.
fn precision_at_5_local_scaling(
    tracks: &[Track],
    options: &FitOptions,
    counted: &dyn Fn(&Track) -> bool,
) -> Result<f64, Box<dyn Error>> {
    let fps: Vec<Fingerprint> = tracks.iter().map(|t| t.fp).collect();
    let model = Model::fit_with(&fps, options)?;
    let pairs: Vec<(i64, Fingerprint)> = fps
        .iter()
        .enumerate()
        .map(|(i, f)| (i as i64, *f))
        .collect();
    let index = Index::build(model, &pairs)?;
    let graph = Graph::build(&index, 50);
    let scale: Vec<f64> = (0..tracks.len())
        .map(|i| {
            graph
                .row(i as i64)
                .and_then(|r| r.get(6))
                .map_or(1.0, |n| f64::from(n.distance).max(1e-9))
        })
        .collect();
    let (mut sum, mut n) = (0.0, 0);
    for (i, t) in tracks.iter().enumerate() {
        if !counted(t) {
            continue;
        }
        let mut row: Vec<(f64, usize)> = graph
            .row(i as i64)
            .ok_or("no row")?
            .iter()
            .map(|nb| {
                let d = f64::from(nb.distance);
                (d * d / (scale[i] * scale[nb.id as usize]), nb.id as usize)
            })
            .collect();
        row.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let same = row
            .iter()
            .take(5)
            .filter(|(_, j)| tracks[*j].album == t.album)
            .count();
        sum += same as f64 / 5.0;
        n += 1;
    }
    Ok(sum / n as f64)
}

/// Precision@5 with the Manhattan (L1) distance on the model's normalised values, weighted:
/// information for a later version (the index is Euclidean).
fn precision_at_5_l1(
    tracks: &[Track],
    options: &FitOptions,
    counted: &dyn Fn(&Track) -> bool,
) -> Result<f64, Box<dyn Error>> {
    let fps: Vec<Fingerprint> = tracks.iter().map(|t| t.fp).collect();
    let model = Model::fit_with(&fps, options)?;
    let w = options.weights.normalised();
    let z: Vec<[f64; DIMENSION_COUNT]> = fps.iter().map(|f| model.normalise(f)).collect();
    let (mut sum, mut n) = (0.0, 0);
    for (i, t) in tracks.iter().enumerate() {
        if !counted(t) {
            continue;
        }
        let mut row: Vec<(f64, usize)> = (0..tracks.len())
            .filter(|&j| j != i)
            .map(|j| {
                let d: f64 = (0..DIMENSION_COUNT)
                    .map(|d| w[d] * (z[i][d] - z[j][d]).abs())
                    .sum();
                (d, j)
            })
            .collect();
        row.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let same = row
            .iter()
            .take(5)
            .filter(|(_, j)| tracks[*j].album == t.album)
            .count();
        sum += same as f64 / 5.0;
        n += 1;
    }
    Ok(sum / n as f64)
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: (values, vectors as
/// columns). 25 x 25 here, so the simple method is fast enough.
#[allow(clippy::needless_range_loop)] // rotations update rows and columns by index in step
fn jacobi(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-20 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i][i]).collect(), v)
}

/// Precision@5 with a Mahalanobis distance: the model's normalised, weighted values whitened by
/// the library's covariance shrunk toward its diagonal by `shrink` (no album label is used:
/// the covariance is the whole library's). Correlated dimensions (the band energies, centroid
/// and rolloff) then count once instead of several times. Information for a later version.
fn precision_at_5_whitened(
    tracks: &[Track],
    options: &FitOptions,
    shrink: f64,
    within: Option<&dyn Fn(&Track) -> bool>,
    counted: &dyn Fn(&Track) -> bool,
) -> Result<f64, Box<dyn Error>> {
    let fps: Vec<Fingerprint> = tracks.iter().map(|t| t.fp).collect();
    let model = Model::fit_with(&fps, options)?;
    let w = options.weights.normalised();
    let z: Vec<Vec<f64>> = fps
        .iter()
        .map(|f| {
            let v = model.normalise(f);
            (0..DIMENSION_COUNT).map(|d| v[d] * w[d].sqrt()).collect()
        })
        .collect();
    // Deviations: from the library's mean, or (`within`) from each album's mean over the
    // tracks `within` accepts (the pooled within-album covariance, WCCN).
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in tracks.iter().enumerate() {
        match within {
            None => groups.entry("").or_default().push(i),
            Some(f) if f(t) => groups.entry(&t.album).or_default().push(i),
            Some(_) => {}
        }
    }
    let mut cov = vec![vec![0.0; DIMENSION_COUNT]; DIMENSION_COUNT];
    let total: usize = groups.values().map(Vec::len).sum();
    for members in groups.values() {
        let mean: Vec<f64> = (0..DIMENSION_COUNT)
            .map(|d| members.iter().map(|&i| z[i][d]).sum::<f64>() / members.len() as f64)
            .collect();
        for &m in members {
            for i in 0..DIMENSION_COUNT {
                for j in 0..DIMENSION_COUNT {
                    cov[i][j] += (z[m][i] - mean[i]) * (z[m][j] - mean[j]) / total as f64;
                }
            }
        }
    }
    for (i, row) in cov.iter_mut().enumerate() {
        for (j, c) in row.iter_mut().enumerate() {
            if i != j {
                *c *= 1.0 - shrink;
            }
        }
    }
    let (values, vectors) = jacobi(cov);
    // Project on the eigenvectors, each scaled by 1/sqrt(eigenvalue) (floored).
    let top = values.iter().cloned().fold(0.0_f64, f64::max);
    let y: Vec<Vec<f64>> = z
        .iter()
        .map(|v| {
            (0..DIMENSION_COUNT)
                .map(|k| {
                    let proj: f64 = (0..DIMENSION_COUNT).map(|d| v[d] * vectors[d][k]).sum();
                    proj / values[k].max(top * 1e-3).sqrt()
                })
                .collect()
        })
        .collect();
    let (mut sum, mut count) = (0.0, 0);
    for (i, t) in tracks.iter().enumerate() {
        if !counted(t) {
            continue;
        }
        let mut row: Vec<(f64, usize)> = (0..tracks.len())
            .filter(|&j| j != i)
            .map(|j| {
                let d: f64 = (0..DIMENSION_COUNT)
                    .map(|k| (y[i][k] - y[j][k]).powi(2))
                    .sum();
                (d, j)
            })
            .collect();
        row.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let same = row
            .iter()
            .take(5)
            .filter(|(_, j)| tracks[*j].album == t.album)
            .count();
        sum += same as f64 / 5.0;
        count += 1;
    }
    Ok(sum / f64::from(count))
}

/// Expected precision@5 of random neighbours over the tracks `counted` accepts.
fn random_precision(tracks: &[Track], counted: &dyn Fn(&Track) -> bool) -> f64 {
    let mut size: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tracks {
        *size.entry(&t.album).or_default() += 1;
    }
    let n = tracks.len() as f64;
    let counted: Vec<&Track> = tracks.iter().filter(|t| counted(t)).collect();
    counted
        .iter()
        .map(|t| (size[t.album.as_str()] - 1) as f64 / (n - 1.0))
        .sum::<f64>()
        / counted.len() as f64
}

/// Between-album over within-album variance of each dimension, normalised on every track,
/// computed on the tracks `counted` accepts.
fn fisher(
    tracks: &[Track],
    normalisation: Normalisation,
    counted: &dyn Fn(&Track) -> bool,
) -> Result<[f64; DIMENSION_COUNT], Box<dyn Error>> {
    let fps: Vec<Fingerprint> = tracks.iter().map(|t| t.fp).collect();
    let model = Model::fit_with(
        &fps,
        &FitOptions {
            normalisation,
            weights: Weights::equal(),
        },
    )?;
    let used: Vec<&Track> = tracks.iter().filter(|t| counted(t)).collect();
    let z: Vec<[f64; DIMENSION_COUNT]> = used.iter().map(|t| model.normalise(&t.fp)).collect();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in used.iter().enumerate() {
        groups.entry(&t.album).or_default().push(i);
    }
    let n = used.len() as f64;
    let mut out = [0.0; DIMENSION_COUNT];
    for d in 0..DIMENSION_COUNT {
        let mean = z.iter().map(|v| v[d]).sum::<f64>() / n;
        let (mut between, mut within) = (0.0, 0.0);
        for members in groups.values() {
            let m = members.iter().map(|&i| z[i][d]).sum::<f64>() / members.len() as f64;
            between += members.len() as f64 * (m - mean) * (m - mean);
            within += members
                .iter()
                .map(|&i| (z[i][d] - m) * (z[i][d] - m))
                .sum::<f64>();
        }
        out[d] = between / within.max(1e-12);
    }
    Ok(out)
}

fn round2(w: [f64; DIMENSION_COUNT]) -> [f64; DIMENSION_COUNT] {
    w.map(|x| (x * 100.0).round() / 100.0)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut manifest =
        std::env::var("HOME").unwrap_or_default() + "/.cache/sonoprint-corpus/manifest.tsv";
    let mut files = Vec::new();
    let mut swap = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--swap" {
            // Tune on the other half: does the procedure, not these weights, generalise?
            swap = true;
        } else if a == "--manifest" {
            manifest = it.next().ok_or("--manifest needs a path")?.clone();
        } else {
            files.push(a.clone());
        }
    }
    if files.is_empty() {
        return Err(
            "usage: quality [--swap] [--manifest MANIFEST.tsv] EXCERPT.jsonl [FULL.jsonl] \
             (the jsonl from `sonoprint analyze --json [--full]` over the corpus' music)"
                .into(),
        );
    }
    let modes: Vec<(String, Vec<Track>)> = files
        .iter()
        .map(|f| {
            Ok((
                base(f).trim_end_matches(".jsonl").to_string(),
                load(&manifest, f)?,
            ))
        })
        .collect::<Result<_, Box<dyn Error>>>()?;
    let albums: BTreeSet<String> = modes[0].1.iter().map(|t| t.album.clone()).collect();
    let tune_albums: BTreeSet<String> = albums
        .iter()
        .enumerate()
        .filter(|(i, _)| (i % 2 == 0) != swap)
        .map(|(_, a)| a.clone())
        .collect();
    let in_tune = |t: &Track| tune_albums.contains(&t.album);
    let in_held = |t: &Track| !tune_albums.contains(&t.album);
    let all = |_: &Track| true;
    let tracks = &modes[0].1;
    println!(
        "{} tracks; tuning half: {} tracks of {:?}; held-out half: {} tracks of {:?}\n",
        tracks.len(),
        tracks.iter().filter(|t| in_tune(t)).count(),
        tune_albums,
        tracks.iter().filter(|t| in_held(t)).count(),
        albums.difference(&tune_albums).collect::<Vec<_>>()
    );

    // 1. Normalisation, with equal weights, judged on the tuning half.
    println!(
        "normalisation (equal weights), precision@5 of the tuning half ({}):",
        modes[0].0
    );
    let mut best_norm = (Normalisation::Quantile, f64::MIN);
    for norm in Normalisation::ALL {
        let options = FitOptions {
            normalisation: norm,
            weights: Weights::equal(),
        };
        let p = precision_at_5(tracks, &options, &in_tune)?;
        println!("  {:<10} {p:.3}", norm.as_str());
        if p > best_norm.1 + 1e-9 {
            best_norm = (norm, p);
        }
    }
    let norm = best_norm.0;
    println!("  -> {}\n", norm.as_str());

    // 2. Weights from the per-dimension Fisher ratio of the tuning half.
    let f = fisher(tracks, norm, &in_tune)?;
    let mean_f = f.iter().sum::<f64>() / DIMENSION_COUNT as f64;
    let mut candidates: Vec<(String, Weights)> = vec![("equal".into(), Weights::equal())];
    for (name, alpha) in [
        ("fisher", 1.0),
        ("fisher-shrunk-0.5", 0.5),
        ("fisher-shrunk-0.25", 0.25),
    ] {
        let w = f.map(|x| alpha * x / mean_f + (1.0 - alpha));
        candidates.push((name.into(), Weights::from_array(round2(w))?));
    }
    candidates.push((
        "fisher-sqrt".into(),
        Weights::from_array(round2(f.map(|x| (x / mean_f).sqrt())))?,
    ));
    println!(
        "weights ({} normalisation), precision@5 of the tuning half:",
        norm.as_str()
    );
    let mut best = (String::new(), Weights::equal(), f64::MIN);
    for (name, w) in &candidates {
        let options = FitOptions {
            normalisation: norm,
            weights: w.clone(),
        };
        let p = precision_at_5(tracks, &options, &in_tune)?;
        println!("  {name:<20} {p:.3}");
        if p > best.2 + 1e-9 {
            best = (name.clone(), w.clone(), p);
        }
    }
    println!("  -> {}\n", best.0);

    // 3. For information only (it fits the tuning half directly, so it is no candidate): a
    //    coordinate search on the tuning half from the chosen weights.
    let mut cs = best.1.as_array();
    let mut cs_p = best.2;
    for _round in 0..2 {
        for d in 0..DIMENSION_COUNT {
            for factor in [0.0, 0.5, 2.0] {
                let mut trial = cs;
                trial[d] *= factor;
                let Ok(w) = Weights::from_array(trial) else {
                    continue;
                };
                let options = FitOptions {
                    normalisation: norm,
                    weights: w,
                };
                let p = precision_at_5(tracks, &options, &in_tune)?;
                if p > cs_p + 1e-9 {
                    cs = trial;
                    cs_p = p;
                }
            }
        }
    }

    println!("chosen weights (for DEFAULT_WEIGHTS):");
    for (name, w) in Fingerprint::NAMES.iter().zip(best.1.as_array()) {
        println!("    (\"{name}\", {w:.2}),");
    }
    println!(
        "Fisher ratios (tuning half): {:?}\n",
        f.map(|x| (x * 1000.0).round() / 1000.0)
    );

    let methods: Vec<(&str, Option<FitOptions>)> = vec![
        ("random", None),
        (
            "z-score, equal weights",
            Some(FitOptions {
                normalisation: Normalisation::ZScore,
                weights: Weights::equal(),
            }),
        ),
        (
            "Auralis (p5-p95, its weights)",
            Some(FitOptions {
                normalisation: Normalisation::Percentile,
                weights: Weights::auralis(),
            }),
        ),
        (
            "chosen norm., equal weights",
            Some(FitOptions {
                normalisation: norm,
                weights: Weights::equal(),
            }),
        ),
        (
            "chosen norm. + chosen weights",
            Some(FitOptions {
                normalisation: norm,
                weights: best.1.clone(),
            }),
        ),
        ("crate default (Model::fit)", Some(FitOptions::default())),
        (
            "(coordinate search, info)",
            Some(FitOptions {
                normalisation: norm,
                weights: Weights::from_array(cs)?,
            }),
        ),
    ];
    let local_scaling = FitOptions {
        normalisation: norm,
        weights: best.1.clone(),
    };
    print!("{:<32}", "precision@5");
    for (mode, _) in &modes {
        for part in ["tune", "held-out", "all"] {
            print!(" {:>13}", format!("{mode}/{part}"));
        }
    }
    println!();
    let parts: [&dyn Fn(&Track) -> bool; 3] = [&in_tune, &in_held, &all];
    for (name, options) in &methods {
        print!("{name:<32}");
        for (_, tracks) in &modes {
            for part in parts {
                let p = match options {
                    None => random_precision(tracks, part),
                    Some(o) => precision_at_5(tracks, o, part)?,
                };
                print!(" {p:>13.3}");
            }
        }
        println!();
    }
    for (name, o) in [
        (
            "(L1, z-score equal, info)",
            FitOptions {
                normalisation: Normalisation::ZScore,
                weights: Weights::equal(),
            },
        ),
        (
            "(L1, chosen norm. equal, info)",
            FitOptions {
                normalisation: norm,
                weights: Weights::equal(),
            },
        ),
        ("(L1, chosen, info)", local_scaling.clone()),
        (
            "(L1, quantile equal, info)",
            FitOptions {
                normalisation: Normalisation::Quantile,
                weights: Weights::equal(),
            },
        ),
        (
            "(L1, quantile chosen w, info)",
            FitOptions {
                normalisation: Normalisation::Quantile,
                weights: best.1.clone(),
            },
        ),
    ] {
        print!("{name:<32}");
        for (_, tracks) in &modes {
            for part in parts {
                print!(" {:>13.3}", precision_at_5_l1(tracks, &o, part)?);
            }
        }
        println!();
    }
    let equal = FitOptions {
        normalisation: norm,
        weights: Weights::equal(),
    };
    for shrink in [0.0, 0.25, 0.5, 0.75, 0.9] {
        for (label, within) in [
            ("library", None),
            ("within", Some(&in_tune as &dyn Fn(&Track) -> bool)),
        ] {
            print!("{:<32}", format!("(whitened {label} s={shrink}, info)"));
            for (_, tracks) in &modes {
                for part in parts {
                    let p = precision_at_5_whitened(tracks, &equal, shrink, within, part)?;
                    print!(" {p:>13.3}");
                }
            }
            println!();
        }
    }
    print!("{:<32}", "(chosen + local scaling, info)");
    for (_, tracks) in &modes {
        for part in parts {
            print!(
                " {:>13.3}",
                precision_at_5_local_scaling(tracks, &local_scaling, part)?
            );
        }
    }
    println!();
    Ok(())
}
