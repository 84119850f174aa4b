//! What a campaign asks of its raters: the kind of judgment, what each rater is shown, overlap,
//! gold items and the quality rule, and who rates under which condition. One serde type, with
//! every table closed to unknown keys, so a typo in a Lua or Python spec is an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::validate::{positive_count, within};
use crate::{Error, Options, Result};

/// The kinds of judgment a rater page can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One of `choices`.
    Label,
    /// Which of two things is better: the item's `left` and `right` columns name them; the
    /// answer is the winner's value (crowd-kit's pairwise `label`).
    Pairwise,
    /// An order of the item's `candidates` columns, best first: `"b>a>c"`.
    Rank,
    /// A Likert rating from 1 to `scale`.
    Rate,
    /// Free text (a demonstration).
    Demo,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Label => "label",
            Kind::Pairwise => "pairwise",
            Kind::Rank => "rank",
            Kind::Rate => "rate",
            Kind::Demo => "demo",
        }
    }
}

/// A rater: an id and the group they belong to (`novice`, `expert`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaterSpec {
    pub id: String,
    #[serde(default = "default_group")]
    pub group: String,
}

fn default_group() -> String {
    "novice".into()
}

/// What a condition adds to the page: the item columns shown as assistance (the model's
/// answer, its confidence, a critique, ...), under a heading. No columns: unassisted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    #[serde(default)]
    pub show: Vec<String>,
    #[serde(default = "default_heading")]
    pub heading: String,
}

fn default_heading() -> String {
    "Assistance".into()
}

/// Gold items (their answers are the items frame's `gold` column) and how often they appear.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldSpec {
    /// The share of a rater's items that are gold, interleaved evenly (0.2: every fifth).
    #[serde(default = "default_gold_rate")]
    pub rate: f64,
    /// Gold answers a rater must have given before the threshold applies.
    #[serde(default = "default_min_gold")]
    pub min_gold: usize,
    /// A rater whose gold accuracy falls below this after `min_gold` gold items is paused:
    /// they get no more items, and their judgments are kept and flagged.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_gold_rate() -> f64 {
    0.2
}
fn default_min_gold() -> usize {
    3
}
fn default_threshold() -> f64 {
    0.6
}

impl Default for GoldSpec {
    fn default() -> Self {
        Self {
            rate: default_gold_rate(),
            min_gold: default_min_gold(),
            threshold: default_threshold(),
        }
    }
}

/// A campaign's specification (everything but its items and its file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    #[serde(default = "default_name")]
    pub name: String,
    pub kind: Kind,
    /// `label`: the answers a rater chooses from (at least two).
    #[serde(default)]
    pub choices: Vec<String>,
    /// `rate`: the number of points of the Likert scale (2 to 11).
    #[serde(default = "default_scale")]
    pub scale: u32,
    /// `rank`: the item columns to put in order (at least two).
    #[serde(default)]
    pub candidates: Vec<String>,
    /// The item columns every rater sees (default: every column but `id`, `gold` and the
    /// conditions' assistance columns).
    #[serde(default)]
    pub show: Vec<String>,
    /// Shown above each item, in a Markdown subset (never raw HTML).
    #[serde(default)]
    pub instructions: String,
    /// Judgments wanted per (non-gold) item.
    #[serde(default = "default_overlap")]
    pub overlap: usize,
    #[serde(default)]
    pub gold: GoldSpec,
    /// Condition name → what it shows. Default: one condition, `unassisted`.
    #[serde(default)]
    pub conditions: BTreeMap<String, ConditionSpec>,
    pub raters: Vec<RaterSpec>,
    /// Group → condition name, or `"random"`: the group's raters are split evenly between the
    /// conditions at random (seeded). A group not listed gets the first condition.
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How long an item served to a rater is held for them before it may go to another rater
    /// to fill its overlap.
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
}

fn default_name() -> String {
    "campaign".into()
}
fn default_scale() -> u32 {
    5
}
fn default_overlap() -> usize {
    3
}
fn default_seed() -> u64 {
    1
}
fn default_lease() -> u64 {
    600
}

/// The condition every rater gets when a spec names none.
pub const UNASSISTED: &str = "unassisted";

impl CampaignSpec {
    /// The conditions, with the default one when the spec names none.
    pub fn conditions(&self) -> BTreeMap<String, ConditionSpec> {
        if self.conditions.is_empty() {
            BTreeMap::from([(UNASSISTED.to_string(), ConditionSpec::default())])
        } else {
            self.conditions.clone()
        }
    }

