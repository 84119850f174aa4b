//! Feedback campaigns with real raters: the items, the raters and their conditions (Bowman et
//! al.'s unassisted vs model-assisted design), assignment that fills each item to its overlap
//! and never shows a rater an item twice, interleaved gold items with a pause rule, and the
//! judgments and per-rater quality as DataFrames in crowd-kit's columns. The store is one
//! SQLite file per campaign; the web app that serves the rater pages (`sandwich-serve`) works
//! through [`Campaign::next`] and [`Campaign::submit`] only.
//!
//! ```no_run
//! use sandwich_core::feedback::{Campaign, CampaignSpec};
//! # fn main() -> sandwich_core::Result<()> {
//! # let items = polars::prelude::DataFrame::empty();
//! let spec: CampaignSpec = serde_json::from_str(r#"{"kind": "label", "choices": ["neg", "pos"],
//!     "raters": [{"id": "ann"}, {"id": "bo"}], "overlap": 2}"#).unwrap();
//! let c = Campaign::create("c.db", spec, &items)?;
//! println!("{}", c.links("http://127.0.0.1:8000")?);
//! # Ok(()) }
//! ```

mod markdown;
mod spec;
mod store;
mod tables;
mod tokens;

pub use markdown::{escape_html, markdown_to_html};
pub use spec::{CampaignSpec, ConditionSpec, GoldSpec, Kind, RaterSpec, UNASSISTED};
pub use store::{Assignment, Campaign, Next, Submitted, MAX_TEXT};
