//! The verbs DataFrame and LazyFrame share, written once over `LazyFrame`.
//!
//! An eager verb is the lazy verb followed by `collect`, as in py-polars; this keeps one
//! implementation and lets polars optimise even eager pipelines.

use crate::guard::GuardedMethods;
use mlua::{AnyUserData, Lua, UserData, UserDataMethods, Value, Variadic};
use polars::prelude::*;
use serde::Deserialize;

use crate::args::{column_exprs, names, nonempty_exprs, options, type_name, OneOrMany};
use crate::error::Error;
use crate::frame::LuaDataFrame;
use crate::lazy::{LuaGroupBy, LuaLazyFrame};

/// A table userdata that can be seen as a lazy query and rebuilt from one.
pub(crate) trait Frame: UserData + Send + Sync + Sized + 'static {
    const EAGER: bool;
    fn to_lazy(&self) -> LazyFrame;
    fn from_lazy(lf: LazyFrame, function: &'static str) -> mlua::Result<Self>;
}

/// The other table of a join or concat, lazy whatever its kind.
pub(crate) fn lazy_arg(function: &str, argument: &str, v: &Value) -> mlua::Result<LazyFrame> {
    if let Value::UserData(ud) = v {
        if let Ok(df) = ud.borrow::<LuaDataFrame>() {
            return Ok(df.0.clone().lazy());
        }
        if let Ok(lf) = ud.borrow::<LuaLazyFrame>() {
            return Ok(lf.0.clone());
        }
    }
    Err(Error::argument(function, argument, "a DataFrame or LazyFrame", type_name(v)).into())
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SortOpts {
    descending: Option<OneOrMany<bool>>,
    nulls_last: Option<OneOrMany<bool>>,
    maintain_order: bool,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct JoinOpts {
    on: Option<OneOrMany<String>>,
    left_on: Option<OneOrMany<String>>,
    right_on: Option<OneOrMany<String>>,
    how: String,
    suffix: String,
    /// Whether null keys match each other (polars' `nulls_equal`).
    nulls_equal: bool,
}

impl Default for JoinOpts {
    fn default() -> Self {
        Self {
            on: None,
            left_on: None,
            right_on: None,
            how: "inner".into(),
            suffix: "_right".into(),
            nulls_equal: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UniqueOpts {
    subset: Option<OneOrMany<String>>,
    keep: String,
    /// Keep rows in their first-seen order (the default here, unlike polars', so that results
    /// are reproducible).
    maintain_order: bool,
}

impl Default for UniqueOpts {
    fn default() -> Self {
        Self {
            subset: None,
            keep: "any".into(),
            maintain_order: true,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GroupByOpts {
    maintain_order: bool,
}

fn flags(
    function: &str,
    argument: &str,
    v: Option<OneOrMany<bool>>,
    n: usize,
) -> mlua::Result<Vec<bool>> {
    match v {
        None => Ok(vec![false; n]),
        Some(OneOrMany::One(b)) => Ok(vec![b; n]),
        Some(OneOrMany::Many(v)) if v.len() == n => Ok(v),
        Some(OneOrMany::Many(v)) => Err(Error::argument(
            function,
            argument,
            &format!("one boolean or one per sort key ({n})"),
            format!("{} booleans", v.len()),
        )
        .into()),
    }
}

fn join_type(function: &str, how: &str) -> mlua::Result<JoinType> {
    Ok(match how {
        "inner" => JoinType::Inner,
        "left" => JoinType::Left,
        "right" => JoinType::Right,
        "full" | "outer" => JoinType::Full,
        "semi" => JoinType::Semi,
        "anti" => JoinType::Anti,
        "cross" => JoinType::Cross,
        other => {
            return Err(Error::argument(
                function,
                "how",
                "one of inner, left, right, full, semi, anti, cross",
                format!("{other:?}"),
            )
            .into())
        }
    })
}

fn keep_strategy(function: &str, keep: &str) -> mlua::Result<UniqueKeepStrategy> {
    Ok(match keep {
        "first" => UniqueKeepStrategy::First,
        "last" => UniqueKeepStrategy::Last,
        "any" => UniqueKeepStrategy::Any,
        "none" => UniqueKeepStrategy::None,
        other => {
            return Err(Error::argument(
                function,
                "keep",
                "one of first, last, any, none",
                format!("{other:?}"),
            )
            .into())
        }
    })
}

fn by_name(names: Vec<String>) -> Selector {
    Selector::ByName {
        names: names.into_iter().map(PlSmallStr::from).collect(),
        strict: true,
    }
}

fn count_arg(function: &'static str, argument: &str, n: Option<i64>) -> mlua::Result<usize> {
    let n = n.unwrap_or(5);
    usize::try_from(n).map_err(|_| {
        Error::argument(function, argument, "a non-negative integer", n.to_string()).into()
    })
}

/// Adds the shared verbs to a frame type's methods.
pub(crate) fn add_verbs<T: Frame, M: UserDataMethods<T>>(m: &mut M) {
    macro_rules! name {
        ($verb:literal) => {
            if T::EAGER {
                concat!("DataFrame.", $verb)
            } else {
                concat!("LazyFrame.", $verb)
            }
        };
    }
    m.guarded_method("select", |_, this, args: Variadic<Value>| {
        let exprs = nonempty_exprs(name!("select"), "exprs", &args)?;
        T::from_lazy(this.to_lazy().select(exprs), name!("select"))
    });
    m.guarded_method("with_columns", |_, this, args: Variadic<Value>| {
        let exprs = nonempty_exprs(name!("with_columns"), "exprs", &args)?;
        T::from_lazy(this.to_lazy().with_columns(exprs), name!("with_columns"))
    });
    m.guarded_method("filter", |_, this, args: Variadic<Value>| {
        for a in args.iter() {
            crate::args::predicate(name!("filter"), "predicate", a)?;
        }
        let predicates = nonempty_exprs(name!("filter"), "predicate", &args)?;
        let predicate = predicates.into_iter().reduce(Expr::and).expect("nonempty");
        T::from_lazy(this.to_lazy().filter(predicate), name!("filter"))
    });
    m.guarded_method("sort", |lua, this, (by, opts): (Value, Option<Value>)| {
        let f = name!("sort");
        let by = column_exprs(f, "by", std::slice::from_ref(&by))?;
        if by.is_empty() {
            return Err(Error::argument(f, "by", "at least one sort key", "nothing").into());
        }
        let o: SortOpts = options(lua, f, opts)?;
        let sort = SortMultipleOptions::default()
            .with_order_descending_multi(flags(f, "descending", o.descending, by.len())?)
            .with_nulls_last_multi(flags(f, "nulls_last", o.nulls_last, by.len())?)
            .with_maintain_order(o.maintain_order);
        T::from_lazy(this.to_lazy().sort_by_exprs(by, sort), f)
    });
    m.guarded_method(
        "group_by",
        |lua, this, (keys, opts): (Value, Option<Value>)| {
            let f = name!("group_by");
            let keys = column_exprs(f, "keys", std::slice::from_ref(&keys))?;
            if keys.is_empty() {
                return Err(Error::argument(f, "keys", "at least one key", "nothing").into());
            }
            let o: GroupByOpts = options(lua, f, opts)?;
            Ok(LuaGroupBy {
                lf: this.to_lazy(),
                keys,
                maintain_order: o.maintain_order,
                eager: T::EAGER,
            })
        },
    );
    m.guarded_method(
        "join",
        |lua, this, (other, opts): (Value, Option<Value>)| {
            let f = name!("join");
            let other = lazy_arg(f, "other", &other)?;
            let o: JoinOpts = options(lua, f, opts)?;
            let how = join_type(f, &o.how)?;
            let (left, right) = match (o.on, o.left_on, o.right_on) {
                (Some(on), None, None) => (on.clone().into_vec(), on.into_vec()),
                (None, Some(l), Some(r)) => (l.into_vec(), r.into_vec()),
                (None, None, None) if matches!(how, JoinType::Cross) => (vec![], vec![]),
                _ => {
                    return Err(Error::argument(
                        f,
                        "options",
                        "either 'on', or both 'left_on' and 'right_on'",
                        "another combination",
                    )
                    .into())
                }
            };
            if left.len() != right.len() {
                return Err(Error::argument(
                    f,
                    "right_on",
                    &format!("as many keys as left_on ({})", left.len()),
                    right.len().to_string(),
                )
                .into());
            }
            let mut args = JoinArgs::new(how).with_suffix(Some(o.suffix.into()));
            args.nulls_equal = o.nulls_equal;
            let to_exprs =
                |v: Vec<String>| v.into_iter().map(|s| col(s.as_str())).collect::<Vec<_>>();
            let lf = this
                .to_lazy()
                .join(other, to_exprs(left), to_exprs(right), args);
            T::from_lazy(lf, f)
        },
    );
    m.guarded_method("unique", |lua, this, opts: Option<Value>| {
        let f = name!("unique");
        let o: UniqueOpts = options(lua, f, opts)?;
        let keep = keep_strategy(f, &o.keep)?;
        let subset = o.subset.map(|s| by_name(s.into_vec()));
        let lf = this.to_lazy();
        let lf = if o.maintain_order {
            lf.unique_stable(subset, keep)
        } else {
            lf.unique(subset, keep)
        };
        T::from_lazy(lf, f)
    });
    m.guarded_method("drop_nulls", |_, this, subset: Option<Value>| {
        let f = name!("drop_nulls");
        let subset = subset
            .map(|v| names(f, "subset", &v))
            .transpose()?
            .map(by_name);
        T::from_lazy(this.to_lazy().drop_nulls(subset), f)
    });
    m.guarded_method("rename", |_, this, (a, b): (Value, Value)| {
        let f = name!("rename");
        let new = match b {
            Value::Nil => None,
            b => Some(crate::args::string(f, "new", &b)?),
        };
        let (old, new): (Vec<String>, Vec<String>) = match (a, new) {
            (Value::String(old), Some(new)) => (vec![old.to_str()?.to_string()], vec![new]),
            (Value::Table(t), None) => {
                // Strictly strings: mlua would turn `{a = 5}` into the name "5".
                let mut pairs: Vec<(String, String)> = t
                    .pairs::<Value, Value>()
                    .map(|p| match p? {
                        (Value::String(k), Value::String(v)) => {
                            Ok((k.to_str()?.to_string(), v.to_str()?.to_string()))
                        }
                        _ => Err(mlua::Error::runtime("not a string")),
                    })
                    .collect::<mlua::Result<_>>()
                    .map_err(|_| {
                        Error::argument(
                            f,
                            "mapping",
                            "a table {old = new} of strings",
                            "other values",
                        )
                    })?;
                pairs.sort();
                pairs.into_iter().unzip()
            }
            (other, _) => {
                return Err(Error::argument(
                    f,
                    "mapping",
                    "a table {old = new}, or two names",
                    type_name(&other),
                )
                .into())
            }
        };
        T::from_lazy(this.to_lazy().rename(old, new, true), f)
    });
    m.guarded_method("drop", |_, this, args: Variadic<Value>| {
        let f = name!("drop");
        let mut cols = Vec::new();
        for v in args.iter() {
            cols.extend(names(f, "columns", v)?);
        }
        T::from_lazy(this.to_lazy().drop(by_name(cols)), f)
    });
    m.guarded_method("head", |_, this, n: Value| {
        let n = count_arg(
            name!("head"),
            "n",
            crate::args::integer(name!("head"), "n", &n)?,
        )?;
        T::from_lazy(this.to_lazy().limit(n as IdxSize), name!("head"))
    });
    m.guarded_method("tail", |_, this, n: Value| {
        let n = count_arg(
            name!("tail"),
            "n",
            crate::args::integer(name!("tail"), "n", &n)?,
        )?;
        T::from_lazy(this.to_lazy().tail(n as IdxSize), name!("tail"))
    });
    m.guarded_method("slice", |_, this, (offset, length): (Value, Value)| {
        let f = name!("slice");
        let offset = crate::args::integer(f, "offset", &offset)?
            .ok_or_else(|| mlua::Error::from(Error::argument(f, "offset", "an integer", "nil")))?;
        let length = match crate::args::integer(f, "length", &length)? {
            None => IdxSize::MAX,
            Some(l) => count_arg(f, "length", Some(l))? as IdxSize,
        };
        T::from_lazy(this.to_lazy().slice(offset, length), f)
    });
}

/// Runs an aggregation of a group-by; shared by `GroupBy:agg`.
pub(crate) fn aggregate(
    lua: &Lua,
    g: &LuaGroupBy,
    args: &Variadic<Value>,
) -> mlua::Result<AnyUserData> {
    let f = if g.eager {
        "DataFrame.group_by(...):agg"
    } else {
        "LazyFrame.group_by(...):agg"
    };
    let aggs = nonempty_exprs(f, "aggs", args)?;
    let grouped = if g.maintain_order {
        g.lf.clone().group_by_stable(g.keys.clone())
    } else {
        g.lf.clone().group_by(g.keys.clone())
    };
    let lf = grouped.agg(aggs);
    if g.eager {
        lua.create_userdata(LuaDataFrame::from_lazy(lf, "DataFrame.group_by(...):agg")?)
    } else {
        lua.create_userdata(LuaLazyFrame(lf))
    }
}

/// The verbs above, for introspection (`sw._methods`, completion in the kernel).
pub(crate) const VERBS: &[&str] = &[
    "select",
    "with_columns",
    "filter",
    "sort",
    "group_by",
    "join",
    "unique",
    "drop_nulls",
    "rename",
    "drop",
    "head",
    "tail",
    "slice",
];
