//! Behaviour of the polars bindings, checked on small frames whose answers are known by hand.

use crate::util::{lua_str, Captured};

fn setup() -> Captured {
    let c = Captured::new();
    c.eval(
        r#"df = sw.frame({
            name = {"ann", "bob", "cy", "dee", "eve"},
            team = {"x", "y", "x", "y", sw.null},
            score = {3, 5, sw.null, 2, 4},
            w = {0.5, 1.5, 2.0, 1.0, 3.0},
        }, {columns = {"name", "team", "score", "w"}});"#,
    );
    c
}

#[test]
fn frame_from_columns_and_records_round_trip() {
    let c = setup();
    assert_eq!(
        c.eval("table.concat(df:columns(), ',')"),
        "name,team,score,w"
    );
    assert_eq!(c.eval("df:shape()"), "{5, 4}");
    assert_eq!(c.eval("#df"), "5");
    assert_eq!(c.eval("df:column('score')"), "{3, 5, sw.null, 2, 4}");
    assert_eq!(
        c.eval("df:to_records()[3]"),
        "{name = \"cy\", team = \"x\", w = 2.0}"
    );
    c.eval("back = sw.frame(df:to_records(), {columns = df:columns()});");
    assert_eq!(c.eval("tostring(back) == tostring(df)"), "true");
    // Without an order, columns come sorted by name.
    assert_eq!(
        c.eval("table.concat(sw.frame{b = {1}, a = {2}}:columns(), ',')"),
        "a,b"
    );
    assert_eq!(
        c.eval("df:schema().score .. ' ' .. df:schema().w .. ' ' .. df:schema().name"),
        "i64 f64 str"
    );
}

#[test]
fn file_formats_round_trip() {
    let c = setup();
    let dir = tempfile::tempdir().unwrap();
    for (ext, reader) in [
        ("csv", "read_csv"),
        ("parquet", "read_parquet"),
        ("ipc", "read_ipc"),
        ("jsonl", "read_json"),
    ] {
        let writer = if ext == "jsonl" {
            "write_json".to_string()
        } else {
            format!("write_{ext}")
        };
        let path = lua_str(dir.path().join(format!("t.{ext}")).to_str().unwrap());
        c.eval(&format!("df:{writer}({path});"));
        assert_eq!(
            c.eval(&format!("tostring(sw.{reader}({path})) == tostring(df)")),
            "true",
            "{ext}"
        );
    }
    let path = lua_str(dir.path().join("t.csv").to_str().unwrap());
    assert_eq!(
        c.eval(&format!(
            "sw.scan_csv({path}):filter(sw.col('w'):gt(1)):collect():height()"
        )),
        "3"
    );
    assert_eq!(
        c.eval(&format!(
            "sw.scan_csv({path}, {{columns = {{'w', 'name'}}}}):collect():columns()"
        )),
        r#"{"w", "name"}"#
    );
    let path = lua_str(dir.path().join("t.parquet").to_str().unwrap());
    assert_eq!(
        c.eval(&format!(
            "sw.scan_parquet({path}):select('name'):collect():column('name')[5]"
        )),
        "eve"
    );
    assert_eq!(
        c.eval(&format!(
            "sw.read_parquet({path}, {{columns = {{'w'}}, n_rows = 2}}):shape()"
        )),
        "{2, 1}"
    );
    let semi = dir.path().join("semi.csv");
    std::fs::write(&semi, "a;b\n1;NA\n2;x\n").unwrap();
    let semi = lua_str(semi.to_str().unwrap());
    assert_eq!(
        c.eval(&format!(
            "sw.read_csv({semi}, {{separator = ';', null_values = {{'NA'}}}}):column('b')"
        )),
        "{sw.null, \"x\"}"
    );
}

