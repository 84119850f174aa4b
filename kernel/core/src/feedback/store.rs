//! The campaign's SQLite file: items, raters, the assignments served to them and their
//! judgments. WAL mode with `synchronous = FULL`: a judgment whose transaction has committed
//! survives a killed process or a power cut, and the server acknowledges a judgment only after
//! that commit. One connection behind a mutex is the one writer; other processes (a notebook
//! reading while `sandwich serve` writes) open their own and read beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use polars::prelude::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::spec::{CampaignSpec, Kind};
use super::tokens::{hash_token, Secret};
use crate::{Error, Options, Result, Rng};

/// The schema's migrations, in order: `PRAGMA user_version` says how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE items (pos INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, data TEXT NOT NULL,
                         gold TEXT);
     CREATE TABLE raters (pos INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, grp TEXT NOT NULL,
                          condition TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
                          gold_seen INTEGER NOT NULL DEFAULT 0,
                          gold_correct INTEGER NOT NULL DEFAULT 0, paused_ms INTEGER);
     CREATE TABLE assignments (rater INTEGER NOT NULL, item INTEGER NOT NULL,
                               gold INTEGER NOT NULL, served_ms INTEGER NOT NULL,
                               done INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (rater, item));
     CREATE INDEX assignments_item ON assignments (item, done, served_ms);
     CREATE TABLE judgments (seq INTEGER PRIMARY KEY, rater INTEGER NOT NULL,
                             item INTEGER NOT NULL, answer TEXT NOT NULL,
                             condition TEXT NOT NULL, gold INTEGER NOT NULL, correct INTEGER,
                             served_ms INTEGER NOT NULL, submitted_ms INTEGER NOT NULL,
                             key TEXT NOT NULL, UNIQUE (rater, key), UNIQUE (rater, item));",
];

/// The longest free-text answer accepted (characters).
pub const MAX_TEXT: usize = 10_000;

/// A campaign: its spec, its items' columns and its file.
pub struct Campaign {
    path: PathBuf,
    spec: CampaignSpec,
    columns: Vec<String>,
    shown: Vec<String>,
    secret: Secret,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Campaign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaign")
            .field("path", &self.path)
            .field("name", &self.spec.name)
            .finish()
    }
}

/// What a rater's page shows next.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Next {
    /// An item to judge.
    Item(Box<Assignment>),
    /// The rater's gold accuracy fell below the threshold: no more items.
    Paused { answered: usize },
    /// Nothing open to this rater now, but items held by others may come free when their
    /// leases run out: ask again after `retry_seconds`.
    Wait { answered: usize, retry_seconds: u64 },
    /// Nothing left for this rater.
    Done { answered: usize },
}

/// One item served to a rater.
#[derive(Debug, Serialize)]
pub struct Assignment {
    pub item: String,
    /// The item's shown columns, in order: `[name, value]`.
    pub fields: Vec<(String, String)>,
    /// The rater's condition's assistance (empty when unassisted).
    pub assistance: Vec<(String, String)>,
    pub assistance_heading: String,
    /// `rank`: the candidates' texts, `[column, value]`.
    pub candidates: Vec<(String, String)>,
    pub answered: usize,
    /// Items still open to this rater after this one (an upper bound: others fill them too).
    pub remaining: usize,
}

/// What became of a submitted judgment.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Submitted {
    /// Committed (`duplicate`: this key had already been committed; nothing new was written).
    Saved { duplicate: bool, paused: bool },
    /// The item was never served to this rater (a guessed or another rater's item).
    NotAssigned,
    /// This rater already judged this item (under another key).
    AlreadyJudged,
    /// The key was used before for another judgment.
    KeyReused,
    /// The rater is paused.
    Paused,
    /// The rater's lease on the item ran out and others have since filled it.
    Expired,
    /// The answer is not one the kind accepts.
    Invalid { reason: String },
}

