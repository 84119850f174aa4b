//! Range checks for options, in one place: each names the operation, the option, the allowed
//! range and the value given, so Lua, Python and Rust callers get the same error.

use crate::{Error, Result};

/// An option struct that knows the range of each of its options. Every public function that
/// takes one calls [`Options::check`] before any work, so Lua, Python and Rust callers get the
/// same error; the property tests (`kernel/core/tests/option_ranges.rs`) hold each option to
/// the range its doc page states.
pub trait Options {
    /// Checks every option against its documented range; an error names `op`, the option,
    /// the allowed range and the value given.
    fn check(&self, op: &'static str) -> Result<()>;
}

/// A count that must be at least 1.
pub fn positive_count(op: &'static str, arg: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::invalid(op, arg, "a positive integer", 0));
    }
    Ok(())
}

/// A finite number > 0.
pub fn positive(op: &'static str, arg: &'static str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::invalid(op, arg, "a finite number > 0", v));
    }
    Ok(())
}

/// A finite number ≥ 0.
pub fn non_negative(op: &'static str, arg: &'static str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(Error::invalid(op, arg, "a finite number ≥ 0", v));
    }
    Ok(())
}

/// A finite number > 0, when given.
pub fn positive_opt(op: &'static str, arg: &'static str, v: Option<f64>) -> Result<()> {
    v.map_or(Ok(()), |v| positive(op, arg, v))
}

/// A count ≥ 1, when given.
pub fn positive_count_opt(op: &'static str, arg: &'static str, v: Option<usize>) -> Result<()> {
    v.map_or(Ok(()), |v| positive_count(op, arg, v))
}

/// A probability: a number in [0, 1].
pub fn probability(op: &'static str, arg: &'static str, v: f64) -> Result<()> {
    within(op, arg, v, 0.0, 1.0, false)
}

/// A number in [lo, hi] (`hi_open`: in [lo, hi)).
pub fn within(
    op: &'static str,
    arg: &'static str,
    v: f64,
    lo: f64,
    hi: f64,
    hi_open: bool,
) -> Result<()> {
    let ok = v.is_finite() && v >= lo && if hi_open { v < hi } else { v <= hi };
    if !ok {
        let close = if hi_open { ")" } else { "]" };
        return Err(Error::invalid(
            op,
            arg,
            format!("a number in [{lo}, {hi}{close}"),
            v,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_the_option_and_the_range() {
        assert!(positive_count("op", "n", 1).is_ok());
        let e = positive_count("op", "n", 0).unwrap_err().to_string();
        assert!(
            e.contains("op") && e.contains("'n'") && e.contains("positive"),
            "{e}"
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(positive("op", "x", bad).is_err(), "{bad}");
        }
        assert!(non_negative("op", "x", 0.0).is_ok() && non_negative("op", "x", f64::NAN).is_err());
        assert!(within("op", "p", 1.0, 0.0, 1.0, false).is_ok());
        let e = within("op", "beta1", 1.0, 0.0, 1.0, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[0, 1)") && e.contains("beta1"), "{e}");
    }
}
