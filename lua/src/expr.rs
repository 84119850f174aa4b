//! `sw.col`, `sw.lit`, `sw.len`, `sw.when` and the Expr userdata.
//!
//! Lua 5.4 turns the results of `__eq`, `__lt` and `__le` into booleans, so an expression
//! comparison cannot be an operator: those metamethods raise an error naming the method to use
//! (`:eq`, `:lt`, ...). Arithmetic and logic (`& | ~`) are metamethods.

use crate::guard::{GuardedFields, GuardedLua, GuardedMethods};
use mlua::{Lua, MetaMethod, UserData, UserDataMethods, Value, Variadic};
use polars::prelude::*;
use serde::Deserialize;

use crate::args::{column_exprs, dtype, names, options, type_name, value_expr};
use crate::error::{Error, PolarsContext};

/// An expression: `sw.col("a") * 2`.
#[derive(Clone)]
pub(crate) struct LuaExpr(pub Expr);

/// The string namespace of an expression: `e.str:contains("x")`.
#[derive(Clone)]
pub(crate) struct LuaStrNamespace(Expr);

/// `sw.when(cond):then_(a)` waiting for `otherwise` (or another `when`).
#[derive(Clone)]
pub(crate) struct LuaWhen {
    branches: Vec<(Expr, Option<Expr>)>,
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    let sw = crate::module(lua)?;
    sw.set(
        "col",
        lua.guarded_function(|_, (names_or_name,): (Value,)| {
            let cols = names("sw.col", "name", &names_or_name)?;
            Ok(LuaExpr(if cols.len() == 1 {
                col(cols[0].as_str())
            } else {
                cols_expr(cols)
            }))
        })?,
    )?;
    sw.set(
        "lit",
        lua.guarded_function(|_, v: Value| Ok(LuaExpr(value_expr("sw.lit", "value", &v)?)))?,
    )?;
    sw.set("len", lua.guarded_function(|_, ()| Ok(LuaExpr(len())))?)?;
    sw.set(
        "when",
        lua.guarded_function(|_, cond: Value| {
            crate::args::predicate("sw.when", "condition", &cond)?;
            Ok(LuaWhen {
                branches: vec![(value_expr("sw.when", "condition", &cond)?, None)],
            })
        })?,
    )?;
    sw.set("null", Value::NULL)?;
    Ok(())
}

fn cols_expr(names: Vec<String>) -> Expr {
    polars::prelude::cols(
        names
            .iter()
            .map(|s| PlSmallStr::from(s.as_str()))
            .collect::<Vec<_>>(),
    )
    .as_expr()
}

fn operand(function: &str, v: &Value) -> mlua::Result<Expr> {
    value_expr(function, "operand", v)
}

fn binary(
    function: &'static str,
    f: fn(Expr, Expr) -> Expr,
) -> impl Fn(&Lua, (Value, Value)) -> mlua::Result<LuaExpr> {
    move |_, (a, b)| Ok(LuaExpr(f(operand(function, &a)?, operand(function, &b)?)))
}