/// A rater's row.
struct Rater {
    pos: i64,
    condition: String,
    paused: bool,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A small, stable mix of the seed, a rater and an item: spreads raters over the items with the
/// fewest judgments without any two raters walking them in the same order.
fn mix(seed: u64, rater: i64, item: i64) -> u64 {
    Rng::derived(seed ^ (rater as u64).rotate_left(32), item as u64).next_u64()
}

impl Campaign {
    /// Creates the campaign file at `path` (an error if it exists) with these items: an `id`
    /// column (unique), the columns to show, and a `gold` column holding the answer of each
    /// gold item (null for the others) when the campaign has gold items.
    pub fn create(path: impl AsRef<Path>, spec: CampaignSpec, items: &DataFrame) -> Result<Self> {
        const OP: &str = "feedback.campaign";
        let path = path.as_ref().to_path_buf();
        spec.check(OP)?;
        if path.exists() {
            return Err(Error::invalid(
                OP,
                "path",
                "a new file (to continue a campaign, give only its path)",
                path.display(),
            ));
        }
        let columns: Vec<String> = items
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        if !columns.iter().any(|c| c == "id") {
            return Err(Error::invalid(
                OP,
                "items",
                "an 'id' column",
                format!("columns {columns:?}"),
            ));
        }
        if items.height() == 0 {
            return Err(Error::invalid(
                OP,
                "items",
                "at least one item",
                "an empty table",
            ));
        }
        spec.check_columns(OP, &columns)?;
        let text = strings_of(OP, items, &columns)?;
        let ids = &text["id"];
        let mut seen = std::collections::HashSet::new();
        for (row, id) in ids.iter().enumerate() {
            match id {
                None => {
                    return Err(Error::invalid(
                        OP,
                        "items",
                        "an id on every row",
                        format!("null in row {}", row + 1),
                    ))
                }
                Some(id) if !seen.insert(id.clone()) => {
                    return Err(Error::invalid(
                        OP,
                        "items",
                        "unique ids",
                        format!("'{id}' twice"),
                    ))
                }
                _ => {}
            }
        }
        let gold: Vec<Option<String>> = match text.get("gold") {
            Some(g) => g.clone(),
            None => vec![None; items.height()],
        };
        let rows: Vec<BTreeMap<String, String>> = (0..items.height())
            .map(|r| {
                columns
                    .iter()
                    .map(|c| (c.clone(), text[c][r].clone().unwrap_or_default()))
                    .collect()
            })
            .collect();
        let mut canonical = Vec::with_capacity(gold.len());
        for (r, g) in gold.iter().enumerate() {
            canonical.push(match g {
                None => None,
                Some(g) => Some(gold_answer(&spec, &rows[r], g).map_err(|_| {
                    Error::invalid(
                        OP,
                        "items",
                        gold_expected(&spec),
                        format!("gold '{g}' for item '{}'", rows[r]["id"]),
                    )
                })?),
            });
        }
        let secret = Secret::create(&key_path(&path))?;
        let mut conn = connect(OP, &path)?;
        migrate(OP, &mut conn)?;
        let tx = conn
            .transaction()
            .map_err(store(OP, "starting the campaign"))?;
        let spec_json = serde_json::to_string(&spec).expect("a spec serialises");
        tx.execute(
            "INSERT INTO meta VALUES ('spec', ?1), ('columns', ?2), ('version', ?3)",
            params![
                spec_json,
                serde_json::to_string(&columns).expect("strings serialise"),
                env!("CARGO_PKG_VERSION")
            ],
        )
        .map_err(store(OP, "writing the spec"))?;
        for (pos, row) in rows.iter().enumerate() {
            let g = &canonical[pos];
            tx.execute(
                "INSERT INTO items VALUES (?1, ?2, ?3, ?4)",
                params![
                    pos as i64,
                    row["id"],
                    serde_json::to_string(row).expect("strings serialise"),
                    g
                ],
            )
            .map_err(store(OP, "writing the items"))?;
        }
        for (pos, (r, condition)) in spec.raters.iter().zip(conditions_of(&spec)).enumerate() {
            tx.execute("INSERT INTO raters (pos, id, grp, condition, token_hash) VALUES (?1, ?2, ?3, ?4, ?5)", params![
                pos as i64,
                r.id,
                r.group,
                condition,
                hash_token(&secret.rater(&r.id))
            ])
            .map_err(store(OP, "writing the raters"))?;
        }
        tx.commit().map_err(store(OP, "committing the campaign"))?;
        Ok(Self::assemble(path, spec, columns, secret, conn))
    }

