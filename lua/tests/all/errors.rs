//! Bad input: each case must fail with an error that names the function, the argument or the
//! thing that was expected — never a panic, never an option silently ignored.

use crate::util::{lua_str, Captured};

struct Fixture {
    _dir: tempfile::TempDir,
    csv: String,
    ragged: String,
    truncated_parquet: String,
    bad_json: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(p("ok.csv"), "a,b\n1,x\n2,y\n").unwrap();
    std::fs::write(p("ragged.csv"), "a,b\n1,x\n2,y,extra,more\n3,z\n").unwrap();
    std::fs::write(p("bad.jsonl"), "{\"a\": 1}\n{\"a\": \n").unwrap();
    // A real Parquet file cut in half.
    let c = Captured::new();
    c.eval(&format!(
        "sw.frame{{a = {{1, 2, 3}}}}:write_parquet({});",
        lua_str(&p("full.parquet"))
    ));
    let bytes = std::fs::read(p("full.parquet")).unwrap();
    std::fs::write(p("cut.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    Fixture {
        csv: lua_str(&p("ok.csv")),
        ragged: lua_str(&p("ragged.csv")),
        truncated_parquet: lua_str(&p("cut.parquet")),
        bad_json: lua_str(&p("bad.jsonl")),
        _dir: dir,
    }
}

#[test]
fn bad_inputs_fail_with_clear_errors() {
    let f = fixture();
    let c = Captured::new();
    c.eval("df = sw.frame({a = {1, 2}, b = {'x', 'y'}}, {columns = {'a', 'b'}});");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            "sw.read_csv('/definitely/not/here.csv')".into(),
            vec!["read_csv", "/definitely/not/here.csv", "No such file"],
        ),
        (
            format!("sw.read_csv({}, {{seperator = ';'}})", f.csv),
            vec![
                "sw.read_csv",
                "options",
                "unknown field `seperator`",
                "separator",
            ],
        ),
        // A wrong value names the option by its Lua path, sequences counted from 1.
        (
            format!("sw.read_csv({}, {{columns = {{'a', 2}}}})", f.csv),
            vec!["sw.read_csv", "'options.columns[2]'", "expected a string"],
        ),
        (
            "sw.overseers.simulate{gold = df, overseers = {{id = 'a', accuracy = 'high'}}}".into(),
            vec!["'options.overseers[1].accuracy'", "string \"high\""],
        ),
        (
            "sw.aggregate.dawid_skene(df, {n_iter = -1})".into(),
            vec!["'options.n_iter'", "integer `-1`"],
        ),
        (
            format!("sw.read_csv({}, {{separator = ';;'}})", f.csv),
            vec!["read_csv", "separator", "single ASCII character"],
        ),
        (
            format!("sw.read_csv({}, {{has_header = 'yes'}})", f.csv),
            vec!["sw.read_csv", "options", "expected true or false"],
        ),
        (
            format!("sw.read_csv({})", f.ragged),
            vec!["read_csv", "ragged.csv"],
        ),
        (
            format!("sw.read_parquet({})", f.truncated_parquet),
            vec!["read_parquet", "cut.parquet"],
        ),
        (
            format!("sw.read_parquet({})", f.csv),
            vec!["read_parquet", "ok.csv"],
        ),
        (
            format!("sw.read_json({})", f.bad_json),
            vec!["read_json", "bad.jsonl"],
        ),
        (
            format!("sw.read_ipc({})", f.csv),
            vec!["read_ipc", "ok.csv"],
        ),
        (
            "sw.read_csv(nil)".into(),
            vec!["sw.read_csv", "path", "a file path"],
        ),
        (
            "sw.read_csv(42)".into(),
            vec!["sw.read_csv", "path", "integer"],
        ),
        (
            format!("sw.scan_csv({}, {{colums = {{'a'}}}})", f.csv),
            vec!["sw.scan_csv", "unknown field `colums`", "`columns`"],
        ),
        (
            format!("sw.scan_csv({}, {{columns = {{'zz'}}}}):collect()", f.csv),
            vec!["LazyFrame.collect", "zz"],
        ),
        (
            "df:write_csv('/no/such/dir/out.csv')".into(),
            vec!["write_csv", "/no/such/dir/out.csv"],
        ),
        (
            "df:write_parquet(os.tmpname(), {compression = 'brotli9'})".into(),
            vec!["write_parquet", "compression", "zstd"],
        ),
        ("df:select('nope')".into(), vec!["DataFrame.select", "nope"]),
        (
            "df:select()".into(),
            vec!["DataFrame.select", "at least one"],
        ),
        (
            "df:filter(sw.col('nope'):gt(1))".into(),
            vec!["DataFrame.filter", "nope"],
        ),
        (
            "df:lazy():select('nope'):collect()".into(),
            vec!["LazyFrame.collect", "nope"],
        ),
        (
            "df:select(sw.col('a') < 1)".into(),
            vec!["Expr <", "a:lt(b)"],
        ),
        (
            "df:select(sw.col('a') > 1)".into(),
            vec!["Expr < or >", "a:gt(b)"],
        ),
        (
            "df:select(sw.col('a') <= sw.col('a'))".into(),
            vec!["Expr <=", "a:le(b)"],
        ),
        (
            "return sw.col('a') == sw.col('a')".into(),
            vec!["Expr ==", "a:eq(b)"],
        ),
        (
            "df:sort('a', {descending = {true, false}})".into(),
            vec!["DataFrame.sort", "descending", "one per sort key"],
        ),
        (
            "df:sort('a', {reverse = true})".into(),
            vec!["DataFrame.sort", "unknown field `reverse`"],
        ),
        (
            "df:join(df, {on = 'a', how = 'outer_x'})".into(),
            vec!["DataFrame.join", "how", "inner"],
        ),
        ("df:join(df)".into(), vec!["DataFrame.join", "either 'on'"]),
        (
            "df:join(42, {on = 'a'})".into(),
            vec![
                "DataFrame.join",
                "other",
                "a DataFrame or LazyFrame",
                "integer",
            ],
        ),
        (
            "df:join(df, {left_on = {'a', 'b'}, right_on = 'a'})".into(),
            vec!["DataFrame.join", "right_on", "as many keys"],
        ),
        ("sw.frame{a = {1, 2}, b = {1}}".into(), vec!["sw.frame"]),
        (
            "sw.frame{a = {1, 'x'}}".into(),
            vec!["sw.frame", "values of one type", "position 2"],
        ),
        (
            "sw.frame{a = {{1}}}".into(),
            vec!["sw.frame", "numbers, strings, booleans", "table"],
        ),
        (
            "sw.frame('x')".into(),
            vec!["sw.frame", "data", "a table of columns"],
        ),
        (
            "sw.frame({a = {1}, b = {2}}, {columns = {'a'}})".into(),
            vec!["sw.frame", "columns", "would be lost"],
        ),
        (
            "df:column('zzz')".into(),
            vec!["DataFrame.column", "zzz", "one of the columns"],
        ),
        ("sw.col(42)".into(), vec!["sw.col", "name", "column name"]),
        (
            "sw.col('a'):cast('float128')".into(),
            vec!["Expr.cast", "dtype", "float64"],
        ),
        ("df:head(-1)".into(), vec!["DataFrame.head", "non-negative"]),
        (
            "df:sample{n = 2, fraction = 0.5}".into(),
            vec!["DataFrame.sample", "either 'n' or 'fraction'"],
        ),
        ("df:sample{n = 5}".into(), vec!["DataFrame.sample"]),
        (
            "sw.concat({})".into(),
            vec!["sw.concat", "at least one frame"],
        ),
        (
            "sw.concat({df, 'x'})".into(),
            vec!["sw.concat", "frames", "string"],
        ),
        (
            "df:unique{keep = 'sometimes'}".into(),
            vec!["DataFrame.unique", "keep", "first"],
        ),
        (
            "df:rename{nope = 'x'}".into(),
            vec!["DataFrame.rename", "nope"],
        ),
        ("df:vstack(df:select('a'))".into(), vec!["DataFrame.vstack"]),
        (
            "df:vstack('x')".into(),
            vec!["DataFrame.vstack", "other", "a DataFrame"],
        ),
        (
            "sw.col('a'):quantile(2)".into(),
            vec!["Expr.quantile", "q", "[0, 1]"],
        ),
        (
            "sw.col('a'):quantile(0.5, {method = 'magic'})".into(),
            vec!["Expr.quantile", "method", "linear"],
        ),
        (
            "sw.col('a').str:contains('x', {all = true})".into(),
            vec!["Expr.str.contains", "literal"],
        ),
        (
            "sw.when(sw.col('a'):eq(1)):otherwise(0)".into(),
            vec!["sw.when", "then_"],
        ),
        (
            "sw.col('a') + {}".into(),
            vec!["Expr +", "operand", "table"],
        ),
        (
            "df:lazy():explain{optimised = true}".into(),
            vec![
                "LazyFrame.explain",
                "unknown field `optimised`",
                "optimized",
            ],
        ),
        (
            "io.write({})".into(),
            vec!["io.write", "a string or a number"],
        ),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (code, needles) in &cases {
        let err = c.error(code);
        for needle in needles {
            if !err.contains(needle) {
                failures.push(format!(
                    "{code}\n  missing {needle:?} in:\n  {}",
                    err.replace('\n', "\n  ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Each cause is said once (polars repeats its inner error inside its context), and the
    // traceback has no anonymous C frames.
    let err = c.error("df:select('nope')");
    assert_eq!(err.matches("unable to find column").count(), 1, "{err}");
    assert!(!err.contains("[C]: in ?"), "{err}");
    // The session survives all of them.
    assert_eq!(c.eval("df:height()"), "2");
}