fn comparison_error(op: &str, method: &str) -> mlua::Error {
    Error::Usage {
        function: format!("Expr {op}"),
        message: format!(
            "Lua turns the result of {op} into a boolean, so it cannot build an expression; \
             use the method instead: {method}"
        ),
    }
    .into()
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SortOpts {
    descending: bool,
    nulls_last: bool,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct QuantileOpts {
    /// `nearest`, `lower`, `higher`, `midpoint` or `linear` (the default, as numpy).
    method: Option<String>,
}

fn quantile_method(name: Option<&str>) -> mlua::Result<QuantileMethod> {
    Ok(match name.unwrap_or("linear") {
        "nearest" => QuantileMethod::Nearest,
        "lower" => QuantileMethod::Lower,
        "higher" => QuantileMethod::Higher,
        "midpoint" => QuantileMethod::Midpoint,
        "linear" => QuantileMethod::Linear,
        other => {
            return Err(Error::argument(
                "Expr.quantile",
                "method",
                "one of nearest, lower, higher, midpoint, linear",
                format!("{other:?}"),
            )
            .into())
        }
    })
}

fn ddof(function: &str, v: Value) -> mlua::Result<u8> {
    let v = crate::args::integer(function, "ddof", &v)?.unwrap_or(1);
    u8::try_from(v).map_err(|_| {
        Error::argument(function, "ddof", "an integer from 0 to 255", v.to_string()).into()
    })
}

impl UserData for LuaExpr {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.guarded_meta_function(MetaMethod::Add, binary("Expr +", |a, b| a + b));
        m.guarded_meta_function(MetaMethod::Sub, binary("Expr -", |a, b| a - b));
        m.guarded_meta_function(MetaMethod::Mul, binary("Expr *", |a, b| a * b));
        m.guarded_meta_function(MetaMethod::Div, binary("Expr /", Expr::true_div));
        m.guarded_meta_function(MetaMethod::IDiv, binary("Expr //", Expr::floor_div));
        m.guarded_meta_function(MetaMethod::Mod, binary("Expr %", |a, b| a % b));
        m.guarded_meta_function(MetaMethod::Pow, binary("Expr ^", |a, b| a.pow(b)));
        m.guarded_meta_function(MetaMethod::BAnd, binary("Expr &", Expr::and));
        m.guarded_meta_function(MetaMethod::BOr, binary("Expr |", Expr::or));
        m.guarded_meta_function(MetaMethod::BXor, binary("Expr ~", Expr::xor));
        m.guarded_meta_method(MetaMethod::Unm, |_, this, ()| Ok(LuaExpr(-this.0.clone())));
        m.guarded_meta_method(MetaMethod::BNot, |_, this, ()| {
            Ok(LuaExpr(this.0.clone().not()))
        });
        m.guarded_meta_function(
            MetaMethod::Eq,
            |_, (_a, _b): (Value, Value)| -> mlua::Result<bool> {
                Err(comparison_error("== or ~=", "a:eq(b) or a:ne(b)"))
            },
        );
        m.guarded_meta_function(
            MetaMethod::Lt,
            |_, (_a, _b): (Value, Value)| -> mlua::Result<bool> {
                Err(comparison_error("< or >", "a:lt(b) or a:gt(b)"))
            },
        );
        m.guarded_meta_function(
            MetaMethod::Le,
            |_, (_a, _b): (Value, Value)| -> mlua::Result<bool> {
                Err(comparison_error("<= or >=", "a:le(b) or a:ge(b)"))
            },
        );
        m.guarded_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("{}", this.0))
        });

        macro_rules! compare {
            ($($name:literal => $method:ident),*) => {$(
                m.guarded_method($name, |_, this, other: Value| {
                    let rhs = value_expr(concat!("Expr.", $name), "other", &other)?;
                    Ok(LuaExpr(this.0.clone().$method(rhs)))
                });
            )*};
        }
        compare!("eq" => eq, "ne" => neq, "gt" => gt, "ge" => gt_eq, "lt" => lt, "le" => lt_eq);
        // Lua's `and`/`or` cannot be overloaded: the logical combinations are methods too.
        compare!("and_" => and, "or_" => or);

        macro_rules! unary {
            ($($name:literal => $f:expr),*) => {$(
                m.guarded_method($name, |_, this, ()| Ok(LuaExpr(($f)(this.0.clone()))));
            )*};
        }
        unary!(
            "is_null" => Expr::is_null,
            "is_not_null" => Expr::is_not_null,
            "abs" => Expr::abs,
            "sum" => Expr::sum,
            "mean" => Expr::mean,
            "median" => Expr::median,
            "min" => Expr::min,
            "max" => Expr::max,
            "count" => Expr::count,
            "n_unique" => Expr::n_unique,
            "first" => Expr::first,
            "last" => Expr::last,
            "not_" => Expr::not
        );

        m.guarded_method("alias", |_, this, name: Value| {
            let name = crate::args::string("Expr.alias", "name", &name)?;
            Ok(LuaExpr(this.0.clone().alias(name)))
        });
        m.guarded_method("cast", |_, this, name: Value| {
            let name = crate::args::string("Expr.cast", "dtype", &name)?;
            Ok(LuaExpr(
                this.0.clone().strict_cast(dtype("Expr.cast", &name)?),
            ))
        });
        m.guarded_method("is_in", |lua, this, values: Value| {
            let other = match &values {
                Value::Table(t) => {
                    let items: Vec<Value> = t.sequence_values().collect::<mlua::Result<_>>()?;
                    let s =
                        crate::convert::series_from_values(lua, "Expr.is_in", "values", &items)?;
                    lit(s).implode(false)
                }
                other => value_expr("Expr.is_in", "values", other)?,
            };
            Ok(LuaExpr(this.0.clone().is_in(other, false)))
        });
        m.guarded_method("fill_null", |_, this, v: Value| {
            Ok(LuaExpr(this.0.clone().fill_null(value_expr(
                "Expr.fill_null",
                "value",
                &v,
            )?)))
        });
        m.guarded_method("over", |_, this, keys: Variadic<Value>| {
            let keys = column_exprs("Expr.over", "partition_by", &keys)?;
            Ok(LuaExpr(this.0.clone().over(keys).ctx("Expr.over")?))
        });
        m.guarded_method("sort", |lua, this, opts: Option<Value>| {
            let o: SortOpts = options(lua, "Expr.sort", opts)?;
            Ok(LuaExpr(
                this.0.clone().sort(
                    SortOptions::default()
                        .with_order_descending(o.descending)
                        .with_nulls_last(o.nulls_last),
                ),
            ))
        });
        m.guarded_method("round", |_, this, decimals: Value| {
            let d = crate::args::integer("Expr.round", "decimals", &decimals)?.unwrap_or(0);
            let d = u32::try_from(d).map_err(|_| {
                Error::argument(
                    "Expr.round",
                    "decimals",
                    "a non-negative integer",
                    d.to_string(),
                )
            })?;
            Ok(LuaExpr(this.0.clone().round(d, RoundMode::HalfToEven)))
        });
        m.guarded_method("clip", |_, this, (lo, hi): (Value, Value)| {
            let e = this.0.clone();
            Ok(LuaExpr(match (lo, hi) {
                (Value::Nil, Value::Nil) => {
                    return Err(Error::argument(
                        "Expr.clip",
                        "lower, upper",
                        "at least one bound",
                        "two nils",
                    )
                    .into())
                }
                (lo, Value::Nil) => e.clip_min(value_expr("Expr.clip", "lower", &lo)?),
                (Value::Nil, hi) => e.clip_max(value_expr("Expr.clip", "upper", &hi)?),
                (lo, hi) => {
                    let number = |v: &Value| match v {
                        Value::Integer(i) => Some(*i as f64),
                        Value::Number(n) => Some(*n),
                        _ => None,
                    };
                    if let (Some(l), Some(h)) = (number(&lo), number(&hi)) {
                        if l.is_nan() || h.is_nan() || l > h {
                            return Err(Error::argument(
                                "Expr.clip",
                                "lower, upper",
                                "lower ≤ upper",
                                format!("{l}, {h}"),
                            )
                            .into());
                        }
                    }
                    e.clip(
                        value_expr("Expr.clip", "lower", &lo)?,
                        value_expr("Expr.clip", "upper", &hi)?,
                    )
                }
            }))
        });
        m.guarded_method("std", |_, this, d: Value| {
            Ok(LuaExpr(this.0.clone().std(ddof("Expr.std", d)?)))
        });
        m.guarded_method("var", |_, this, d: Value| {
            Ok(LuaExpr(this.0.clone().var(ddof("Expr.var", d)?)))
        });
        m.guarded_method(
            "quantile",
            |lua, this, (q, opts): (Value, Option<Value>)| {
                let q = match q {
                    Value::Integer(i) => i as f64,
                    Value::Number(n) => n,
                    other => {
                        return Err(Error::argument(
                            "Expr.quantile",
                            "q",
                            "a number in [0, 1]",
                            type_name(&other),
                        )
                        .into())
                    }
                };
                if !(0.0..=1.0).contains(&q) {
                    return Err(Error::argument(
                        "Expr.quantile",
                        "q",
                        "a number in [0, 1]",
                        q.to_string(),
                    )
                    .into());
                }
                let o: QuantileOpts = options(lua, "Expr.quantile", opts)?;
                Ok(LuaExpr(
                    this.0
                        .clone()
                        .quantile(lit(q), quantile_method(o.method.as_deref())?),
                ))
            },
        );
    }

    fn add_fields<F: mlua::UserDataFields<Self>>(f: &mut F) {
        f.guarded_field_get("str", |_, this| Ok(LuaStrNamespace(this.0.clone())));
    }
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PatternOpts {
    /// Treat the pattern as a plain string instead of a regular expression.
    literal: bool,
    /// Replace every match instead of the first (`replace` only).
    all: bool,
}