#[test]
fn select_filter_with_columns() {
    let c = setup();
    assert_eq!(
        c.eval("df:filter(sw.col('score'):ge(3)):column('name')"),
        r#"{"ann", "bob", "eve"}"#
    );
    assert_eq!(
        c.eval("df:filter(sw.col('score'):ge(3), sw.col('team'):eq('x')):column('name')"),
        r#"{"ann"}"#
    );
    assert_eq!(
        c.eval("df:filter(sw.col('team'):eq('x') | sw.col('w'):gt(2.5)):column('name')"),
        r#"{"ann", "cy", "eve"}"#
    );
    assert_eq!(
        c.eval("df:filter(~sw.col('score'):is_null() & sw.col('w'):lt(1.2)):column('name')"),
        r#"{"ann", "dee"}"#
    );
    assert_eq!(
        c.eval("df:select((sw.col('score') * 2 + 1):alias('s')):column('s')"),
        "{7, 11, sw.null, 5, 9}"
    );
    assert_eq!(
        c.eval("df:select((sw.col('score') / 2):alias('h')):column('h')[1]"),
        "1.5"
    );
    assert_eq!(
        c.eval("df:select((sw.col('score') // 2):alias('h')):column('h')[1]"),
        "1"
    );
    assert_eq!(c.eval("df:select((sw.col('score') % 2):alias('m'), (sw.col('score') ^ 2):alias('p'), (-sw.col('score')):alias('n')):to_records()[2]"), "{m = 1, n = -5, p = 25}");
    assert_eq!(
        c.eval("df:with_columns(sw.col('score'):fill_null(0)):column('score')"),
        "{3, 5, 0, 2, 4}"
    );
    assert_eq!(
        c.eval("df:with_columns(sw.col('score'):cast('float64')):schema().score"),
        "f64"
    );
    assert_eq!(c.eval("df:select(sw.col({'name', 'team'})):width()"), "2");
    assert_eq!(
        c.eval("df:select('name', {'w'}):columns()"),
        r#"{"name", "w"}"#
    );
}