    /// Checks what can be checked without the items.
    fn check_alone(&self, op: &'static str) -> Result<()> {
        positive_count(op, "overlap", self.overlap)?;
        within(op, "gold.rate", self.gold.rate, 0.0, 1.0, true)?;
        within(op, "gold.threshold", self.gold.threshold, 0.0, 1.0, false)?;
        positive_count(op, "gold.min_gold", self.gold.min_gold)?;
        // At most a week: a lease is a hold on an item, not a reservation.
        if !(1..=604_800).contains(&self.lease_seconds) {
            return Err(Error::invalid(
                op,
                "lease_seconds",
                "an integer in [1, 604800] (a week)",
                self.lease_seconds,
            ));
        }
        match self.kind {
            Kind::Label if self.choices.len() < 2 => {
                return Err(Error::invalid(
                    op,
                    "choices",
                    "at least two choices",
                    self.choices.len(),
                ))
            }
            Kind::Rate if !(2..=11).contains(&self.scale) => {
                return Err(Error::invalid(
                    op,
                    "scale",
                    "an integer in [2, 11]",
                    self.scale,
                ))
            }
            Kind::Rank if self.candidates.len() < 2 => {
                return Err(Error::invalid(
                    op,
                    "candidates",
                    "at least two item columns",
                    self.candidates.len(),
                ))
            }
            _ => {}
        }
        if let Some(dup) = duplicate(self.choices.iter()) {
            return Err(Error::invalid(
                op,
                "choices",
                "distinct choices",
                format!("'{dup}' twice"),
            ));
        }
        if self.raters.is_empty() {
            return Err(Error::invalid(op, "raters", "at least one rater", "none"));
        }
        if let Some(dup) = duplicate(self.raters.iter().map(|r| &r.id)) {
            return Err(Error::invalid(
                op,
                "raters",
                "distinct rater ids",
                format!("'{dup}' twice"),
            ));
        }
        if let Some(r) = self.raters.iter().find(|r| !is_plain_id(&r.id)) {
            return Err(Error::invalid(
                op,
                "raters",
                "ids of 1 to 64 letters, digits, '-', '_' or '.'",
                format!("'{}'", r.id),
            ));
        }
        let conditions = self.conditions();
        for (group, condition) in &self.groups {
            if condition != "random" && !conditions.contains_key(condition) {
                return Err(Error::invalid(
                    op,
                    "groups",
                    format!("a condition ({}) or \"random\"", names(conditions.keys())),
                    format!("'{condition}' for group '{group}'"),
                ));
            }
            if !self.raters.iter().any(|r| &r.group == group) {
                return Err(Error::invalid(
                    op,
                    "groups",
                    "groups that some rater belongs to",
                    format!("'{group}'"),
                ));
            }
        }
        Ok(())
    }

    /// Checks the spec against the items' columns: every column it names must exist.
    pub fn check_columns(&self, op: &'static str, columns: &[String]) -> Result<()> {
        let has = |c: &String| columns.contains(c);
        let mut named: Vec<(&'static str, &String)> = Vec::new();
        named.extend(self.show.iter().map(|c| ("show", c)));
        named.extend(self.candidates.iter().map(|c| ("candidates", c)));
        let conditions = self.conditions();
        for c in conditions.values() {
            named.extend(c.show.iter().map(|c| ("conditions", c)));
        }
        if let Some((arg, c)) = named.into_iter().find(|(_, c)| !has(c)) {
            return Err(Error::invalid(
                op,
                arg,
                format!("columns of the items ({})", names(columns.iter())),
                format!("'{c}'"),
            ));
        }
        if self.kind == Kind::Pairwise {
            for side in ["left", "right"] {
                if !columns.iter().any(|c| c == side) {
                    return Err(Error::invalid(
                        op,
                        "items",
                        "'left' and 'right' columns for kind 'pairwise'",
                        format!("no '{side}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The columns shown to every rater.
    pub fn shown_columns(&self, columns: &[String]) -> Vec<String> {
        if !self.show.is_empty() {
            return self.show.clone();
        }
        let assist: Vec<String> = self
            .conditions()
            .into_values()
            .flat_map(|c| c.show)
            .collect();
        columns
            .iter()
            .filter(|c| *c != "id" && *c != "gold" && !assist.contains(c))
            .cloned()
            .collect()
    }
}

impl Options for CampaignSpec {
    fn check(&self, op: &'static str) -> Result<()> {
        self.check_alone(op)
    }
}

fn duplicate<'a>(mut it: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    let mut seen = std::collections::HashSet::new();
    it.find(|x| !seen.insert(*x))
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    it.map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
}

/// Rater ids go into URLs and file names: keep them plain.
fn is_plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