fn pattern_opts(
    lua: &Lua,
    function: &str,
    v: Option<Value>,
    allow_all: bool,
) -> mlua::Result<PatternOpts> {
    let o: PatternOpts = options(lua, function, v)?;
    if o.all && !allow_all {
        return Err(Error::argument(
            function,
            "options",
            "only the key 'literal'",
            "the key 'all'",
        )
        .into());
    }
    Ok(o)
}

impl UserData for LuaStrNamespace {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.guarded_method(
            "contains",
            |lua, this, (pat, opts): (Value, Option<Value>)| {
                let o = pattern_opts(lua, "Expr.str.contains", opts, false)?;
                let pat = value_expr("Expr.str.contains", "pattern", &pat)?;
                let s = this.0.clone().str();
                Ok(LuaExpr(if o.literal {
                    s.contains_literal(pat)
                } else {
                    s.contains(pat, true)
                }))
            },
        );
        m.guarded_method("starts_with", |_, this, p: Value| {
            Ok(LuaExpr(this.0.clone().str().starts_with(value_expr(
                "Expr.str.starts_with",
                "prefix",
                &p,
            )?)))
        });
        m.guarded_method("ends_with", |_, this, p: Value| {
            Ok(LuaExpr(this.0.clone().str().ends_with(value_expr(
                "Expr.str.ends_with",
                "suffix",
                &p,
            )?)))
        });
        m.guarded_method("len_chars", |_, this, ()| {
            Ok(LuaExpr(this.0.clone().str().len_chars()))
        });
        m.guarded_method("to_lowercase", |_, this, ()| {
            Ok(LuaExpr(this.0.clone().str().to_lowercase()))
        });
        m.guarded_method("to_uppercase", |_, this, ()| {
            Ok(LuaExpr(this.0.clone().str().to_uppercase()))
        });
        m.guarded_method(
            "replace",
            |lua, this, (pat, value, opts): (Value, Value, Option<Value>)| {
                let o = pattern_opts(lua, "Expr.str.replace", opts, true)?;
                let pat = value_expr("Expr.str.replace", "pattern", &pat)?;
                let value = value_expr("Expr.str.replace", "value", &value)?;
                let s = this.0.clone().str();
                Ok(LuaExpr(if o.all {
                    s.replace_all(pat, value, o.literal)
                } else {
                    s.replace(pat, value, o.literal)
                }))
            },
        );
        m.guarded_method("split", |_, this, by: Value| {
            Ok(LuaExpr(this.0.clone().str().split(value_expr(
                "Expr.str.split",
                "by",
                &by,
            )?)))
        });
    }
}