    /// Opens an existing campaign file to continue it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        const OP: &str = "feedback.open";
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::invalid(
                OP,
                "path",
                "an existing campaign file",
                path.display(),
            ));
        }
        let mut conn = connect(OP, &path)?;
        migrate(OP, &mut conn)?;
        let get = |key: &str| -> Result<String> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .map_err(store(
                    OP,
                    format!("reading '{key}' (is this a campaign file?)"),
                ))
        };
        let spec: CampaignSpec = serde_json::from_str(&get("spec")?)
            .map_err(|e| Error::invalid(OP, "path", "a campaign written by this version", e))?;
        let columns: Vec<String> = serde_json::from_str(&get("columns")?)
            .map_err(|e| Error::invalid(OP, "path", "a campaign written by this version", e))?;
        let secret = Secret::open(&key_path(&path))?;
        Ok(Self::assemble(path, spec, columns, secret, conn))
    }

    /// The campaign from its parts (the shown columns follow from the spec and the items).
    fn assemble(
        path: PathBuf,
        spec: CampaignSpec,
        columns: Vec<String>,
        secret: Secret,
        conn: Connection,
    ) -> Self {
        let shown = spec.shown_columns(&columns);
        Self {
            path,
            spec,
            columns,
            shown,
            secret,
            conn: Mutex::new(conn),
        }
    }

    pub fn spec(&self) -> &CampaignSpec {
        &self.spec
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The item columns shown to every rater.
    pub fn shown_columns(&self) -> &[String] {
        &self.shown
    }

    /// A rater's personal token (derived from the campaign's secret key; the file keeps only
    /// its hash).
    pub fn rater_token(&self, rater: &str) -> Option<String> {
        self.spec
            .raters
            .iter()
            .any(|r| r.id == rater)
            .then(|| self.secret.rater(rater))
    }

    /// The token of the campaign's admin API.
    pub fn admin_token(&self) -> String {
        self.secret.token("admin")
    }

    /// Whether `token` is the admin token.
    pub fn is_admin(&self, token: &str) -> bool {
        super::tokens::same(token, &self.admin_token())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done transaction (it rolls back on
        // drop), so the connection is still good.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `rater, group, condition, url`: each rater's page at `base` (e.g.
    /// `http://127.0.0.1:8000`).
    pub fn links(&self, base: &str) -> Result<DataFrame> {
        let conn = self.lock();
        let mut st = conn
            .prepare("SELECT id, grp, condition FROM raters ORDER BY pos")
            .map_err(store("feedback.links", "reading raters"))?;
        let rows: Vec<(String, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|it| it.collect())
            .map_err(store("feedback.links", "reading raters"))?;
        let base = base.trim_end_matches('/');
        let url: Vec<String> = rows
            .iter()
            .map(|r| format!("{base}/r/{}", self.secret.rater(&r.0)))
            .collect();
        DataFrame::new_infer_height(vec![
            Column::new(
                "rater".into(),
                rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "group".into(),
                rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "condition".into(),
                rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
            ),
            Column::new("url".into(), url),
        ])
        .map_err(Error::polars("feedback.links", "building the links table"))
    }

    fn rater(conn: &Connection, token: &str) -> Result<Option<Rater>> {
        conn.query_row(
            "SELECT pos, condition, paused_ms IS NOT NULL FROM raters WHERE token_hash = ?1",
            [hash_token(token)],
            |r| {
                Ok(Rater {
                    pos: r.get(0)?,
                    condition: r.get(1)?,
                    paused: r.get(2)?,
                })
            },
        )
        .optional()
        .map_err(store("feedback.rater", "looking up a token"))
    }

    /// Whether `token` belongs to a rater of this campaign.
    pub fn is_rater(&self, token: &str) -> Result<bool> {
        Ok(Self::rater(&self.lock(), token)?.is_some())
    }

    /// The next item for the rater holding `token` (`None`: no such rater). An item served and
    /// not yet answered is served again (a reloaded page continues where it was).
    pub fn next(&self, token: &str) -> Result<Option<Next>> {
        const OP: &str = "feedback.next";
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store(OP, "starting"))?;
        let Some(rater) = Self::rater(&tx, token)? else {
            return Ok(None);
        };
        let answered: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM assignments WHERE rater = ?1 AND done = 1",
                [rater.pos],
                |r| r.get(0),
            )
            .map_err(store(OP, "counting answers"))?;
        let answered = answered as usize;
        if rater.paused {
            return Ok(Some(Next::Paused { answered }));
        }
        let now = now_ms();
        let cut = now.saturating_sub(1000 * self.spec.lease_seconds as i64);
        // The items still open to this rater: not seen by them, fewer than `overlap` judgments
        // (counting items held by others within their lease).
        let mut st = tx
            .prepare(
                "SELECT i.pos, (SELECT COUNT(*) FROM assignments a WHERE a.item = i.pos
                                  AND (a.done = 1 OR a.served_ms > ?2)) AS n
                 FROM items i WHERE i.gold IS NULL AND NOT EXISTS
                   (SELECT 1 FROM assignments b WHERE b.rater = ?1 AND b.item = i.pos)",
            )
            .map_err(store(OP, "finding items"))?;
        let open: Vec<(i64, i64)> = st
            .query_map(params![rater.pos, cut], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect())
            .map_err(store(OP, "finding items"))?;
        drop(st);
        let open: Vec<(i64, i64)> = open
            .into_iter()
            .filter(|(_, n)| (*n as usize) < self.spec.overlap)
            .collect();
        let held: Option<(i64, bool, i64)> = tx
            .query_row("SELECT item, gold, served_ms FROM assignments WHERE rater = ?1 AND done = 0 ORDER BY served_ms LIMIT 1", [rater.pos], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(store(OP, "reading the held item"))?;
        // An item held past its lease is still this rater's if nobody filled it meanwhile (the
        // lease is renewed); otherwise it is let go and another one is served.
        let held = match held {
            Some((item, gold, served)) if gold || served > cut => Some(item),
            Some((item, _, _)) => {
                if self.others(&tx, rater.pos, item, cut)? < self.spec.overlap as i64 {
                    tx.execute(
                        "UPDATE assignments SET served_ms = ?3 WHERE rater = ?1 AND item = ?2",
                        params![rater.pos, item, now],
                    )
                    .map_err(store(OP, "renewing a lease"))?;
                    Some(item)
                } else {
                    tx.execute(
                        "DELETE FROM assignments WHERE rater = ?1 AND item = ?2 AND done = 0",
                        params![rater.pos, item],
                    )
                    .map_err(store(OP, "letting an item go"))?;
                    None
                }
            }
            None => None,
        };
        let item = match held {
            Some(item) => Some(item),
            None => {
                let rate = self.spec.gold.rate;
                // A small epsilon: 90 × 0.7 is 62.999… in floating point, not 63.
                let turn = |n: usize| (n as f64 * rate + 1e-9).floor();
                let gold_turn = turn(answered + 1) > turn(answered);
                let gold = if gold_turn && !open.is_empty() {
                    let mut st = tx
                        .prepare("SELECT pos FROM items i WHERE gold IS NOT NULL AND NOT EXISTS
                                   (SELECT 1 FROM assignments b WHERE b.rater = ?1 AND b.item = i.pos)")
                        .map_err(store(OP, "finding gold items"))?;
                    let g: Vec<i64> = st
                        .query_map([rater.pos], |r| r.get(0))
                        .and_then(|it| it.collect())
                        .map_err(store(OP, "finding gold items"))?;
                    g.into_iter()
                        .min_by_key(|&p| mix(self.spec.seed, rater.pos, p))
                } else {
                    None
                };
                let pick = gold.map(|g| (g, true)).or_else(|| {
                    open.iter()
                        .min_by_key(|(p, n)| (*n, mix(self.spec.seed, rater.pos, *p)))
                        .map(|(p, _)| (*p, false))
                });
                if let Some((p, is_gold)) = pick {
                    tx.execute("INSERT INTO assignments (rater, item, gold, served_ms) VALUES (?1, ?2, ?3, ?4)", params![rater.pos, p, is_gold, now])
                        .map_err(store(OP, "serving an item"))?;
                }
                pick.map(|(p, _)| p)
            }
        };
        let Some(item) = item else {
            // Items this rater has not seen that are short of judgments but held by others.
            let waiting: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM items i WHERE i.gold IS NULL
                       AND NOT EXISTS (SELECT 1 FROM assignments b WHERE b.rater = ?1 AND b.item = i.pos)
                       AND (SELECT COUNT(*) FROM assignments a WHERE a.item = i.pos AND a.done = 1) < ?2",
                    params![rater.pos, self.spec.overlap as i64],
                    |r| r.get(0),
                )
                .map_err(store(OP, "looking for held items"))?;
            tx.commit().map_err(store(OP, "committing"))?;
            return Ok(Some(if waiting > 0 {
                Next::Wait {
                    answered,
                    retry_seconds: self.spec.lease_seconds.min(30),
                }
            } else {
                Next::Done { answered }
            }));
        };
        let (id, data): (String, String) = tx
            .query_row("SELECT id, data FROM items WHERE pos = ?1", [item], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(store(OP, "reading the item"))?;
        tx.commit().map_err(store(OP, "committing"))?;
        let row: BTreeMap<String, String> = serde_json::from_str(&data)
            .map_err(|e| Error::invalid(OP, "path", "items as this version writes them", e))?;
        let pick = |cols: &[String]| {
            cols.iter()
                .map(|c| (c.clone(), row.get(c).cloned().unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        let condition = self
            .spec
            .conditions()
            .remove(&rater.condition)
            .unwrap_or_default();
        let remaining = open.iter().filter(|(p, _)| *p != item).count();
        Ok(Some(Next::Item(Box::new(Assignment {
            item: id,
            fields: pick(&self.shown),
            assistance: pick(&condition.show),
            assistance_heading: condition.heading,
            candidates: pick(&self.spec.candidates),
            answered,
            remaining,
        }))))
    }

    /// Records the judgment `answer` of the rater holding `token` on `item`, under the
    /// client's idempotency `key`. `None`: no such rater. Returns after the commit.
    pub fn submit(
        &self,
        token: &str,
        item: &str,
        answer: &serde_json::Value,
        key: &str,
    ) -> Result<Option<Submitted>> {
        const OP: &str = "feedback.submit";
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store(OP, "starting"))?;
        let Some(rater) = Self::rater(&tx, token)? else {
            return Ok(None);
        };
        let item_row: Option<(i64, String, Option<String>)> = tx
            .query_row(
                "SELECT pos, data, gold FROM items WHERE id = ?1",
                [item],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(store(OP, "reading the item"))?;
        let previous: Option<(i64, i64, String)> = tx
            .query_row(
                "SELECT rater, item, answer FROM judgments WHERE rater = ?1 AND key = ?2",
                params![rater.pos, key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(store(OP, "checking the key"))?;
        let data: Option<BTreeMap<String, String>> = item_row
            .as_ref()
            .and_then(|(_, d, _)| serde_json::from_str(d).ok());
        let normalised = data.as_ref().map(|row| normalise(&self.spec, row, answer));
        if let Some((r, i, a)) = previous {
            let same = r == rater.pos
                && item_row.as_ref().is_some_and(|(p, _, _)| *p == i)
                && normalised
                    .as_ref()
                    .is_some_and(|n| n.as_ref().is_ok_and(|n| *n == a));
            return Ok(Some(if same {
                Submitted::Saved {
                    duplicate: true,
                    paused: rater.paused,
                }
            } else {
                Submitted::KeyReused
            }));
        }
        let Some((pos, _, gold)) = item_row else {
            return Ok(Some(Submitted::NotAssigned));
        };
        let held: Option<(bool, bool, i64)> = tx
            .query_row(
                "SELECT done, gold, served_ms FROM assignments WHERE rater = ?1 AND item = ?2",
                params![rater.pos, pos],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(store(OP, "reading the assignment"))?;
        let Some((done, is_gold, served)) = held else {
            return Ok(Some(Submitted::NotAssigned));
        };
        if done {
            return Ok(Some(Submitted::AlreadyJudged));
        }
        if rater.paused {
            return Ok(Some(Submitted::Paused));
        }
        let now = now_ms();
        let cut = now.saturating_sub(1000 * self.spec.lease_seconds as i64);
        if !is_gold
            && served <= cut
            && self.others(&tx, rater.pos, pos, cut)? >= self.spec.overlap as i64
        {
            // The lease ran out and others filled the item: the judgment would overfill it.
            tx.execute(
                "DELETE FROM assignments WHERE rater = ?1 AND item = ?2 AND done = 0",
                params![rater.pos, pos],
            )
            .map_err(store(OP, "letting an item go"))?;
            tx.commit().map_err(store(OP, "committing"))?;
            return Ok(Some(Submitted::Expired));
        }
        let answer = match normalised.expect("an item row that parsed above") {
            Ok(a) => a,
            Err(reason) => return Ok(Some(Submitted::Invalid { reason })),
        };
        let correct = if is_gold {
            gold.as_ref().map(|g| *g == answer)
        } else {
            None
        };
        tx.execute(
            "INSERT INTO judgments (rater, item, answer, condition, gold, correct, served_ms, submitted_ms, key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![rater.pos, pos, answer, rater.condition, is_gold, correct, served, now.max(served), key],
        )
        .map_err(store(OP, "writing the judgment"))?;
        tx.execute(
            "UPDATE assignments SET done = 1 WHERE rater = ?1 AND item = ?2",
            params![rater.pos, pos],
        )
        .map_err(store(OP, "closing the assignment"))?;
        let mut paused = false;
        if let Some(c) = correct {
            let (seen, right): (i64, i64) = tx
                .query_row(
                    "UPDATE raters SET gold_seen = gold_seen + 1, gold_correct = gold_correct + ?2 WHERE pos = ?1
                     RETURNING gold_seen, gold_correct",
                    params![rater.pos, c as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(store(OP, "scoring the gold item"))?;
            let g = &self.spec.gold;
            if seen as usize >= g.min_gold && (right as f64) < g.threshold * seen as f64 {
                tx.execute(
                    "UPDATE raters SET paused_ms = ?2 WHERE pos = ?1",
                    params![rater.pos, now],
                )
                .map_err(store(OP, "pausing"))?;
                paused = true;
            }
        }
        tx.commit().map_err(store(OP, "committing the judgment"))?;
        Ok(Some(Submitted::Saved {
            duplicate: false,
            paused,
        }))
    }

    /// Judgments of `item` by raters other than `rater`, and their unexpired leases on it.
    fn others(&self, tx: &Connection, rater: i64, item: i64, cut: i64) -> Result<i64> {
        tx.query_row(
            "SELECT COUNT(*) FROM assignments WHERE item = ?1 AND rater != ?2 AND (done = 1 OR served_ms > ?3)",
            params![item, rater, cut],
            |r| r.get(0),
        )
        .map_err(store("feedback.next", "counting an item's judgments"))
    }

    /// Runs `f` on the connection (reads for the tables module).
    pub(super) fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.lock())
    }

    /// The items' columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

/// A judgment in the form the file stores it (and gold is compared to), or why it is not one.
fn normalise(
    spec: &CampaignSpec,
    row: &BTreeMap<String, String>,
    answer: &serde_json::Value,
) -> std::result::Result<String, String> {
    use serde_json::Value;
    match (spec.kind, answer) {
        (Kind::Label, Value::String(s)) if spec.choices.contains(s) => Ok(s.clone()),
        (Kind::Label, _) => Err(format!("expected one of the choices {:?}", spec.choices)),
        (Kind::Rate, Value::Number(n))
            if n.as_u64()
                .is_some_and(|v| (1..=spec.scale as u64).contains(&v)) =>
        {
            Ok(n.to_string())
        }
        (Kind::Rate, _) => Err(format!("expected an integer from 1 to {}", spec.scale)),
        (Kind::Pairwise, Value::String(s)) if s == "left" || s == "right" => {
            Ok(row.get(s.as_str()).cloned().unwrap_or_default())
        }
        (Kind::Pairwise, _) => Err("expected \"left\" or \"right\"".into()),
        (Kind::Rank, Value::Array(a)) => {
            let order: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            let mut want: Vec<&str> = spec.candidates.iter().map(String::as_str).collect();
            want.sort_unstable();
            if order.len() == a.len() && sorted == want {
                Ok(order.join(">"))
            } else {
                Err(format!(
                    "expected an order of the candidates {:?}",
                    spec.candidates
                ))
            }
        }
        (Kind::Rank, _) => Err(format!(
            "expected an order of the candidates {:?}",
            spec.candidates
        )),
        (Kind::Demo, Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_TEXT => {
            Ok(s.clone())
        }
        (Kind::Demo, _) => Err(format!("expected a text of 1 to {MAX_TEXT} characters")),
    }
}

/// A gold answer, written as text in the items' `gold` column, in the form judgments take.
fn gold_answer(
    spec: &CampaignSpec,
    row: &BTreeMap<String, String>,
    g: &str,
) -> std::result::Result<String, String> {
    use serde_json::Value;
    // A pairwise gold answer is a side's value exactly as stored (model completions often begin
    // with a space), or a side's name; everything else is compared trimmed.
    let is_side = |v: &str| {
        row.get("left").is_some_and(|l| l == v) || row.get("right").is_some_and(|r| r == v)
    };
    let raw = g;
    let g = g.trim();
    match spec.kind {
        Kind::Label => normalise(spec, row, &Value::String(g.into())),
        Kind::Rate => g
            .parse::<u64>()
            .map_err(|e| e.to_string())
            .and_then(|v| normalise(spec, row, &Value::from(v))),
        // The winner's value, as crowd-kit's pairwise label (or the side's name).
        Kind::Pairwise if is_side(raw) => Ok(raw.into()),
        Kind::Pairwise if is_side(g) => Ok(g.into()),
        Kind::Pairwise => normalise(spec, row, &Value::String(g.into())),
        Kind::Rank => normalise(
            spec,
            row,
            &Value::Array(
                g.split('>')
                    .map(|c| Value::String(c.trim().into()))
                    .collect(),
            ),
        ),
        Kind::Demo => Err("no gold for free text".into()),
    }
}

fn gold_expected(spec: &CampaignSpec) -> String {
    match spec.kind {
        Kind::Label => format!("gold answers among the choices {:?}", spec.choices),
        Kind::Rate => format!("gold ratings from 1 to {}", spec.scale),
        Kind::Pairwise => "gold answers equal to the item's 'left' or 'right' value".into(),
        Kind::Rank => format!(
            "gold orders of the candidates {:?}, as \"b>a>c\"",
            spec.candidates
        ),
        Kind::Demo => "no gold items for kind 'demo' (free text has no single right answer)".into(),
    }
}

/// Each rater's condition: the group's, or an even random split for `"random"` groups.
fn conditions_of(spec: &CampaignSpec) -> Vec<String> {
    let conditions: Vec<String> = spec.conditions().into_keys().collect();
    let mut out: Vec<String> = spec
        .raters
        .iter()
        .map(|r| {
            spec.groups
                .get(&r.group)
                .cloned()
                .unwrap_or_else(|| conditions[0].clone())
        })
        .collect();
    for (group, how) in &spec.groups {
        if how != "random" {
            continue;
        }
        let mut members: Vec<usize> = (0..spec.raters.len())
            .filter(|&i| &spec.raters[i].group == group)
            .collect();
        Rng::derived(spec.seed, 0xAB).shuffle(&mut members);
        for (k, i) in members.into_iter().enumerate() {
            out[i] = conditions[k % conditions.len()].clone();
        }
    }
    out
}

/// Every column of `items` as optional text.
fn strings_of(
    op: &'static str,
    items: &DataFrame,
    columns: &[String],
) -> Result<BTreeMap<String, Vec<Option<String>>>> {
    let mut out = BTreeMap::new();
    for c in columns {
        let col = items
            .column(c)
            .map_err(Error::polars(op, format!("reading '{c}'")))?;
        let text = col
            .cast(&DataType::String)
            .map_err(Error::polars(op, format!("reading '{c}' as text")))?;
        let s = text
            .str()
            .map_err(Error::polars(op, format!("reading '{c}' as text")))?;
        out.insert(c.clone(), s.iter().map(|v| v.map(str::to_string)).collect());
    }
    Ok(out)
}

fn key_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

fn connect(op: &'static str, path: &Path) -> Result<Connection> {
    let conn =
        Connection::open(path).map_err(store(op, format!("opening '{}'", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(store(op, "setting the busy timeout"))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(store(op, "switching to WAL"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(store(op, "setting synchronous = FULL"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(store(op, "enabling foreign keys"))?;
    Ok(conn)
}

fn migrate(op: &'static str, conn: &mut Connection) -> Result<()> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(store(op, "reading the schema version"))?;
    if version as usize > MIGRATIONS.len() {
        return Err(Error::invalid(
            op,
            "path",
            format!(
                "a campaign file of schema ≤ {} (this version)",
                MIGRATIONS.len()
            ),
            format!("schema {version}: written by a newer sandwich"),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(store(op, "migrating"))?;
        tx.execute_batch(sql)
            .map_err(store(op, format!("migration {}", i + 1)))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(store(op, "migrating"))?;
        tx.commit().map_err(store(op, "migrating"))?;
    }
    Ok(())
}

/// Wraps an SQLite error with the operation and what it was doing.
pub(super) fn store(
    op: &'static str,
    context: impl Into<String>,
) -> impl FnOnce(rusqlite::Error) -> Error {
    let context = context.into();
    move |source| Error::Store {
        op,
        context,
        source,
    }
}