#[test]
fn sort_multi_key_descending_nulls_last() {
    let c = setup();
    assert_eq!(
        c.eval("df:sort('score'):column('name')"),
        r#"{"cy", "dee", "ann", "eve", "bob"}"#
    );
    assert_eq!(
        c.eval("df:sort('score', {descending = true, nulls_last = true}):column('name')"),
        r#"{"bob", "eve", "ann", "dee", "cy"}"#
    );
    assert_eq!(c.eval("df:sort({'team', 'w'}, {descending = {false, true}, nulls_last = true}):column('name')"), r#"{"cy", "ann", "bob", "dee", "eve"}"#);
}

#[test]
fn group_by_aggregations() {
    let c = setup();
    let out = c.eval(
        "df:drop_nulls('team'):group_by('team', {maintain_order = true}):agg{\
         sw.col('score'):sum():alias('sum'), sw.col('w'):mean():alias('mean'), sw.len():alias('n'),\
         sw.col('score'):count():alias('count'), sw.col('name'):first():alias('first')}:to_records()",
    );
    assert_eq!(
        out,
        r#"{{count = 1, first = "ann", mean = 1.25, n = 2, sum = 3, team = "x"}, {count = 2, first = "bob", mean = 1.25, n = 2, sum = 7, team = "y"}}"#
    );
    assert_eq!(
        c.eval("df:lazy():group_by('team'):agg{sw.len()}:collect():height()"),
        "3"
    );
    assert_eq!(c.eval("df:select(sw.col('w'):quantile(0.5), sw.col('w'):median():alias('m'), sw.col('w'):std():round(4):alias('s'), sw.col('w'):var(0):alias('v')):to_records()[1]"), "{m = 1.5, s = 0.9618, v = 0.74, w = 1.5}");
    assert_eq!(
        c.eval("df:select(sw.col('w'):sum():over('team'):alias('t')):column('t')"),
        "{2.5, 2.5, 2.5, 2.5, 3.0}"
    );
}

#[test]
fn joins() {
    let c = setup();
    c.eval("teams = sw.frame({team = {'x', 'z'}, lead = {'Xe', 'Zed'}}, {columns = {'team', 'lead'}});");
    assert_eq!(
        c.eval("df:join(teams, {on = 'team'}):column('name')"),
        r#"{"ann", "cy"}"#
    );
    assert_eq!(
        c.eval("df:join(teams, {on = 'team', how = 'left'}):column('lead')"),
        r#"{"Xe", sw.null, "Xe", sw.null, sw.null}"#
    );
    assert_eq!(
        c.eval("df:join(teams, {on = 'team', how = 'full'}):height()"),
        "6"
    );
    assert_eq!(
        c.eval("df:join(teams, {on = 'team', how = 'semi'}):height()"),
        "2"
    );
    assert_eq!(
        c.eval("df:join(teams, {on = 'team', how = 'anti'}):height()"),
        "3"
    );
    c.eval("t2 = teams:rename('team', 'group');");
    assert_eq!(
        c.eval("df:join(t2, {left_on = 'team', right_on = 'group'}):width()"),
        "5"
    );
    c.eval("same = sw.frame{team = {'x'}, w = {9.0}};");
    assert_eq!(
        c.eval("table.concat(df:join(same, {on = 'team', suffix = '_2'}):columns(), ',')"),
        "name,team,score,w,w_2"
    );
}

#[test]
fn reshaping_verbs() {
    let c = setup();
    assert_eq!(
        c.eval("df:select('team'):unique():column('team')"),
        r#"{"x", "y", sw.null}"#
    );
    assert_eq!(
        c.eval("df:unique{subset = 'team', keep = 'last'}:column('name')"),
        r#"{"cy", "dee", "eve"}"#
    );
    assert_eq!(c.eval("df:drop_nulls():height()"), "3");
    assert_eq!(
        c.eval("df:rename{name = 'who', w = 'weight'}:columns()"),
        r#"{"who", "team", "score", "weight"}"#
    );
    assert_eq!(
        c.eval("df:drop('w', {'team'}):columns()"),
        r#"{"name", "score"}"#
    );
    assert_eq!(c.eval("df:head(2):column('name')"), r#"{"ann", "bob"}"#);
    assert_eq!(c.eval("df:tail(2):column('name')"), r#"{"dee", "eve"}"#);
    assert_eq!(c.eval("df:slice(1, 2):column('name')"), r#"{"bob", "cy"}"#);
    assert_eq!(c.eval("df:slice(-1):column('name')"), r#"{"eve"}"#);
    assert_eq!(c.eval("df:vstack(df):height()"), "10");
    assert_eq!(c.eval("sw.concat{df, df, df}:height()"), "15");
    assert_eq!(
        c.eval("sw.concat({df:select('name'), df:select('w')}, {how = 'horizontal'}):width()"),
        "2"
    );
    assert_eq!(
        c.eval("sw.concat{df:lazy(), df:lazy()}:collect():height()"),
        "10"
    );
}

#[test]
fn describe_matches_hand_computed_statistics() {
    let c = setup();
    let stats = c.eval("df:describe():column('score')");
    // score = 3, 5, null, 2, 4: count 4, one null, mean 3.5, sample std 1.2910, nearest-rank
    // quartiles 3 / 4 / 4 (as py-polars' describe), min 2, max 5.
    assert_eq!(
        stats,
        "{4.0, 1.0, 3.5, 1.2909944487358, 2.0, 3.0, 4.0, 4.0, 5.0}"
    );
    assert_eq!(
        c.eval("df:describe():column('name')"),
        r#"{"5", "0", sw.null, sw.null, "ann", sw.null, sw.null, sw.null, "eve"}"#
    );
    assert_eq!(c.eval("df:describe():column('statistic')[6]"), "25%");
}

#[test]
fn sample_is_seeded() {
    let c = setup();
    assert_eq!(c.eval("df:sample{n = 3, seed = 7}:height()"), "3");
    assert_eq!(
        c.eval("tostring(df:sample{n = 3, seed = 7}) == tostring(df:sample{n = 3, seed = 7})"),
        "true"
    );
    assert_eq!(c.eval("df:sample{fraction = 0.4, seed = 1}:height()"), "2");
    assert_eq!(
        c.eval("df:sample{n = 10, seed = 1, with_replacement = true}:height()"),
        "10"
    );
    assert_eq!(c.eval("df:sample(2):height()"), "2");
}

#[test]
fn expressions() {
    let c = setup();
    assert_eq!(c.eval("df:select(sw.when(sw.col('score'):gt(3)):then_('high'):when(sw.col('score'):gt(2)):then_('mid'):otherwise('low'):alias('b')):column('b')"), r#"{"mid", "high", "low", "low", "high"}"#);
    assert_eq!(
        c.eval("df:filter(sw.col('name'):is_in({'bob', 'eve'})):height()"),
        "2"
    );
    assert_eq!(
        c.eval("df:select(sw.col('name').str:contains('e')):column('name')"),
        "{false, false, false, true, true}"
    );
    assert_eq!(
        c.eval("df:select(sw.col('name').str:contains('.', {literal = true})):column('name')[1]"),
        "false"
    );
    assert_eq!(c.eval("df:select(sw.col('name').str:starts_with('b'), sw.col('team').str:ends_with('y'):alias('t')):to_records()[2]"), "{name = true, t = true}");
    assert_eq!(
        c.eval("df:select(sw.col('name').str:to_uppercase()):column('name')[1]"),
        "ANN"
    );
    assert_eq!(c.eval("sw.frame{s = {'AbC'}}:select(sw.col('s').str:to_lowercase(), sw.col('s').str:len_chars():alias('n')):to_records()[1]"), r#"{n = 3, s = "abc"}"#);
    assert_eq!(
        c.eval("sw.frame{s = {'a-b-b'}}:select(sw.col('s').str:replace('b', 'X')):column('s')[1]"),
        "a-X-b"
    );
    assert_eq!(c.eval("sw.frame{s = {'a-b-b'}}:select(sw.col('s').str:replace('b', 'X', {all = true})):column('s')[1]"), "a-X-X");
    assert_eq!(
        c.eval("sw.frame{s = {'a-b-b'}}:select(sw.col('s').str:split('-')):column('s')[1]"),
        r#"{"a", "b", "b"}"#
    );
    assert_eq!(
        c.eval("sw.frame{x = {-1.26, 2.5, 7}}:select(sw.col('x'):abs():round(1)):column('x')"),
        "{1.3, 2.5, 7.0}"
    );
    assert_eq!(
        c.eval("sw.frame{x = {-1, 5, 9}}:select(sw.col('x'):clip(0, 6)):column('x')"),
        "{0, 5, 6}"
    );
    assert_eq!(
        c.eval("sw.frame{x = {-1, 5, 9}}:select(sw.col('x'):clip(nil, 6)):column('x')"),
        "{-1, 5, 6}"
    );
    assert_eq!(c.eval("df:select(sw.col('team'):n_unique(), sw.col('score'):min():alias('lo'), sw.col('score'):max():alias('hi'), sw.col('w'):last():alias('l')):to_records()[1]"), "{hi = 5, l = 3.0, lo = 2, team = 3}");
    assert_eq!(
        c.eval(
            "df:select(sw.col('score'):sort{descending = true, nulls_last = true}):column('score')"
        ),
        "{5, 4, 3, 2, sw.null}"
    );
    assert_eq!(c.eval("df:select(sw.col('score'):ne(3):alias('a'), sw.col('score'):le(3):alias('b'), sw.lit(1):alias('c')):to_records()[1]"), "{a = false, b = true, c = 1}");
    assert!(c.eval("tostring(sw.col('a') + 1)").contains("col(\"a\")"));
}

#[test]
fn lazy_frames_plan_and_collect() {
    let c = setup();
    let plan = c.eval("df:lazy():filter(sw.col('w'):gt(1)):select('name'):explain()");
    assert!(
        plan.contains("FILTER") || plan.contains("SELECTION") || plan.contains("filter"),
        "{plan}"
    );
    assert_eq!(
        c.eval("df:lazy():sort('w', {descending = true}):head(1):collect():column('name')[1]"),
        "eve"
    );
    assert_eq!(
        c.eval("df:lazy():with_columns(sw.lit(1):alias('one')):columns()[5]"),
        "one"
    );
    assert_eq!(c.eval("df:lazy():schema().w"), "f64");
    assert_eq!(
        c.eval("df:lazy():join(df:lazy():select('name', 'w'), {on = 'name'}):collect():width()"),
        "5"
    );
}