impl UserData for LuaWhen {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.guarded_method("then_", |_, this, v: Value| {
            let mut next = this.clone();
            let last = next
                .branches
                .last_mut()
                .expect("a when always has a branch");
            if last.1.is_some() {
                return Err(Error::Usage {
                    function: "sw.when".into(),
                    message: "'then_' follows 'when', not another 'then_'".into(),
                }
                .into());
            }
            last.1 = Some(value_expr("sw.when(...):then_", "value", &v)?);
            Ok(next)
        });
        m.guarded_method("when", |_, this, cond: Value| {
            let mut next = this.clone();
            if next.branches.last().and_then(|b| b.1.as_ref()).is_none() {
                return Err(Error::Usage {
                    function: "sw.when".into(),
                    message: "each 'when' needs a 'then_' before the next 'when'".into(),
                }
                .into());
            }
            crate::args::predicate("sw.when(...):when", "condition", &cond)?;
            next.branches
                .push((value_expr("sw.when(...):when", "condition", &cond)?, None));
            Ok(next)
        });
        m.guarded_method("otherwise", |_, this, v: Value| {
            let otherwise = value_expr("sw.when(...):otherwise", "value", &v)?;
            let mut result = otherwise;
            for (cond, then) in this.branches.iter().rev() {
                let Some(then) = then else {
                    return Err(Error::Usage {
                        function: "sw.when".into(),
                        message: "'otherwise' needs a 'then_' after the last 'when'".into(),
                    }
                    .into());
                };
                result = when(cond.clone()).then(then.clone()).otherwise(result);
            }
            Ok(LuaExpr(result))
        });
    }
}

/// Methods of each expression userdata, for introspection.
pub(crate) const EXPR_METHODS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "is_null",
    "is_not_null",
    "abs",
    "sum",
    "mean",
    "median",
    "min",
    "max",
    "count",
    "n_unique",
    "first",
    "last",
    "not_",
    "alias",
    "cast",
    "is_in",
    "fill_null",
    "over",
    "sort",
    "round",
    "clip",
    "std",
    "var",
    "quantile",
];
pub(crate) const STR_METHODS: &[&str] = &[
    "contains",
    "starts_with",
    "ends_with",
    "len_chars",
    "to_lowercase",
    "to_uppercase",
    "replace",
    "split",
];
pub(crate) const WHEN_METHODS: &[&str] = &["then_", "when", "otherwise"];
